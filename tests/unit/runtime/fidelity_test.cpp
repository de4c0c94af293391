// Fidelity against Hugging Face transformers: kiln's CPU engine, on checkpoints remade from the
// fixtures' seeds, against logits that transformers computed in float32
// (tools/make_fidelity_fixtures.py wrote tests/fixtures/fidelity/<preset>.{safetensors,json}).
// A missing fixture fails the test: fidelity is never silently skipped.
#include <gtest/gtest.h>

#include "engine_test_util.h"
#include "fidelity_fixture.h"
#include "kiln/runtime/static_batch.h"

namespace kiln::runtime {
namespace {

using testing::Fixture;
using testing::load_fixture;

constexpr double kTolerance = 1e-4;  // max|kiln - hf| / max|hf| per logit row

class FidelityTest : public ::testing::TestWithParam<std::string> {};

TEST_P(FidelityTest, fidelity_logits_and_greedy_match_transformers) {
  Fixture f;
  if (!load_fixture(GetParam(), &f)) return;
  auto engine = testing::load_engine(testing::tiny_model(GetParam(), f.seed, f.vocab));
  ASSERT_TRUE(engine);
  const int32_t n = static_cast<int32_t>(f.prompt.size());

  const auto expect_close = [](const auto& kiln, const auto& hf, const std::string& what) {
    testing::expect_close(kiln, hf, kTolerance, what);
  };
  expect_close(testing::logits_in_chunks(*engine, f.prompt, {n}, 1), f.prompt_logits, GetParam() + " whole prompt");
  expect_close(testing::logits_in_chunks(*engine, f.prompt, {1}, 2), f.incremental_logits, GetParam() + " token by token");
  const std::vector<std::vector<int32_t>> splits = {{5, 7}, {1, 11}, {3}, {11, 1}, {2, 9, 1}};
  for (size_t i = 0; i < splits.size(); ++i)
    expect_close(testing::logits_in_chunks(*engine, f.prompt, splits[i], static_cast<uint32_t>(3 + i)), f.prompt_logits,
                 GetParam() + " chunked split " + std::to_string(i));

  StaticBatch batch(*engine, n);
  SamplingParams greedy;
  greedy.temperature = 0;
  batch.add(f.prompt, greedy);
  while (batch.generated(0) < static_cast<int32_t>(f.greedy.size())) {
    auto s = batch.step(0, false);
    ASSERT_TRUE(s.is_ok()) << s.status().to_string();
  }
  const std::vector<int32_t> got(batch.tokens(0).begin() + n, batch.tokens(0).end());
  EXPECT_EQ(got, f.greedy) << GetParam() << " greedy continuation";
}

INSTANTIATE_TEST_SUITE_P(Presets, FidelityTest,
                         ::testing::Values("tiny-llama", "tiny-mistral", "tiny-qwen2", "tiny-qwen3"),
                         testing::preset_test_name);

}  // namespace
}  // namespace kiln::runtime
