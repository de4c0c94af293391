// Fidelity against Hugging Face transformers: kiln's CPU engine, on checkpoints remade from the
// fixtures' seeds, against logits that transformers computed in float32
// (tools/make_fidelity_fixtures.py wrote tests/fixtures/fidelity/<preset>.{safetensors,json}).
// A missing fixture fails the test.
#include <gtest/gtest.h>

#include <cstdio>
#include <utility>

#include "engine_test_util.h"
#include "fidelity_fixture.h"
#include "kiln/runtime/static_batch.h"

namespace kiln::runtime {
namespace {

using testing::Fixture;
using testing::load_fixture;

constexpr double kTolerance = 1e-4;  // max|kiln - hf| / max|hf| per logit row

void expect_fidelity(const std::string& preset) {
  Fixture f;
  if (!load_fixture(preset, &f)) return;
  auto engine = testing::load_engine(testing::tiny_model(preset, f.seed, f.vocab));
  ASSERT_TRUE(engine);
  const int32_t n = static_cast<int32_t>(f.prompt.size());

  const auto expect_close = [](const auto& kiln, const auto& hf, const std::string& what) {
    testing::expect_close(kiln, hf, kTolerance, what);
  };
  expect_close(testing::logits_in_chunks(*engine, f.prompt, {n}, 1), f.prompt_logits, preset + " whole prompt");
  expect_close(testing::logits_in_chunks(*engine, f.prompt, {1}, 2), f.incremental_logits, preset + " token by token");
  const std::vector<std::vector<int32_t>> splits = {{5, 7}, {1, 11}, {3}, {11, 1}, {2, 9, 1}};
  for (size_t i = 0; i < splits.size(); ++i)
    expect_close(testing::logits_in_chunks(*engine, f.prompt, splits[i], static_cast<uint32_t>(3 + i)), f.prompt_logits,
                 preset + " chunked split " + std::to_string(i));

  StaticBatch batch(*engine, n);
  SamplingParams greedy;
  greedy.temperature = 0;
  batch.add(f.prompt, greedy);
  while (batch.generated(0) < static_cast<int32_t>(f.greedy.size())) {
    auto s = batch.step(0, false);
    ASSERT_TRUE(s.is_ok()) << s.status().to_string();
  }
  const std::vector<int32_t> got(batch.tokens(0).begin() + n, batch.tokens(0).end());
  EXPECT_EQ(got, f.greedy) << preset << " greedy continuation";
}

class FidelityTest : public ::testing::TestWithParam<std::string> {};

TEST_P(FidelityTest, fidelity_logits_and_greedy_match_transformers) { expect_fidelity(GetParam()); }

// bf16 and q8 weights (docs/cpu-dtypes.md) against the same transformers logits: the error the
// weight format adds to the f32 path, held to a stated bound. The bound is per logit row, relative
// to the row's largest |logit|, and about twice the worst row measured over the four presets
// (bf16 0.6%, q8 1.1%); the greedy agreement of each format is asserted in lowp_engine_test.cpp.
class LowPrecisionFidelityTest : public ::testing::TestWithParam<std::string> {};

TEST_P(LowPrecisionFidelityTest, bf16_and_q8_logits_stay_near_transformers) {
  Fixture f;
  if (!load_fixture(GetParam(), &f)) return;
  const int32_t n = static_cast<int32_t>(f.prompt.size());
  for (const auto& [dtype, tolerance] : {std::pair{WeightDType::kBF16, 1.5e-2}, std::pair{WeightDType::kQ8, 3.5e-2}}) {
    auto engine = testing::load_engine(testing::tiny_model(GetParam(), f.seed, f.vocab), 2, 512, dtype);
    ASSERT_TRUE(engine);
    const auto logits = testing::logits_in_chunks(*engine, f.prompt, {n}, 1);
    double worst = 0;
    for (size_t r = 0; r < logits.size(); ++r) {
      double err = 0, scale = 0;
      for (size_t i = 0; i < logits[r].size(); ++i) {
        err = std::max(err, std::abs(static_cast<double>(logits[r][i]) - f.prompt_logits[r][i]));
        scale = std::max(scale, std::abs(static_cast<double>(f.prompt_logits[r][i])));
      }
      worst = std::max(worst, err / scale);
    }
    std::printf("%s %s: worst row max|kiln - hf| / max|hf| = %.4f\n", GetParam().c_str(),
                std::string(weight_dtype_name(dtype)).c_str(), worst);
    testing::expect_close(logits, f.prompt_logits, tolerance, GetParam() + " " + std::string(weight_dtype_name(dtype)));
  }
}

INSTANTIATE_TEST_SUITE_P(Presets, LowPrecisionFidelityTest,
                         ::testing::Values("tiny-llama", "tiny-mistral", "tiny-qwen2", "tiny-qwen3"),
                         testing::preset_test_name);

INSTANTIATE_TEST_SUITE_P(Presets, FidelityTest,
                         ::testing::Values("tiny-llama", "tiny-mistral", "tiny-qwen2", "tiny-qwen3", "tiny-qwen3-moe",
                                           "tiny-mixtral", "tiny-gemma3"),
                         testing::preset_test_name);

}  // namespace
}  // namespace kiln::runtime
