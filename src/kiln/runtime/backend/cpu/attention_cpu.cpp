#include <algorithm>
#include <cmath>
#include <vector>

#include "kiln/core/str.h"
#include "kiln/runtime/backend/cpu/kernels_cpu.h"
#include "kiln/runtime/backend/cpu/lanes16_cpu.h"
#include "kiln/runtime/backend/cpu/parallel_cpu.h"

namespace kiln::runtime::cpu {
namespace {

// One query token and the KV heads kv0 .. kv0 + kv_count - 1: the query heads that share a KV
// head attend together, so each key and value row is read once per group rather than once per
// head, and the task reads its KV heads' part of a row as one stretch.
struct Task {
  const float* q;           // the first query head of KV head kv0; heads are d apart
  float* out;               // the first output head of KV head kv0
  const float* cache;       // the layer's cache [num_blocks, 2, block_size, KV, D]
  const int32_t* table;     // the sequence's block table
  int64_t first, last;      // visible positions [first, last]
  int64_t group, kv_count, d, block_size, token_kv, kv_offset;  // kv_offset = kv0 * d
  float scale;
  float* scratch;           // (d + 18) floats per query head of the task
};

// The visible positions come block by block: the K (which = 0) or V (which = 1) row of the KV
// head at position j, and the end of the run of positions that share j's block (rows of one run
// are token_kv floats apart).
inline const float* row_at(const Task& t, int64_t j, int which) {
  const int64_t block = t.table[j / t.block_size], offset = j % t.block_size;
  return t.cache + ((block * 2 + which) * t.block_size + offset) * t.token_kv + t.kv_offset;
}
inline int64_t run_end(const Task& t, int64_t j) { return std::min(t.last + 1, j + t.block_size - j % t.block_size); }
// A tile: up to 16 consecutive positions from j, all in j's block.
inline int tile_end(const Task& t, int64_t j) { return static_cast<int>(std::min<int64_t>(run_end(t, j), j + 16) - j); }

#define KILN_LANES_KERNEL "kiln/runtime/backend/cpu/attention_kernel_cpu.inc"
#include "kiln/runtime/backend/cpu/lanes16_each_isa_cpu.inc"
#undef KILN_LANES_KERNEL

using AttendFn = void (*)(const Task&);

AttendFn attend_for(CpuIsa isa) {
  switch (isa) {
#ifdef KILN_LANES_X86
    case CpuIsa::kAvx512: return avx512::attend;
    case CpuIsa::kAvx2: return avx2::attend;
#endif
    default: return portable::attend;
  }
}

}  // namespace

Status paged_attention(const DeviceContext& ctx, const Tensor& qkv, const Tensor& kv_cache, const Tensor& query_start,
                       const Tensor& kv_len, const Tensor& block_start, const Tensor& block_ids,
                       const ops::AttentionParams& p, const Tensor& out, CpuIsa isa) {
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
  }
  const float* base = qkv.data<float>();
  const float* cache = kv_cache.data<float>();
  float* o = out.data<float>();
  const int64_t group = h / kvh;
  const AttendFn attend_fn = attend_for(isa);
  // A task is one token and a share of its KV heads: all of them when there are tokens enough to
  // keep every thread busy (a decode batch, a prefill), fewer when there are not (batch 1).
  const int64_t threads = ctx.pool != nullptr ? ctx.pool->num_threads() : 1;
  const int64_t splits = std::clamp<int64_t>((4 * threads + n - 1) / n, 1, kvh);
  parallel_for(ctx, n * splits, 1, [&](int64_t b, int64_t e) {
    std::vector<float> scratch(static_cast<size_t>(h * (d + 18)));
    for (int64_t task = b; task < e; ++task) {
      const int64_t i = task / splits, split = task % splits;
      const int64_t kv0 = split * kvh / splits, kv1 = (split + 1) * kvh / splits;
      const int32_t seq = seq_of[static_cast<size_t>(i)];
      const int64_t pos = kl[seq] - (qs[seq + 1] - qs[seq]) + (i - qs[seq]);
      Task t;
      t.q = base + i * width + kv0 * group * d;
      t.out = o + i * h * d + kv0 * group * d;
      t.cache = cache;
      t.table = bids + bs[seq];
      t.first = p.sliding_window > 0 ? std::max<int64_t>(0, pos - p.sliding_window + 1) : 0;
      t.last = pos;
      t.group = group;
      t.kv_count = kv1 - kv0;
      t.d = d;
      t.block_size = block_size;
      t.token_kv = kvh * d;
      t.kv_offset = kv0 * d;
      t.scale = p.scale;
      t.scratch = scratch.data();
      attend_fn(t);
    }
  });
  return Status::ok();
}

}  // namespace kiln::runtime::cpu
