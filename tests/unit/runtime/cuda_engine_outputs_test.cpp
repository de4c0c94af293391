// The CUDA engine's outputs instead of samples (StepOutputKind) against the CPU engine's: the hidden
// states embeddings pool (last token, and chunked sums for mean pooling) and a reranker's logits.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "engine_test_util.h"
#include "kiln/runtime/backend/cuda/device.h"

namespace kiln::runtime {
namespace {

// Largest |a - b| over the largest |b|.
double rel_error(const std::vector<float>& a, const std::vector<float>& b) {
  double err = 0.0, scale = 1e-30;
  if (a.size() != b.size()) return INFINITY;
  for (size_t i = 0; i < b.size(); ++i) {
    if (std::isnan(a[i])) return INFINITY;
    err = std::max(err, std::abs(static_cast<double>(a[i]) - b[i]));
    scale = std::max(scale, std::abs(static_cast<double>(b[i])));
  }
  return err / scale;
}

std::vector<int32_t> prompt(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<int32_t> t(n);
  for (int32_t& x : t) x = static_cast<int32_t>(rng() % 2048);
  return t;
}

TEST(CudaEngineOutputs, HiddenStatesAndLogitsMatchCpu) {
  if (cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device";
  const auto dir = testing::tiny_model("tiny-qwen3-embedding", 3);
  auto cpu = testing::load_engine(dir);
  auto gpu = testing::load_cuda_engine(dir, true);
  ASSERT_TRUE(cpu && gpu);
  const auto tokens = prompt(50, 12);
  for (StepOutputKind kind : {StepOutputKind::kLastHidden, StepOutputKind::kLastLogits}) {
    const auto want = testing::outputs_in_chunks(*cpu, tokens, 64, kind, 1).at(0);
    const auto got = testing::outputs_in_chunks(*gpu, tokens, 64, kind, 2).at(0);
    EXPECT_LT(rel_error(got, want), 3e-2) << static_cast<int>(kind);
  }
  const auto want = testing::outputs_in_chunks(*cpu, tokens, 16, StepOutputKind::kSumHidden, 3);
  const auto got = testing::outputs_in_chunks(*gpu, tokens, 16, StepOutputKind::kSumHidden, 4);
  ASSERT_EQ(got.size(), want.size());
  for (size_t c = 0; c < want.size(); ++c) EXPECT_LT(rel_error(got[c], want[c]), 3e-2) << "chunk " << c;
}

}  // namespace
}  // namespace kiln::runtime
