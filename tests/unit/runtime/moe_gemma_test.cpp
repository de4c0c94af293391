// The mixture-of-experts routing ops against naive references (skewed routing included), Gemma's
// element-wise ops, and the whole CPU decoder of the tiny qwen3_moe, mixtral and gemma3 presets
// against a naive double-precision decoder (naive_decoder.h): per-token dense experts, plain
// attention loops with each layer's window and RoPE table.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numbers>
#include <numeric>

#include "engine_test_util.h"
#include "kiln/runtime/ops/moe.h"
#include "kiln/runtime/ops/pointwise.h"
#include "naive_decoder.h"
#include "runtime_test_util.h"

namespace kiln::runtime {
namespace {

using testing::host_f32;

DeviceContext cpu_ctx() {
  DeviceContext ctx;
  ctx.device = Device::cpu();
  return ctx;
}

Tensor ids_tensor(std::vector<int32_t>& v, int64_t rows, int64_t cols) {
  return Tensor(v.data(), DType::kI32, Device::cpu(), {rows, cols});
}

TEST(MoeRouteTest, MatchesSoftmaxTopKWithAndWithoutRenormalisation) {
  const int64_t n = 9, e = 16, k = 4;
  auto logits = testing::random_vector(static_cast<size_t>(n * e), 3, 2.0f);
  logits[5] = logits[9] = 7.0f;  // a tie in token 0: the lower expert id comes first
  for (bool normalize : {false, true}) {
    std::vector<int32_t> ids(static_cast<size_t>(n * k));
    std::vector<float> w(static_cast<size_t>(n * k));
    ASSERT_TRUE(ops::moe_route(cpu_ctx(), host_f32(logits, {n, e}), {e, k, normalize}, ids_tensor(ids, n, k),
                               host_f32(w, {n, k}))
                    .is_ok());
    for (int64_t t = 0; t < n; ++t) {
      std::vector<double> p(static_cast<size_t>(e));
      double z = 0;
      for (int64_t i = 0; i < e; ++i) z += p[static_cast<size_t>(i)] = std::exp(static_cast<double>(logits[static_cast<size_t>(t * e + i)]));
      std::vector<int64_t> order(static_cast<size_t>(e));
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return p[static_cast<size_t>(a)] > p[static_cast<size_t>(b)]; });
      double sum = 0;
      for (int64_t j = 0; j < k; ++j) sum += p[static_cast<size_t>(order[static_cast<size_t>(j)])] / z;
      for (int64_t j = 0; j < k; ++j) {
        const int64_t want = order[static_cast<size_t>(j)];
        EXPECT_EQ(ids[static_cast<size_t>(t * k + j)], want) << "token " << t << " slot " << j;
        const double pw = p[static_cast<size_t>(want)] / z / (normalize ? sum : 1.0);
        EXPECT_NEAR(w[static_cast<size_t>(t * k + j)], pw, 1e-6) << "token " << t << " slot " << j;
      }
    }
    EXPECT_EQ(ids[0], 5);
    EXPECT_EQ(ids[1], 9);
  }
  std::vector<int32_t> ids(4);
  std::vector<float> w(4);
  EXPECT_FALSE(ops::moe_route(cpu_ctx(), host_f32(logits, {n, e}), {e, e + 1, false}, ids_tensor(ids, 1, 4),
                              host_f32(w, {1, 4}))
                   .is_ok());
}

struct Permuted {
  std::vector<int32_t> start, tokens, rows;
};

Permuted permute(std::vector<int32_t> ids, int64_t n, int64_t k, int64_t e) {
  Permuted p;
  p.start.resize(static_cast<size_t>(e + 1));
  p.tokens.resize(static_cast<size_t>(n * k));
  p.rows.resize(static_cast<size_t>(n * k));
  const Status s = ops::moe_permute(cpu_ctx(), ids_tensor(ids, n, k), e, testing::host_i32(p.start),
                                    testing::host_i32(p.tokens), testing::host_i32(p.rows));
  EXPECT_TRUE(s.is_ok()) << s.to_string();
  return p;
}

TEST(MoePermuteTest, GroupsPairsByExpertStablyWithSkewedAndEmptyExperts) {
  // Every token to expert 2 (k = 1): one run, every other expert empty.
  Permuted all = permute({2, 2, 2, 2, 2}, 5, 1, 4);
  EXPECT_EQ(all.start, (std::vector<int32_t>{0, 0, 0, 5, 5}));
  EXPECT_EQ(all.tokens, (std::vector<int32_t>{0, 1, 2, 3, 4}));
  EXPECT_EQ(all.rows, (std::vector<int32_t>{0, 1, 2, 3, 4}));
  // Random routing, k = 3 of 6: each pair's row holds its token, runs are sorted by expert and
  // tokens are in order within a run.
  const int64_t n = 11, k = 3, e = 6;
  std::vector<int32_t> ids;
  std::mt19937 rng(7);
  for (int64_t t = 0; t < n; ++t) {
    std::vector<int32_t> experts(static_cast<size_t>(e));
    std::iota(experts.begin(), experts.end(), 0);
    std::shuffle(experts.begin(), experts.end(), rng);
    ids.insert(ids.end(), experts.begin(), experts.begin() + k);
  }
  Permuted p = permute(ids, n, k, e);
  EXPECT_EQ(p.start.back(), n * k);
  for (int64_t pair = 0; pair < n * k; ++pair) {
    const int32_t row = p.rows[static_cast<size_t>(pair)];
    EXPECT_EQ(p.tokens[static_cast<size_t>(row)], pair / k);
    const int32_t x = ids[static_cast<size_t>(pair)];
    EXPECT_GE(row, p.start[static_cast<size_t>(x)]);
    EXPECT_LT(row, p.start[static_cast<size_t>(x) + 1]);
  }
  for (int64_t x = 0; x < e; ++x)
    for (int32_t r = p.start[static_cast<size_t>(x)] + 1; r < p.start[static_cast<size_t>(x) + 1]; ++r)
      EXPECT_LT(p.tokens[static_cast<size_t>(r - 1)], p.tokens[static_cast<size_t>(r)]);
  // An expert id outside the table is an error, not a write out of bounds.
  std::vector<int32_t> bad = {0, 6}, start(7), tokens(2), rows(2);
  EXPECT_FALSE(ops::moe_permute(cpu_ctx(), ids_tensor(bad, 1, 2), 6, testing::host_i32(start), testing::host_i32(tokens),
                                testing::host_i32(rows))
                   .is_ok());
}

TEST(MoeCombineTest, AddsEachTokensWeightedExpertRows) {
  const int64_t n = 3, k = 2, h = 5;
  auto y = testing::random_vector(static_cast<size_t>(n * k * h), 1);
  std::vector<float> w = {0.7f, 0.3f, 0.5f, 0.5f, 1.0f, 0.25f};
  std::vector<int32_t> rows = {4, 0, 1, 5, 3, 2};
  auto out = testing::random_vector(static_cast<size_t>(n * h), 2);
  const auto before = out;
  ASSERT_TRUE(ops::moe_combine(cpu_ctx(), host_f32(y, {n * k, h}), testing::host_i32(rows), host_f32(w, {n, k}),
                               host_f32(out, {n, h}))
                  .is_ok());
  for (int64_t t = 0; t < n; ++t)
    for (int64_t i = 0; i < h; ++i) {
      double want = before[static_cast<size_t>(t * h + i)];
      for (int64_t j = 0; j < k; ++j)
        want += w[static_cast<size_t>(t * k + j)] * y[static_cast<size_t>(rows[static_cast<size_t>(t * k + j)] * h + i)];
      EXPECT_NEAR(out[static_cast<size_t>(t * h + i)], want, 1e-5);
    }
}

// The grouped expert GEMMs are CUDA's: the CPU never groups its experts (its per-expert loop is the
// reference), and the grouped ops refuse a CPU context.
TEST(MoeGroupedGemmTest, CpuExpertsAreNotGrouped) {
  const DeviceContext ctx = cpu_ctx();
  auto wv = testing::random_vector(16 * 8, 4);
  const HostMatrix m{wv.data(), DType::kF32, 16, 8, "w"};
  auto w = ops::load_linear_weight(ctx, std::span<const HostMatrix>(&m, 1));
  ASSERT_TRUE(w.is_ok());
  std::vector<ops::LinearWeight> experts;
  experts.push_back(std::move(w).value());
  EXPECT_FALSE(ops::grouped_linear_supported(ctx, experts));
  auto g = ops::group_linear_weights(ctx, experts);
  EXPECT_EQ(g.status().code(), StatusCode::kInvalidArgument);
  ops::GroupedLinearWeight none;
  auto x = testing::random_vector(8, 5);
  std::vector<int32_t> start = {0, 1};
  std::vector<float> out(8);
  EXPECT_FALSE(ops::moe_grouped_linear(ctx, host_f32(x, {1, 8}), testing::host_i32(start), none, host_f32(out, {1, 8})).is_ok());
}

TEST(GemmaOpsTest, GegluScaleAndSoftcapMatchTheirFormulas) {
  const int64_t n = 4, inter = 19;
  auto gu = testing::random_vector(static_cast<size_t>(n * 2 * inter), 5, 3.0f);
  std::vector<float> out(static_cast<size_t>(n * inter));
  ASSERT_TRUE(ops::geglu(cpu_ctx(), host_f32(gu, {n, 2 * inter}), host_f32(out, {n, inter})).is_ok());
  for (int64_t t = 0; t < n; ++t)
    for (int64_t i = 0; i < inter; ++i) {
      const double g = gu[static_cast<size_t>(t * 2 * inter + i)], u = gu[static_cast<size_t>(t * 2 * inter + inter + i)];
      const double want = 0.5 * g * (1 + std::tanh(std::sqrt(2 / std::numbers::pi) * (g + 0.044715 * g * g * g))) * u;
      EXPECT_NEAR(out[static_cast<size_t>(t * inter + i)], want, 1e-5 * (1 + std::abs(want)));
    }
  // The gated activations' shared checks name the op that refused.
  for (const std::initializer_list<int64_t> bad_out : {std::initializer_list<int64_t>{n, inter - 1}, {n - 1, inter}}) {
    const Status bad = ops::geglu(cpu_ctx(), host_f32(gu, {n, 2 * inter}), host_f32(out, bad_out));
    EXPECT_EQ(bad.code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(bad.message().rfind("geglu", 0), 0u) << bad.message();
  }
  auto x = testing::random_vector(12, 6, 10.0f);
  const auto x0 = x;
  ASSERT_TRUE(ops::tanh_softcap(cpu_ctx(), host_f32(x, {3, 4}), 3.0f).is_ok());
  for (size_t i = 0; i < x.size(); ++i) EXPECT_NEAR(x[i], 3.0 * std::tanh(x0[i] / 3.0), 1e-5);
  ASSERT_TRUE(ops::scale(cpu_ctx(), host_f32(x, {3, 4}), 2.0f).is_ok());
  for (size_t i = 0; i < x.size(); ++i) EXPECT_NEAR(x[i], 6.0 * std::tanh(x0[i] / 3.0), 1e-5);
  EXPECT_FALSE(ops::tanh_softcap(cpu_ctx(), host_f32(x, {3, 4}), 0.0f).is_ok());
}

class NaiveDecoderTest : public ::testing::TestWithParam<std::string> {};

// 20 tokens: past tiny-gemma3's window of 5, and enough tokens that most experts get some.
TEST_P(NaiveDecoderTest, EngineLogitsMatchTheNaiveDecoder) {
  const auto dir = testing::tiny_model(GetParam(), 11);
  auto engine = testing::load_engine(dir);
  ASSERT_TRUE(engine);
  testing::NaiveDecoder naive(dir);
  std::vector<int32_t> tokens(20);
  std::mt19937 rng(3);
  for (auto& t : tokens) t = static_cast<int32_t>(rng() % 2048);
  const auto want = naive.logits(tokens);
  for (const auto& chunks : std::vector<std::vector<int32_t>>{{20}, {1}, {7, 13}}) {
    const auto got = testing::logits_in_chunks(*engine, tokens, chunks, 5);
    ASSERT_EQ(got.size(), want.size());
    for (size_t p = 0; p < want.size(); ++p)
      EXPECT_LT(testing::rel_error(got[p], want[p]), 2e-5) << GetParam() << " position " << p << " chunk " << chunks[0];
  }
}

INSTANTIATE_TEST_SUITE_P(Presets, NaiveDecoderTest, ::testing::Values("tiny-qwen3-moe", "tiny-mixtral", "tiny-gemma3"),
                         testing::preset_test_name);

TEST(GemmaWindowTest, IgnoringWindowsAndLocalRopeWouldBeCaught) {
  // The same checkpoint read as if every layer were global gives other logits: the agreement
  // above is not one that would hold with the windows or the local RoPE table ignored.
  const auto dir = testing::tiny_model("tiny-gemma3", 11);
  auto engine = testing::load_engine(dir);
  ASSERT_TRUE(engine);
  std::vector<int32_t> tokens(12);
  std::iota(tokens.begin(), tokens.end(), 100);
  const auto got = testing::logits_in_chunks(*engine, tokens, {12}, 1);
  testing::NaiveDecoder naive(dir);
  EXPECT_LT(testing::rel_error(got.back(), naive.logits(tokens).back()), 2e-5);
  model::ModelConfig global = naive.config();
  global.sliding_window.reset();
  naive.set_config(global);
  EXPECT_GT(testing::rel_error(got.back(), naive.logits(tokens).back()), 1e-3);
}

}  // namespace
}  // namespace kiln::runtime
