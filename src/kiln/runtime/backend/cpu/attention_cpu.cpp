#include <algorithm>
#include <cmath>
#include <vector>

#include "kiln/core/str.h"
#include "kiln/runtime/backend/cpu/kernels_cpu.h"
#include "kiln/runtime/backend/cpu/parallel_cpu.h"

namespace kiln::runtime::cpu {
namespace {

// Dot product in a fixed order: eight interleaved partial sums, then a fixed tree.
float dot(const float* a, const float* b, int64_t d) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t j = 0;
  for (; j + 8 <= d; j += 8)
    for (int l = 0; l < 8; ++l) acc[l] += a[j + l] * b[j + l];
  for (int l = 0; j < d; ++j, ++l) acc[l] += a[j] * b[j];
  return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

}  // namespace

Status paged_attention(const DeviceContext& ctx, const Tensor& qkv, const Tensor& kv_cache, const Tensor& query_start,
                       const Tensor& kv_len, const Tensor& block_start, const Tensor& block_ids,
                       const ops::AttentionParams& p, const Tensor& out) {
  const int64_t n = qkv.dim(0), s = kv_len.dim(0), h = p.num_heads, kvh = p.num_kv_heads, d = p.head_dim;
  const int64_t width = (h + 2 * kvh) * d;
  const int64_t num_blocks = kv_cache.dim(0), block_size = kv_cache.dim(2);
  const int32_t* qs = query_start.data<int32_t>();
  const int32_t* kl = kv_len.data<int32_t>();
  const int32_t* bs = block_start.data<int32_t>();
  const int32_t* bids = block_ids.data<int32_t>();
  const int64_t nb = block_ids.dim(0);
  // The CPU can afford to check the metadata it is given; each token learns its sequence here.
  if (qs[0] != 0 || qs[s] != n) return invalid_argument(str_cat("paged_attention: query_start must run from 0 to ", n));
  if (bs[0] < 0 || bs[s] > nb) return invalid_argument("paged_attention: block_start is outside block_ids");
  std::vector<int32_t> seq_of(static_cast<size_t>(n));
  int64_t longest = 0;
  for (int64_t i = 0; i < s; ++i) {
    const int64_t q_len = qs[i + 1] - qs[i];
    if (q_len < 0 || q_len > kl[i])
      return invalid_argument(str_cat("paged_attention: sequence ", i, " has ", q_len, " new tokens for kv_len ", kl[i]));
    if (bs[i + 1] < bs[i]) return invalid_argument(str_cat("paged_attention: block_start decreases at sequence ", i));
    if (static_cast<int64_t>(bs[i + 1] - bs[i]) * block_size < kl[i])
      return invalid_argument(str_cat("paged_attention: sequence ", i, " has ", bs[i + 1] - bs[i], " blocks for kv_len ", kl[i]));
    for (int32_t j = bs[i]; j < bs[i + 1]; ++j)
      if (bids[j] < 0 || bids[j] >= num_blocks)
        return invalid_argument(str_cat("paged_attention: block id ", bids[j], " is outside [0, ", num_blocks, ")"));
    for (int64_t t = qs[i]; t < qs[i + 1]; ++t) seq_of[static_cast<size_t>(t)] = static_cast<int32_t>(i);
    longest = std::max<int64_t>(longest, kl[i]);
  }
  const float* base = qkv.data<float>();
  const float* cache = kv_cache.data<float>();
  float* o = out.data<float>();
  const int64_t group = h / kvh;
  const int64_t token_kv = kvh * d;
  parallel_for(ctx, n * h, 1, [&](int64_t b, int64_t e) {
    std::vector<float> scores(static_cast<size_t>(longest));
    for (int64_t task = b; task < e; ++task) {
      const int64_t i = task / h, head = task % h, kv_head = head / group;
      const int32_t seq = seq_of[static_cast<size_t>(i)];
      const int64_t pos = kl[seq] - (qs[seq + 1] - qs[seq]) + (i - qs[seq]);
      const int64_t first = p.sliding_window > 0 ? std::max<int64_t>(0, pos - p.sliding_window + 1) : 0;
      const float* q = base + i * width + head * d;
      const int32_t* table = bids + bs[seq];
      auto key_at = [&](int64_t j, int which) {
        const int64_t block = table[j / block_size], offset = j % block_size;
        return cache + ((block * 2 + which) * block_size + offset) * token_kv + kv_head * d;
      };
      float max_score = -INFINITY;
      for (int64_t j = first; j <= pos; ++j) {
        const float sc = dot(q, key_at(j, 0), d) * p.scale;
        scores[static_cast<size_t>(j - first)] = sc;
        max_score = std::max(max_score, sc);
      }
      float sum = 0.0f;
      for (int64_t j = first; j <= pos; ++j) {
        float& sc = scores[static_cast<size_t>(j - first)];
        sc = std::exp(sc - max_score);
        sum += sc;
      }
      float* y = o + i * h * d + head * d;
      for (int64_t c = 0; c < d; ++c) y[c] = 0.0f;
      for (int64_t j = first; j <= pos; ++j) {
        const float w = scores[static_cast<size_t>(j - first)] / sum;
        const float* v = key_at(j, 1);
        for (int64_t c = 0; c < d; ++c) y[c] += w * v[c];
      }
    }
  });
  return Status::ok();
}

}  // namespace kiln::runtime::cpu
