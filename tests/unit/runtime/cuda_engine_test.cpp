// The CUDA engine against the CPU engine on the tiny checkpoints of every architecture:
// logits of whole prompts and of chunked prefill, and batched decode through the CUDA graphs of
// each batch-size bucket (bitwise equal to the same steps run without graphs).
#include <gtest/gtest.h>

#include "cuda_test_util.h"
#include "engine_test_util.h"
#include "kiln/runtime/backend/cuda/device.h"

namespace kiln::runtime {
namespace {

using testing::BlockPool;
using testing::Seq;

constexpr int32_t kVocab = 2048;

// Largest |a - b| over the largest |b| across all rows.
double rel_error(const std::vector<std::vector<float>>& a, const std::vector<std::vector<float>>& b) {
  double err = 0.0, scale = 1e-30;
  for (size_t r = 0; r < std::min(a.size(), b.size()); ++r)
    for (size_t i = 0; i < b[r].size(); ++i) {
      if (std::isnan(a[r][i])) return INFINITY;
      err = std::max(err, std::abs(static_cast<double>(a[r][i]) - b[r][i]));
      scale = std::max(scale, std::abs(static_cast<double>(b[r][i])));
    }
  return err / scale;
}

std::vector<int32_t> prompt(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<int32_t> t(n);
  for (int32_t& x : t) x = static_cast<int32_t>(rng() % kVocab);
  return t;
}

// bf16 against the CPU's f32, as max|diff| / max|logit|: 3e-2, except tiny-gemma3. Its logit cap
// of 2, hidden size 64 and four norms a layer leave bf16 little headroom: transformers itself,
// run in bf16, is 4.7% off its own f32 logits on the fixture's checkpoint (tiny-gemma3.json), and
// kiln's CUDA engine is 3.1-4.1% off them there (cuda_fidelity_test.cpp) and 6.8% off the CPU on
// this test's checkpoint, with no position standing out.
double prompt_tolerance(const std::string& preset) { return preset == "tiny-gemma3" ? 8e-2 : 3e-2; }

class CudaEngineTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device";
  }
};

TEST_P(CudaEngineTest, PromptLogitsMatchCpuWholeAndChunked) {
  const auto dir = testing::tiny_model(GetParam(), 3, kVocab);
  auto cpu = testing::load_engine(dir);
  auto gpu = testing::load_cuda_engine(dir, true);
  ASSERT_TRUE(cpu && gpu);
  EXPECT_GT(gpu->memory_usage().weights_bytes, 0);
  EXPECT_GE(gpu->memory_usage().kv_cache_bytes, 60 << 20);
  const std::vector<int32_t> tokens = prompt(70, 11);
  const auto want = testing::logits_in_chunks(*cpu, tokens, {70}, 1);
  const auto whole = testing::logits_in_chunks(*gpu, tokens, {70}, 2);
  const auto chunked = testing::logits_in_chunks(*gpu, tokens, {7, 13, 1, 20}, 3);
  ASSERT_EQ(whole.size(), tokens.size());
  ASSERT_EQ(chunked.size(), tokens.size());
  // Which positions are off says more than the largest error: a window's edge, a chunk's.
  std::string per_row;
  for (size_t r = 0; r < whole.size(); ++r)
    per_row += str_cat(r, ":", rel_error({whole[r]}, {want[r]}), r + 1 < whole.size() ? " " : "");
  const double tolerance = prompt_tolerance(GetParam());
  EXPECT_LT(rel_error(whole, want), tolerance) << GetParam() << " whole prompt; per position " << per_row;
  EXPECT_LT(rel_error(chunked, want), tolerance) << GetParam() << " chunked prefill";
}

// Teacher-forced batched decode: both engines are fed the CPU's tokens. The GPU's greedy choice
// must equal the CPU's unless the CPU's top two logprobs are within 0.05 of each other.
TEST_P(CudaEngineTest, BatchedDecodeThroughGraphsMatchesCpuAndEagerSteps) {
  const auto dir = testing::tiny_model(GetParam(), 5, kVocab);
  auto cpu = testing::load_engine(dir);
  auto graph = testing::load_cuda_engine(dir, true);
  auto eager = testing::load_cuda_engine(dir, false);
  ASSERT_TRUE(cpu && graph && eager);
  Engine* engines[3] = {cpu.get(), graph.get(), eager.get()};
  std::vector<BlockPool> pools;
  for (Engine* e : engines) pools.emplace_back(e->kv_geometry().num_blocks, 9);
  const std::vector<size_t> prompt_lens = {9, 33, 1, 17, 50};
  std::vector<std::vector<Seq>> seqs(3);
  for (auto& ss : seqs)
    for (size_t i = 0; i < prompt_lens.size(); ++i) {
      Seq s;
      s.tokens = prompt(prompt_lens[i], static_cast<uint32_t>(100 + i));
      s.params.temperature = 0.0f;
      s.params.num_logprobs = 2;
      ss.push_back(s);
    }
  // Step 0 prefills sequences 0-2; step 1 decodes them while prefilling 3-4 (a mixed batch);
  // steps 2.. decode all five (bucket 8, three padding rows) through the graph.
  int near_ties = 0;
  for (int step = 0; step < 10; ++step) {
    std::vector<StepResult> results;
    for (int e = 0; e < 3; ++e) {
      StepPlan plan;
      const int32_t bs = engines[e]->kv_geometry().block_size;
      for (size_t i = 0; i < seqs[e].size(); ++i) {
        Seq& s = seqs[e][i];
        if (step == 0 && i >= 3) continue;
        const int32_t n = static_cast<int32_t>(s.tokens.size()) - s.computed;
        testing::add_to_plan(plan, s, n, bs, pools[static_cast<size_t>(e)], true);
      }
      auto r = engines[e]->step(plan);
      ASSERT_TRUE(r.is_ok()) << "engine " << e << " step " << step << ": " << r.status().to_string();
      results.push_back(std::move(r).value());
    }
    const size_t m = results[0].samples.size();
    for (size_t j = 0; j < m; ++j) {
      const SampledToken& c = results[0].samples[j];
      const SampledToken& g = results[1].samples[j];
      const SampledToken& x = results[2].samples[j];
      SCOPED_TRACE(str_cat(GetParam(), " step ", step, " sample ", j));
      EXPECT_EQ(g.token, x.token) << "graph and eager steps differ";
      EXPECT_EQ(g.logprob, x.logprob) << "graph and eager steps differ";
      ASSERT_EQ(c.top.size(), 2u);
      if (g.token != c.token) {
        ++near_ties;
        EXPECT_LT(c.top[0].logprob - c.top[1].logprob, 0.05) << "the GPU chose " << g.token << ", the CPU " << c.token;
      } else {
        EXPECT_NEAR(g.logprob, c.logprob, 0.05);
      }
    }
    // Every engine continues with the CPU's tokens.
    size_t j = 0;
    for (size_t i = 0; i < seqs[0].size(); ++i) {
      if (step == 0 && i >= 3) continue;
      for (int e = 0; e < 3; ++e) seqs[static_cast<size_t>(e)][i].tokens.push_back(results[0].samples[j].token);
      ++j;
    }
  }
  EXPECT_LE(near_ties, 3);
}

INSTANTIATE_TEST_SUITE_P(Presets, CudaEngineTest,
                         ::testing::Values("tiny-llama", "tiny-mistral", "tiny-qwen2", "tiny-qwen3", "tiny-qwen3-moe",
                                           "tiny-mixtral", "tiny-gemma3"));

}  // namespace
}  // namespace kiln::runtime
