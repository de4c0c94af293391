// FP8 checkpoints on the CPU reference: served logits equal those of the same weights dequantized
// by hand (exactly), and stay close to the bf16 checkpoint they were quantized from.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "kiln/core/file.h"
#include "kiln/model/config.h"
#include "fp8_test_util.h"

namespace kiln::runtime {
namespace {

namespace fs = std::filesystem;
using testing::dequantized_copy;
using testing::load_engine;
using testing::logits_in_chunks;

// tiny-llama widened so that projections span several partial 128 x 128 blocks: q 192 rows,
// k/v 96, gate/up 320, K 192 or 320.
fs::path make_fp8_model(const std::string& fp8, uint64_t seed) {
  return testing::make_fp8_model("tiny-llama", fp8, seed, 192, 320, 0, 2048);
}

std::vector<int32_t> prompt() {
  std::vector<int32_t> t;
  for (int32_t i = 0; i < 40; ++i) t.push_back((i * 389 + 11) % 2048);
  return t;
}

class Fp8Engine : public ::testing::TestWithParam<std::string> {};

TEST_P(Fp8Engine, ServesDequantizedWeightsExactlyOnCpu) {
  const fs::path fp8 = make_fp8_model(GetParam(), 5);
  const fs::path ref = dequantized_copy(fp8, fp8.string() + "-dequantized");
  auto a = load_engine(fp8);
  auto b = load_engine(ref);
  ASSERT_TRUE(a && b);
  const auto la = logits_in_chunks(*a, prompt(), {7, 1}, 3);
  const auto lb = logits_in_chunks(*b, prompt(), {7, 1}, 3);
  ASSERT_EQ(la.size(), prompt().size());
  ASSERT_EQ(la, lb);  // the same f32 weights, the same kernels: bit for bit
  std::error_code ec;
  fs::remove_all(fp8, ec);
  fs::remove_all(ref, ec);
}

// The tolerance docs/fp8.md states: FP8 logits against the bf16 checkpoint they were quantized
// from, max |difference| within 10% of the largest |logit| at each position, and the greedy token
// the same at >= 90% of positions. e4m3 keeps 3 mantissa bits (a weight moves by up to 6.25%,
// 3.6% RMS); on this random two-layer model the worst position measured 7.5% (block) and 5.6%
// (channel), with 38 and 40 of 40 greedy tokens equal.
TEST_P(Fp8Engine, StaysCloseToTheBf16Checkpoint) {
  const fs::path fp8 = make_fp8_model(GetParam(), 9);
  const fs::path bf16 = make_fp8_model("", 9);
  auto a = load_engine(fp8);
  auto b = load_engine(bf16);
  ASSERT_TRUE(a && b);
  const auto la = logits_in_chunks(*a, prompt(), {40}, 1);
  const auto lb = logits_in_chunks(*b, prompt(), {40}, 1);
  ASSERT_EQ(la.size(), lb.size());
  size_t same = 0;
  double worst = 0;
  for (size_t p = 0; p < la.size(); ++p) {
    float max_ref = 0, max_diff = 0;
    size_t arg_a = 0, arg_b = 0;
    for (size_t v = 0; v < la[p].size(); ++v) {
      max_ref = std::max(max_ref, std::fabs(lb[p][v]));
      max_diff = std::max(max_diff, std::fabs(la[p][v] - lb[p][v]));
      if (la[p][v] > la[p][arg_a]) arg_a = v;
      if (lb[p][v] > lb[p][arg_b]) arg_b = v;
    }
    worst = std::max(worst, static_cast<double>(max_diff / max_ref));
    same += arg_a == arg_b;
  }
  EXPECT_LE(worst, 0.10);
  EXPECT_GE(static_cast<double>(same) / static_cast<double>(la.size()), 0.9);
  std::printf("fp8 %s: worst max|diff|/max|logit| %.4f, greedy agreement %zu/%zu\n", GetParam().c_str(), worst, same,
              la.size());
  std::error_code ec;
  fs::remove_all(fp8, ec);
  fs::remove_all(bf16, ec);
}

INSTANTIATE_TEST_SUITE_P(Layouts, Fp8Engine, ::testing::Values("block", "channel"));

TEST(Fp8Engine, RefusesPlainWeightsUnderAnFp8Config) {
  const fs::path fp8 = make_fp8_model("block", 4);
  const fs::path broken = fp8.string() + "-noscale";
  dequantized_copy(fp8, broken);
  // Keep the FP8 quantization_config but ship f32 weights: the loader names the tensor and dtype.
  auto config = model::load_model_config(fp8);
  ASSERT_TRUE(config.is_ok());
  ASSERT_TRUE(write_file_atomic(broken / "config.json", model::model_config_to_json(*config)).is_ok());
  EngineOptions o;
  o.num_threads = 1;
  o.kv_cache_bytes = 1 << 20;
  auto e = Engine::load(broken, o);
  ASSERT_FALSE(e.is_ok());
  EXPECT_NE(e.status().message().find("F8_E4M3"), std::string::npos) << e.status().message();
  std::error_code ec;
  fs::remove_all(fp8, ec);
  fs::remove_all(broken, ec);
}

}  // namespace
}  // namespace kiln::runtime
