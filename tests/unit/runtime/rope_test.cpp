// RoPE tables against the scaling formulas (written out here in double), and the fused
// qk-norm + RoPE + KV-write op against a plain reference.
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>

#include "kiln/core/thread_pool.h"
#include "kiln/runtime/ops/qkv_rope.h"
#include "kiln/runtime/rope.h"
#include "runtime_test_util.h"

namespace kiln::runtime {
namespace {

using testing::host_f32;
using testing::host_i32;
using testing::random_vector;

model::ModelConfig base_config(int64_t head_dim) {
  model::ModelConfig c;
  c.hidden_size = head_dim * 2;
  c.num_heads = 2;
  c.num_kv_heads = 1;
  c.head_dim = head_dim;
  c.max_position_embeddings = 64;
  c.rope_theta = 10000.0;
  return c;
}

double default_inv(double base, int64_t i, int64_t dim) { return 1.0 / std::pow(base, 2.0 * i / dim); }

void expect_table(const model::ModelConfig& c, int64_t positions, const std::function<double(int64_t p, int64_t i)>& inv,
                  double scaling) {
  auto table = rope_table(c, positions);
  ASSERT_TRUE(table.is_ok()) << table.status().to_string();
  const int64_t d = c.head_dim, half = d / 2;
  for (int64_t p = 0; p < positions; ++p)
    for (int64_t i = 0; i < half; ++i) {
      const double angle = p * inv(p, i);
      // f32 inv_freq and f32 angle, as transformers: allow f32 rounding of the angle.
      const double tol = 4e-7 * std::max(1.0, std::abs(angle)) + 1e-6;
      EXPECT_NEAR((*table)[static_cast<size_t>(p * d + i)], std::cos(angle) * scaling, tol) << "p=" << p << " i=" << i;
      EXPECT_NEAR((*table)[static_cast<size_t>(p * d + half + i)], std::sin(angle) * scaling, tol) << "p=" << p << " i=" << i;
    }
}

TEST(RopeTest, DefaultAndLinear) {
  auto c = base_config(16);
  expect_table(c, 40, [&](int64_t, int64_t i) { return default_inv(10000.0, i, 16); }, 1.0);
  c.rope_scaling.type = model::RopeScalingType::kLinear;
  c.rope_scaling.factor = 4.0;
  expect_table(c, 40, [&](int64_t, int64_t i) { return default_inv(10000.0, i, 16) / 4.0; }, 1.0);
}

TEST(RopeTest, DynamicNtkUsesEachPositionsOwnLength) {
  auto c = base_config(8);
  c.max_position_embeddings = 16;
  c.rope_scaling.type = model::RopeScalingType::kDynamic;
  c.rope_scaling.factor = 2.0;
  expect_table(c, 40, [&](int64_t p, int64_t i) {
    const double len = std::max<double>(p + 1, 16);
    const double base = 10000.0 * std::pow(2.0 * len / 16 - 1.0, 8.0 / 6.0);
    return default_inv(base, i, 8);
  }, 1.0);
}

TEST(RopeTest, Llama3) {
  auto c = base_config(32);
  auto& s = c.rope_scaling;
  s.type = model::RopeScalingType::kLlama3;
  s.factor = 8.0;
  s.low_freq_factor = 1.0;
  s.high_freq_factor = 4.0;
  s.original_max_position_embeddings = 64;
  c.rope_theta = 500000.0;
  expect_table(c, 30, [&](int64_t, int64_t i) {
    const double inv = default_inv(500000.0, i, 32);
    const double wavelen = 2 * std::numbers::pi / inv;
    if (wavelen < 64.0 / 4.0) return inv;
    if (wavelen > 64.0 / 1.0) return inv / 8.0;
    const double smooth = (64.0 / wavelen - 1.0) / (4.0 - 1.0);
    return (1 - smooth) * inv / 8.0 + smooth * inv;
  }, 1.0);
}

TEST(RopeTest, YarnWithDerivedAndGivenAttentionFactor) {
  auto c = base_config(32);
  c.max_position_embeddings = 256;
  auto& s = c.rope_scaling;
  s.type = model::RopeScalingType::kYarn;
  s.factor = 4.0;
  s.original_max_position_embeddings = 64;  // factor becomes 256 / 64 = 4
  const double d = 32;
  auto corr = [&](double rot) { return d * std::log(64.0 / (rot * 2 * std::numbers::pi)) / (2 * std::log(10000.0)); };
  const double low = std::max(std::floor(corr(32.0)), 0.0), high = std::min(std::ceil(corr(1.0)), d - 1);
  auto inv = [&](int64_t, int64_t i) {
    const double extra = default_inv(10000.0, i, 32), inter = extra / 4.0;
    const double ramp = std::clamp((i - low) / (high - low), 0.0, 1.0);
    const double ef = 1.0 - ramp;
    return inter * (1 - ef) + extra * ef;
  };
  expect_table(c, 50, inv, 0.1 * std::log(4.0) + 1.0);
  s.attention_factor = 1.5;
  expect_table(c, 50, inv, 1.5);
}

TEST(RopeTest, RejectsBadScaling) {
  auto c = base_config(16);
  c.rope_scaling.type = model::RopeScalingType::kLlama3;
  c.rope_scaling.original_max_position_embeddings = 0;
  EXPECT_FALSE(rope_table(c, 8).is_ok());
  c = base_config(15);
  EXPECT_FALSE(rope_table(c, 8).is_ok());
}

TEST(QkvRopeTest, NormRopeAndCacheWriteMatchReference) {
  ThreadPool pool(2);
  DeviceContext ctx;
  ctx.pool = &pool;
  const int64_t h = 4, kvh = 2, d = 8, n = 5, blocks = 3, bs = 4;
  auto c = base_config(d);
  auto table = rope_table(c, 32);
  ASSERT_TRUE(table.is_ok());
  for (bool qk_norm : {false, true}) {
    auto qkv = random_vector(static_cast<size_t>(n * (h + 2 * kvh) * d), 20);
    const auto orig = qkv;
    auto qn = random_vector(static_cast<size_t>(d), 21), kn = random_vector(static_cast<size_t>(d), 22);
    std::vector<int32_t> pos = {0, 7, 3, 12, 31};
    std::vector<int32_t> slots = {5, 0, 11, 6, 2};
    std::vector<float> cache(static_cast<size_t>(blocks * 2 * bs * kvh * d), -1.0f);
    ops::QkvParams p{h, kvh, d, 1e-6f};
    Status st = ops::qkv_rope_cache(ctx, host_f32(qkv, {n, (h + 2 * kvh) * d}), host_i32(pos), host_i32(slots),
                                    qk_norm ? host_f32(qn, {d}) : Tensor(), qk_norm ? host_f32(kn, {d}) : Tensor(),
                                    host_f32(*table, {32, d}), p, host_f32(cache, {blocks, 2, bs, kvh, d}));
    ASSERT_TRUE(st.is_ok()) << st.to_string();
    for (int64_t t = 0; t < n; ++t) {
      for (int64_t head = 0; head < h + 2 * kvh; ++head) {
        const float* x = orig.data() + (t * (h + 2 * kvh) + head) * d;
        std::vector<double> v(x, x + d);
        const bool is_q = head < h, is_k = head >= h && head < h + kvh;
        if (qk_norm && (is_q || is_k)) {
          double ss = 0;
          for (double e : v) ss += e * e;
          const double inv = 1.0 / std::sqrt(ss / d + 1e-6);
          for (int64_t j = 0; j < d; ++j) v[j] = v[j] * inv * (is_q ? qn[j] : kn[j]);
        }
        if (is_q || is_k) {
          std::vector<double> r(v);
          for (int64_t j = 0; j < d / 2; ++j) {
            const double a = pos[t] * default_inv(10000.0, j, d);
            r[j] = v[j] * std::cos(a) - v[j + d / 2] * std::sin(a);
            r[j + d / 2] = v[j + d / 2] * std::cos(a) + v[j] * std::sin(a);
          }
          v = r;
        }
        const float* got = qkv.data() + (t * (h + 2 * kvh) + head) * d;
        for (int64_t j = 0; j < d; ++j) EXPECT_NEAR(got[j], v[j], 2e-5 * (1 + std::abs(v[j]))) << t << " " << head;
        if (!is_q) {  // K and V land in the cache at the token's slot
          const int64_t which = is_k ? 0 : 1, kv_head = is_k ? head - h : head - h - kvh;
          const int64_t block = slots[t] / bs, off = slots[t] % bs;
          const float* in_cache = cache.data() + (((block * 2 + which) * bs + off) * kvh + kv_head) * d;
          for (int64_t j = 0; j < d; ++j) EXPECT_EQ(in_cache[j], got[j]);
        }
      }
    }
    // An out-of-range slot or position fails the op with a message naming it.
    slots[2] = static_cast<int32_t>(blocks * bs);
    st = ops::qkv_rope_cache(ctx, host_f32(qkv, {n, (h + 2 * kvh) * d}), host_i32(pos), host_i32(slots), Tensor(), Tensor(),
                             host_f32(*table, {32, d}), p, host_f32(cache, {blocks, 2, bs, kvh, d}));
    EXPECT_NE(st.message().find("slot 12"), std::string::npos) << st.message();
  }
}

}  // namespace
}  // namespace kiln::runtime
