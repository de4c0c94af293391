// The CPU engine with bf16 and q8 weights against the f32 engine (the reference) on the same
// random checkpoints.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "engine_test_util.h"
#include "kiln/runtime/static_batch.h"

namespace kiln::runtime {
namespace {

using testing::load_engine;
using testing::logits_in_chunks;
using testing::tiny_model;

std::vector<int32_t> random_tokens(size_t n, uint32_t seed, int32_t vocab) {
  std::mt19937 rng(seed);
  std::vector<int32_t> t(n);
  for (auto& x : t) x = static_cast<int32_t>(rng() % static_cast<uint32_t>(vocab));
  return t;
}

int32_t argmax(const std::vector<float>& v) {
  return static_cast<int32_t>(std::max_element(v.begin(), v.end()) - v.begin());
}

class LowpEngineTest : public ::testing::TestWithParam<std::string> {};

// Every logit of every position within 1.5% of the largest |logit| of that position: bf16 keeps 8
// bits of mantissa in the weights and activations of every linear, with f32 sums.
TEST_P(LowpEngineTest, Bf16LogitsTrackTheF32Engine) {
  const auto dir = tiny_model(GetParam(), 5);
  auto f32 = load_engine(dir);
  auto bf16 = load_engine(dir, 2, 512, WeightDType::kBF16);
  ASSERT_TRUE(f32 && bf16);
  EXPECT_EQ(bf16->memory_plan().weight_dtype, WeightDType::kBF16);
  EXPECT_LT(bf16->memory_usage().weights_bytes, f32->memory_usage().weights_bytes);
  EXPECT_EQ(bf16->memory_usage().weights_bytes, bf16->memory_plan().weights_bytes);
  const auto tokens = random_tokens(40, 6, 2048);
  const auto want = logits_in_chunks(*f32, tokens, {40}, 1);
  const auto got = logits_in_chunks(*bf16, tokens, {7, 33}, 2);
  ASSERT_EQ(want.size(), got.size());
  double worst = 0;
  for (size_t p = 0; p < want.size(); ++p) {
    double scale = 1e-30, err = 0;
    for (size_t i = 0; i < want[p].size(); ++i) {
      scale = std::max(scale, std::fabs(static_cast<double>(want[p][i])));
      err = std::max(err, std::fabs(static_cast<double>(want[p][i]) - got[p][i]));
    }
    worst = std::max(worst, err / scale);
  }
  EXPECT_LT(worst, 0.015) << GetParam();  // measured: 0.005 on each preset
  std::printf("%s: bf16 logits within %.4f of the largest |logit|\n", GetParam().c_str(), worst);
}

// Greedy decoding: the f32 engine's greedy continuation is fed to the q8 (and bf16) engine, whose
// argmax must agree at >= 95% of the steps. Teacher forcing, so that one disagreement does not
// send the rest of the sequence elsewhere. KILN_LOWP_AGREEMENT_STEPS sets the steps (docs give
// 512).
TEST_P(LowpEngineTest, Q8AndBf16GreedyTokensAgreeWithF32) {
  const char* env = std::getenv("KILN_LOWP_AGREEMENT_STEPS");
  const int steps = env != nullptr ? std::atoi(env) : 96;
  ASSERT_GT(steps, 0);
  const auto dir = tiny_model(GetParam(), 7);
  auto f32 = load_engine(dir, 2, 16 + steps + 8);
  ASSERT_TRUE(f32);
  StaticBatch batch(*f32, 256);
  SamplingParams greedy;
  greedy.temperature = 0.0f;
  const auto prompt = random_tokens(16, 8, 2048);
  batch.add(prompt, greedy);
  while (batch.generated(0) < steps) {
    auto s = batch.step(0, false);
    ASSERT_TRUE(s.is_ok()) << s.status().to_string();
  }
  const std::vector<int32_t> seq = batch.tokens(0);
  const std::vector<int32_t> fed(seq.begin(), seq.end() - 1);
  for (WeightDType dt : {WeightDType::kQ8, WeightDType::kBF16}) {
    auto e = load_engine(dir, 2, 16 + steps + 8, dt);
    ASSERT_TRUE(e);
    EXPECT_EQ(e->memory_usage().weights_bytes, e->memory_plan().weights_bytes) << weight_dtype_name(dt);
    const auto logits = logits_in_chunks(*e, fed, {64}, 3);
    ASSERT_EQ(logits.size(), fed.size());
    int agree = 0;
    for (int i = 0; i < steps; ++i) agree += argmax(logits[prompt.size() - 1 + static_cast<size_t>(i)]) == seq[prompt.size() + static_cast<size_t>(i)];
    std::printf("%s %s: %d of %d greedy steps agree with f32\n", GetParam().c_str(),
                std::string(weight_dtype_name(dt)).c_str(), agree, steps);
    EXPECT_GE(agree, steps * 95 / 100) << weight_dtype_name(dt);
  }
}

INSTANTIATE_TEST_SUITE_P(Presets, LowpEngineTest,
                         ::testing::Values("tiny-llama", "tiny-mistral", "tiny-qwen2", "tiny-qwen3"),
                         testing::preset_test_name);

}  // namespace
}  // namespace kiln::runtime
