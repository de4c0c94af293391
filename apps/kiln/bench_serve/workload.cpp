#include "bench_serve/workload.h"

#include <cmath>
#include <fstream>

#include <nlohmann/json.hpp>

#include "kiln/core/str.h"

namespace kiln::bench_serve {

double Rng::uniform() {
  // The top 53 bits fill a double's mantissa exactly.
  return static_cast<double>(engine_() >> 11) * 0x1.0p-53;
}

uint64_t Rng::below(uint64_t n) {
  // Rejection keeps the draw unbiased when n does not divide 2^64.
  uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  uint64_t x;
  do {
    x = engine_();
  } while (x >= limit);
  return x % n;
}

int64_t Rng::between(int64_t lo, int64_t hi) {
  return lo + static_cast<int64_t>(below(static_cast<uint64_t>(hi - lo) + 1));
}

double Rng::exponential(double rate) { return -std::log1p(-uniform()) / rate; }

uint64_t mix_seed(uint64_t seed, uint64_t stream) {
  uint64_t z = seed + 0x9E3779B97F4A7C15ull * (stream + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

std::string make_prompt(Rng& rng, int n_words) {
  const auto& words = vocabulary();
  std::string out;
  out.reserve(static_cast<size_t>(std::max(n_words, 0)) * 7);
  for (int i = 0; i < n_words; ++i) {
    if (i) out.push_back(' ');
    out.append(words[rng.below(words.size())]);
  }
  return out;
}

int sample_length(Rng& rng, int base, double ratio) {
  if (ratio <= 0) return std::max(base, 1);
  int lo = std::max(1, static_cast<int>(std::floor(base * (1.0 - ratio))));
  int hi = std::max(lo, static_cast<int>(std::ceil(base * (1.0 + ratio))));
  return static_cast<int>(rng.between(lo, hi));
}

namespace {

using nlohmann::json;

Status check_messages(const json& messages) {
  if (!messages.is_array() || messages.empty()) return invalid_argument("`messages` must be a non-empty array");
  for (size_t i = 0; i < messages.size(); ++i) {
    const json& m = messages[i];
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string()) {
      return invalid_argument(str_cat("`messages[", i, "]` must be an object with a string `role`"));
    }
  }
  return Status::ok();
}

Result<RequestSpec> parse_dataset_line(const std::string& line, ApiEndpoint endpoint, int default_max_tokens) {
  json doc = json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) return invalid_argument("not a JSON object");
  RequestSpec spec;
  spec.max_tokens = default_max_tokens;
  if (auto it = doc.find("max_tokens"); it != doc.end()) {
    if (!it->is_number_integer() || it->get<int64_t>() < 1 || it->get<int64_t>() > (1 << 24)) {
      return invalid_argument("`max_tokens` must be a positive integer");
    }
    spec.max_tokens = it->get<int>();
  }
  auto prompt = doc.find("prompt");
  auto messages = doc.find("messages");
  if (prompt != doc.end() && messages != doc.end()) return invalid_argument("has both `prompt` and `messages`");
  if (prompt != doc.end()) {
    if (!prompt->is_string()) return invalid_argument("`prompt` must be a string");
    spec.prompt = prompt->get<std::string>();
    return spec;
  }
  if (messages != doc.end()) {
    if (endpoint == ApiEndpoint::kCompletions) {
      return invalid_argument("has `messages`, which the completions endpoint cannot send (use --endpoint chat)");
    }
    KILN_RETURN_IF_ERROR(check_messages(*messages));
    spec.messages = *messages;
    return spec;
  }
  return invalid_argument("has neither `prompt` nor `messages`");
}

}  // namespace

Result<std::vector<RequestSpec>> load_dataset(const std::string& path, ApiEndpoint endpoint,
                                              int default_max_tokens) {
  std::ifstream in(path);
  if (!in) return not_found(str_cat("dataset ", path, ": cannot open"));
  std::vector<RequestSpec> specs;
  std::string line;
  for (size_t line_no = 1; std::getline(in, line); ++line_no) {
    if (trim(line).empty()) continue;
    auto spec = parse_dataset_line(line, endpoint, default_max_tokens);
    if (!spec.is_ok()) return spec.status().with_context(str_cat("dataset ", path, " line ", line_no));
    specs.push_back(std::move(spec).value());
  }
  if (in.bad()) return data_loss(str_cat("dataset ", path, ": read error"));
  if (specs.empty()) return invalid_argument(str_cat("dataset ", path, ": no requests in it"));
  return specs;
}

Result<Workload> Workload::create(const WorkloadSettings& settings) {
  if (settings.prompt_tokens < 1) return invalid_argument("--prompt-tokens must be at least 1");
  if (settings.output_tokens < 1) return invalid_argument("--output-tokens must be at least 1");
  if (settings.range_ratio < 0 || settings.range_ratio >= 1) {
    return invalid_argument("--random-range-ratio must be in [0, 1)");
  }
  if (settings.shared_prefix_tokens < 0) return invalid_argument("--shared-prefix-tokens must not be negative");
  Workload w;
  w.settings_ = settings;
  if (!settings.dataset.empty()) {
    KILN_ASSIGN_OR_RETURN(w.dataset_, load_dataset(settings.dataset, settings.endpoint, settings.output_tokens));
  }
  Rng prefix_rng(mix_seed(settings.seed, UINT64_MAX));
  w.shared_prefix_ = make_prompt(prefix_rng, settings.shared_prefix_tokens);
  return w;
}

RequestSpec Workload::request(uint64_t index, bool warmup) const {
  if (!dataset_.empty()) {
    // Warmup walks the file from its end so the first measured requests do not find their own
    // prompts already in the server's prefix cache.
    uint64_t n = dataset_.size();
    return warmup ? dataset_[n - 1 - index % n] : dataset_[index % n];
  }
  Rng rng(mix_seed(settings_.seed, warmup ? (index | (uint64_t{1} << 62)) : index));
  RequestSpec spec;
  int prompt_len = sample_length(rng, settings_.prompt_tokens, settings_.range_ratio);
  spec.max_tokens = sample_length(rng, settings_.output_tokens, settings_.range_ratio);
  spec.prompt = shared_prefix_;
  if (!spec.prompt.empty()) spec.prompt.push_back(' ');
  spec.prompt += make_prompt(rng, prompt_len);
  spec.prompt_tokens_hint = settings_.shared_prefix_tokens + prompt_len;
  return spec;
}

}  // namespace kiln::bench_serve
