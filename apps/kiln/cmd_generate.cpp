// kiln generate: runs one prompt (token ids) through the engine and prints the generated tokens
// and prefill / decode speed. --logits-out writes the logits of every computed position.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <memory>
#include <vector>

#include "command.h"
#include "dtype_option.h"
#include "kiln/core/str.h"
#include "kiln/model/checkpoint.h"
#include "kiln/model/config.h"
#include "kiln/runtime/engine.h"
#include "kiln/runtime/static_batch.h"

namespace kiln::app {
namespace {

struct GenerateArgs {
  std::string model_dir, prompt_ids, logits_out, dtype = "auto", quantize;
  int max_tokens = 16;
  int chunk_size = 0;
  int threads = 0;
  bool ignore_eos = false;
  runtime::SamplingParams sampling;
};

int fail(const Status& s) {
  std::fprintf(stderr, "kiln generate: %s\n", s.to_string().c_str());
  return 1;
}

Result<std::vector<int32_t>> parse_ids(const std::string& text) {
  std::vector<int32_t> ids;
  for (const std::string& part : split(text, ',')) {
    const std::string t(trim(part));
    size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(t, &used);
    } catch (...) {
      used = 0;
    }
    if (t.empty() || used != t.size() || v < 0 || v > INT32_MAX)
      return invalid_argument(str_cat("--prompt-ids: '", t, "' is not a token id"));
    ids.push_back(static_cast<int32_t>(v));
  }
  if (ids.empty()) return invalid_argument("--prompt-ids: no token ids");
  return ids;
}

int run(const GenerateArgs& a) {
  auto prompt = parse_ids(a.prompt_ids);
  if (!prompt.is_ok()) return fail(prompt.status());
  if (a.max_tokens < 1) return fail(invalid_argument("--max-tokens must be at least 1"));
  if (a.chunk_size < 0) return fail(invalid_argument("--chunk-size must be >= 0"));
  auto config = model::load_model_config(a.model_dir);
  if (!config.is_ok()) return fail(config.status());
  const int64_t total = static_cast<int64_t>(prompt->size()) + a.max_tokens;
  if (total > config->max_position_embeddings)
    return fail(invalid_argument(str_cat("prompt + --max-tokens = ", total, " exceeds the model's max_position_embeddings ",
                                         config->max_position_embeddings)));
  runtime::EngineOptions o;
  o.num_threads = a.threads;
  auto weights = chosen_weights(a.dtype, a.quantize);
  if (!weights.is_ok()) return fail(weights.status());
  o.weight_dtype = weights->dtype;
  o.quantize_fp8 = weights->fp8;
  o.max_seqs = 1;
  o.max_model_len = total;
  o.max_batched_tokens = a.chunk_size > 0 ? a.chunk_size : static_cast<int32_t>(prompt->size());
  auto engine = runtime::Engine::load(a.model_dir, o);
  if (!engine.is_ok()) return fail(engine.status());
  runtime::StaticBatch batch(**engine, o.max_batched_tokens);
  batch.add(*prompt, a.sampling);
  const bool want_logits = !a.logits_out.empty();
  std::vector<float> logits;
  int64_t vocab = 0;
  double prefill_s = 0, decode_s = 0;
  std::string finish = "length";
  while (batch.generated(0) < a.max_tokens) {
    const bool prefill = batch.prefilling(0);
    const auto start = std::chrono::steady_clock::now();
    auto step = batch.step(a.chunk_size, want_logits);
    if (!step.is_ok()) return fail(step.status());
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    (prefill ? prefill_s : decode_s) += s;
    if (want_logits) {
      logits.insert(logits.end(), step->result.logits.begin(), step->result.logits.end());
      vocab = step->result.vocab_size;
    }
    if (!step->sampled.empty() && !a.ignore_eos) {
      const int32_t tok = batch.tokens(0).back();
      const auto& eos = (*engine)->config().eos_token_ids;
      if (std::find(eos.begin(), eos.end(), tok) != eos.end()) {
        finish = "stop";
        break;
      }
    }
  }
  const auto& tokens = batch.tokens(0);
  std::string out;
  for (size_t i = prompt->size(); i < tokens.size(); ++i) out += str_cat(i > prompt->size() ? "," : "", tokens[i]);
  const int32_t generated = batch.generated(0);
  std::printf("dtype: %s\n", std::string(runtime::weight_dtype_name((*engine)->memory_plan().weight_dtype)).c_str());
  std::printf("tokens: %s\n", out.c_str());
  std::printf("finish: %s\n", finish.c_str());
  std::printf("prefill: %zu tokens in %.3f s (%.1f tokens/s)\n", prompt->size(), prefill_s,
              prefill_s > 0 ? static_cast<double>(prompt->size()) / prefill_s : 0.0);
  std::printf("decode: %d tokens in %.3f s (%.1f tokens/s)\n", generated - 1, decode_s,
              decode_s > 0 ? (generated - 1) / decode_s : 0.0);
  if (want_logits) {
    const int64_t positions = vocab > 0 ? static_cast<int64_t>(logits.size()) / vocab : 0;
    model::TensorToWrite t;
    t.name = "logits";
    t.dtype = DType::kF32;
    t.shape = {positions, vocab};
    t.bytes.assign(reinterpret_cast<const char*>(logits.data()), logits.size() * sizeof(float));
    const Status st = model::write_safetensors(a.logits_out, {t});
    if (!st.is_ok()) return fail(st);
    std::printf("logits: [%lld, %lld] written to %s\n", static_cast<long long>(positions), static_cast<long long>(vocab),
                a.logits_out.c_str());
  }
  return 0;
}

KILN_REGISTER_COMMAND(kGenerate, "generate", "Generate tokens for a prompt of token ids (offline, no server)",
                      [](CLI::App& sub) -> std::function<int()> {
                        auto a = std::make_shared<GenerateArgs>();
                        a->sampling.temperature = 0.0f;
                        sub.add_option("--model", a->model_dir, "Model directory")->required();
                        sub.add_option("--prompt-ids", a->prompt_ids, "Prompt token ids, comma separated")->required();
                        sub.add_option("--max-tokens", a->max_tokens, "Tokens to generate")->capture_default_str();
                        sub.add_option("--temperature", a->sampling.temperature, "0 = greedy")->capture_default_str();
                        sub.add_option("--top-k", a->sampling.top_k, "0 = off")->capture_default_str();
                        sub.add_option("--top-p", a->sampling.top_p, "1 = off")->capture_default_str();
                        sub.add_option("--min-p", a->sampling.min_p, "0 = off")->capture_default_str();
                        sub.add_option("--repetition-penalty", a->sampling.repetition_penalty, "1 = off")->capture_default_str();
                        sub.add_option("--presence-penalty", a->sampling.presence_penalty, "0 = off")->capture_default_str();
                        sub.add_option("--frequency-penalty", a->sampling.frequency_penalty, "0 = off")->capture_default_str();
                        sub.add_option("--seed", a->sampling.seed, "Sampling seed")->capture_default_str();
                        sub.add_option("--chunk-size", a->chunk_size, "Prefill chunk size; 0 = whole prompt")->capture_default_str();
                        sub.add_option("--logits-out", a->logits_out, "Write the logits of every computed position (safetensors)");
                        sub.add_option("--threads", a->threads, "CPU threads; 0 = all cores")->capture_default_str();
                        add_dtype_options(sub, &a->dtype, &a->quantize);
                        sub.add_flag("--ignore-eos", a->ignore_eos, "Keep generating after an end-of-sequence token");
                        return [a] { return run(*a); };
                      });

}  // namespace
}  // namespace kiln::app
