// Paged attention against dense causal attention computed in double, with random block tables,
// GQA, variable query and KV lengths per sequence and a sliding window; and the kernel of every
// instruction set against the others, bit for bit.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <cstring>

#include "kiln/core/thread_pool.h"
#include "kiln/runtime/backend/cpu/kernels_cpu.h"
#include "kiln/runtime/ops/paged_attention.h"
#include "runtime_test_util.h"

namespace kiln::runtime {
namespace {

using testing::host_f32;
using testing::host_i32;
using testing::random_vector;

struct Case {
  int64_t heads, kv_heads, head_dim, block_size, window;
  std::vector<int32_t> q_lens, kv_lens;
};

void run_case(const Case& c, uint32_t seed) {
  ThreadPool pool(3);
  DeviceContext ctx;
  ctx.pool = &pool;
  std::mt19937 rng(seed);
  const int64_t s = static_cast<int64_t>(c.q_lens.size()), d = c.head_dim, kvh = c.kv_heads, h = c.heads;
  const int64_t width = (h + 2 * kvh) * d;
  // Each sequence's full K/V history, dense: [kv_len, kvh, d].
  std::vector<std::vector<float>> keys(s), values(s);
  std::vector<int32_t> query_start = {0}, block_start = {0}, block_ids;
  int64_t total_blocks = 0;
  for (int64_t i = 0; i < s; ++i) {
    keys[i] = random_vector(static_cast<size_t>(c.kv_lens[i] * kvh * d), seed + 100 + i);
    values[i] = random_vector(static_cast<size_t>(c.kv_lens[i] * kvh * d), seed + 200 + i);
    query_start.push_back(query_start.back() + c.q_lens[i]);
    const int64_t nb = (c.kv_lens[i] + c.block_size - 1) / c.block_size + (i % 2);  // spare block sometimes
    total_blocks += nb;
    block_start.push_back(static_cast<int32_t>(block_start.back() + nb));
  }
  const int64_t num_blocks = total_blocks + 5;
  std::vector<int32_t> perm(static_cast<size_t>(num_blocks));
  std::iota(perm.begin(), perm.end(), 0);
  std::shuffle(perm.begin(), perm.end(), rng);
  block_ids.assign(perm.begin(), perm.begin() + total_blocks);
  // Scatter K/V into the paged cache; fill the rest with garbage that must never be read.
  std::vector<float> cache = random_vector(static_cast<size_t>(num_blocks * 2 * c.block_size * kvh * d), seed + 7, 100.0f);
  for (int64_t i = 0; i < s; ++i)
    for (int64_t p = 0; p < c.kv_lens[i]; ++p) {
      const int64_t block = block_ids[static_cast<size_t>(block_start[i] + p / c.block_size)], off = p % c.block_size;
      for (int64_t j = 0; j < kvh * d; ++j) {
        cache[static_cast<size_t>(((block * 2 + 0) * c.block_size + off) * kvh * d + j)] = keys[i][static_cast<size_t>(p * kvh * d + j)];
        cache[static_cast<size_t>(((block * 2 + 1) * c.block_size + off) * kvh * d + j)] = values[i][static_cast<size_t>(p * kvh * d + j)];
      }
    }
  const int64_t n = query_start.back();
  auto qkv = random_vector(static_cast<size_t>(n * width), seed + 3);
  std::vector<int32_t> kv_len(c.kv_lens);
  std::vector<float> out(static_cast<size_t>(n * h * d));
  ops::AttentionParams p;
  p.num_heads = h;
  p.num_kv_heads = kvh;
  p.head_dim = d;
  p.scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(d)));
  p.sliding_window = c.window;
  Status st = ops::paged_attention(ctx, host_f32(qkv, {n, width}), host_f32(cache, {num_blocks, 2, c.block_size, kvh, d}),
                                   host_i32(query_start), host_i32(kv_len), host_i32(block_start), host_i32(block_ids), p,
                                   host_f32(out, {n, h * d}));
  ASSERT_TRUE(st.is_ok()) << st.to_string();
  // Every instruction set this machine has gives the same bits as the one ops:: chose.
  std::vector<cpu::CpuIsa> isas = {cpu::CpuIsa::kScalar};
  if (cpu::cpu_isa() != cpu::CpuIsa::kScalar) isas.push_back(cpu::CpuIsa::kAvx2);
  if (cpu::cpu_isa() == cpu::CpuIsa::kAvx512) isas.push_back(cpu::CpuIsa::kAvx512);
  for (cpu::CpuIsa isa : isas) {
    std::vector<float> other(out.size(), NAN);
    st = cpu::paged_attention(ctx, host_f32(qkv, {n, width}), host_f32(cache, {num_blocks, 2, c.block_size, kvh, d}),
                              host_i32(query_start), host_i32(kv_len), host_i32(block_start), host_i32(block_ids), p,
                              host_f32(other, {n, h * d}), isa);
    ASSERT_TRUE(st.is_ok()) << st.to_string();
    EXPECT_EQ(0, std::memcmp(other.data(), out.data(), out.size() * sizeof(float))) << cpu::cpu_isa_name(isa);
  }
  double worst = 0;
  for (int64_t i = 0; i < s; ++i)
    for (int64_t t = query_start[i]; t < query_start[i + 1]; ++t) {
      const int64_t pos = c.kv_lens[i] - c.q_lens[i] + (t - query_start[i]);
      const int64_t first = c.window > 0 ? std::max<int64_t>(0, pos - c.window + 1) : 0;
      for (int64_t head = 0; head < h; ++head) {
        const int64_t kv_head = head / (h / kvh);
        std::vector<double> sc;
        for (int64_t j = first; j <= pos; ++j) {
          double dot = 0;
          for (int64_t e = 0; e < d; ++e)
            dot += static_cast<double>(qkv[static_cast<size_t>(t * width + head * d + e)]) *
                   keys[i][static_cast<size_t>((j * kvh + kv_head) * d + e)];
          sc.push_back(dot / std::sqrt(static_cast<double>(d)));
        }
        double mx = -INFINITY;
        for (double v : sc) mx = std::max(mx, v);
        double sum = 0;
        for (double& v : sc) sum += (v = std::exp(v - mx));
        for (int64_t e = 0; e < d; ++e) {
          double ref = 0;
          for (int64_t j = first; j <= pos; ++j)
            ref += sc[static_cast<size_t>(j - first)] / sum * values[i][static_cast<size_t>((j * kvh + kv_head) * d + e)];
          worst = std::max(worst, std::abs(ref - out[static_cast<size_t>(t * h * d + head * d + e)]));
        }
      }
    }
  EXPECT_LT(worst, 2e-5) << "seed " << seed;
}

TEST(PagedAttentionTest, MatchesDenseAttention) {
  run_case({4, 2, 16, 4, 0, {1, 5, 3}, {9, 5, 17}}, 1);       // decode, whole prefill, chunk
  run_case({8, 1, 8, 16, 0, {12, 1, 1, 2}, {12, 30, 1, 40}}, 2);  // MQA
  run_case({2, 2, 32, 3, 0, {7}, {7}}, 3);                     // MHA, odd block size
  run_case({12, 2, 80, 16, 0, {1, 37}, {70, 37}}, 6);          // six heads per KV head, D not a multiple of 64
  run_case({5, 5, 20, 16, 0, {3, 1}, {3, 33}}, 7);             // D with a partial 16-lane vector
}

TEST(PagedAttentionTest, SlidingWindowSeesOnlyTheLastPositions) {
  run_case({4, 2, 8, 4, 5, {6, 1, 3}, {6, 20, 11}}, 4);
  run_case({4, 4, 8, 2, 1, {4}, {9}}, 5);  // window 1: each token sees only itself
}

TEST(PagedAttentionTest, RejectsMalformedMetadata) {
  DeviceContext ctx;
  const int64_t h = 2, kvh = 1, d = 4, bs = 2, nb = 4;
  std::vector<float> qkv(static_cast<size_t>(3 * (h + 2 * kvh) * d)), cache(static_cast<size_t>(nb * 2 * bs * kvh * d));
  std::vector<float> out(static_cast<size_t>(3 * h * d));
  ops::AttentionParams p{h, kvh, d, 0.5f, 0, 3, 3};
  auto run = [&](std::vector<int32_t> qs, std::vector<int32_t> kl, std::vector<int32_t> bst, std::vector<int32_t> ids) {
    return ops::paged_attention(ctx, host_f32(qkv, {3, (h + 2 * kvh) * d}), host_f32(cache, {nb, 2, bs, kvh, d}),
                                host_i32(qs), host_i32(kl), host_i32(bst), host_i32(ids), p, host_f32(out, {3, h * d}));
  };
  EXPECT_TRUE(run({0, 3}, {3}, {0, 2}, {1, 2}).is_ok());
  EXPECT_FALSE(run({0, 3}, {3}, {0, 1}, {1}).is_ok());        // too few blocks for kv_len
  EXPECT_FALSE(run({0, 3}, {3}, {0, 2}, {1, 4}).is_ok());     // block id out of range
  EXPECT_FALSE(run({0, 3}, {2}, {0, 2}, {1, 2}).is_ok());     // more new tokens than kv_len
  EXPECT_FALSE(run({0, 2}, {3}, {0, 2}, {1, 2}).is_ok());     // query_start does not cover the tokens
  p.num_kv_heads = 3;
  EXPECT_FALSE(run({0, 3}, {3}, {0, 2}, {1, 2}).is_ok());     // heads not divisible
}

}  // namespace
}  // namespace kiln::runtime
