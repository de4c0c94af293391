// Paged causal attention with GQA, variable lengths and split-KV: the dispatch between the
// tensor-core kernels (attention_tile.cu for prefill, attention_decode.cu for rows that attend on
// their own), the split merge, and the scalar row kernel below for the shapes neither takes (a
// head_dim other than 64 or 128, more than 16 query heads per kv head).
//
// The scalar row kernel: one block per (query row, kv head, split) - with more than kMaxHeads query heads per kv head,
// per group of kMaxHeads of them - so each key is read once for the group's heads. The block's
// four warps stream the split's keys, kL lanes per key (8 bf16 each): each warp takes every fourth
// chunk of kChunk keys and copies them with cp.async into its own ring of kStages chunks in
// shared memory, two chunks in flight while it scores the third. A lane reads back only the
// vectors it copied, so the loop has no barrier. Each key slot keeps its own online softmax
// (running max and sum), rescaled once per chunk; slots and warps are combined by their maxima
// at the end. A split covers a contiguous range of whole dev::kSplitTile-key tiles; the merge
// kernel combines the splits by their log-sum-exp. The grid depends only on (rows, kv heads, splits),
// never on the lengths, so a decode step with a fixed split count can be captured in a CUDA graph.
//
// Keys older than the row's sequence's new tokens were written by earlier steps, so the first
// chunk's copies of them are issued before waiting for the previous kernel (which writes the new
// ones): under programmatic launch the cache read starts while the QKV kernel still runs.
#include <algorithm>
#include <cmath>

#include "kiln/runtime/backend/cuda/attention_decode.h"
#include "kiln/runtime/backend/cuda/attention_rows.cuh"
#include "kiln/runtime/backend/cuda/attention_tile.h"
#include "kiln/runtime/backend/cuda/kernels.h"

namespace kiln::runtime::cuda {
namespace {

using dev::bf16;

constexpr int kWarps = 4;
constexpr int kThreads = 32 * kWarps;
constexpr int kMaxHeads = 4;   // query heads a block scores against each key
constexpr int kMaxDim = 256;   // head_dim: at most 32 lanes of 8 values per key
constexpr int kSteps = 4;      // keys per lane per chunk
constexpr int kStages = 3;     // chunks per warp in shared memory: two in flight while one is scored
// A warp's ring: per stage, K then V, kSteps vectors of 16 bytes per lane.
constexpr int kStageBytes = 2 * kSteps * 32 * 16;
constexpr size_t kSmemBytes = static_cast<size_t>(kWarps) * kStages * kStageBytes;

// d[g] (g < kG): this lane's part of kG dot products, over kL lanes per key. Halving steps
// first trade half of the heads with the partner lane (reduce-scatter: the lanes whose bit is set
// keep the upper half) until each lane holds one head, whose sum the remaining steps complete;
// the kG sums are then gathered from the lanes holding them. For kG = 4 over 16 lanes: 9 shuffles
// instead of 16.
template <int kL, int kG>
__device__ __forceinline__ void sum_heads(float (&d)[kG], int vec, int lane) {
  int n = kG;
#pragma unroll
  for (int o = kL / 2; o > 0; o >>= 1) {
    if (n > 1) {
      const int half = n / 2;
      const bool upper = (vec & o) != 0;
#pragma unroll
      for (int i = 0; i < half; ++i) {
        const float send = upper ? d[i] : d[half + i], keep = upper ? d[half + i] : d[i];
        d[i] = keep + __shfl_xor_sync(0xffffffffu, send, o);
      }
      n = half;
    } else {
      d[0] += __shfl_xor_sync(0xffffffffu, d[0], o);
    }
  }
  if constexpr (kG > 1) {
    const float mine = d[0];
    const int base = lane - vec;  // the key slot's first lane; head g sits at vec = g * (kL / kG)
#pragma unroll
    for (int g = 0; g < kG; ++g) d[g] = __shfl_sync(0xffffffffu, mine, base + g * (kL / kG));
  }
}

// kL: lanes per key (head_dim / 8 rounded up to a power of two, lanes past head_dim idle);
// kG: query heads per block (the group size rounded up to a power of two, at most kMaxHeads).
template <int kL, int kG>
__global__ void __launch_bounds__(kThreads) attention_kernel(AttentionArgs a) {
  constexpr int kSlots = 32 / kL;           // keys a warp reads side by side
  constexpr int kChunk = kSlots * kSteps;   // keys per warp per chunk
  extern __shared__ __align__(16) unsigned char smem_raw[];
  const int D = a.head_dim, KV = a.num_kv_heads, G = a.num_heads / KV;
  const int head_groups = (G + kG - 1) / kG;
  const int64_t row = blockIdx.x;
  const int kvh = blockIdx.y / head_groups, h0 = kvh * G + (blockIdx.y % head_groups) * kG;
  const int heads = min(kG, kvh * G + G - h0);
  const int split = blockIdx.z;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int slot = lane / kL, vec = lane % kL;
  const bool lane_live = vec * 8 < D;

  const dev::RowKeys rk = dev::row_keys(a, row, split);
  const int32_t first_new = rk.first_new, t_begin = rk.begin, t_end = rk.end;
  const int32_t chunks = t_end > t_begin ? (t_end - t_begin + kChunk - 1) / kChunk : 0;
  const int32_t* table = rk.table;
  const int bs = a.block_size;
  const int64_t kv_stride = static_cast<int64_t>(KV) * D;  // one token of one of K or V
  const bf16* cache = reinterpret_cast<const bf16*>(a.kv_cache) + static_cast<int64_t>(kvh) * D + vec * 8;
  const int64_t v_offset = bs * kv_stride;
  unsigned char* ring = smem_raw + warp * kStages * kStageBytes + lane * 16;
  const auto at = [&](int stage, int kv, int u) { return ring + ((stage * 2 + kv) * kSteps + u) * 32 * 16; };
  // Copies this lane's K and V vectors of the warp's i-th chunk into `stage`: the keys written by
  // earlier steps (kOld), the others (kNew; zeros past the split's end), or both.
  enum : int { kOld = 1, kNew = 2, kAll = 3 };
  const int32_t mine = chunks > warp ? (chunks - warp + kWarps - 1) / kWarps : 0;
  const auto issue = [&](int32_t i, int stage, int which) {
    const int32_t c0 = t_begin + (warp + i * kWarps) * kChunk + slot;
    int32_t bi = c0 / bs, off = c0 - bi * bs;
#pragma unroll
    for (int u = 0; u < kSteps; ++u) {
      const int32_t key = c0 + u * kSlots;
      const bool valid = key < t_end, is_old = valid && key < first_new;
      if (lane_live && (which & (is_old ? kOld : kNew)) != 0) {
        const bf16* p = valid ? cache + (static_cast<int64_t>(table[bi]) * 2 * bs + off) * kv_stride : cache;
        dev::cp_async16(at(stage, 0, u), p, valid);
        dev::cp_async16(at(stage, 1, u), p + (valid ? v_offset : 0), valid);
      }
      for (off += kSlots; off >= bs; off -= bs) ++bi;
    }
  };
  if (mine > 0) issue(0, 0, kOld);
  dev::pdl_begin();
  if (mine > 0) issue(0, 0, kNew);
  dev::cp_async_commit();
#pragma unroll
  for (int i = 1; i < kStages - 1; ++i) {
    if (i < mine) issue(i, i, kAll);
    dev::cp_async_commit();
  }

  // Scores are kept in base 2 (scaled by log2 e) so that each weight is one ex2.
  const float scale_log2 = a.scale * dev::kLog2e;
  float q[kG][8];
  const bf16* qrow = reinterpret_cast<const bf16*>(a.q) + row * a.q_row_stride + static_cast<int64_t>(h0) * D + vec * 8;
#pragma unroll
  for (int g = 0; g < kG; ++g) {
    float f[8] = {};
    if (lane_live && g < heads) dev::unpack8(*reinterpret_cast<const dev::Bf16x8*>(qrow + g * D), f);
#pragma unroll
    for (int j = 0; j < 8; ++j) q[g][j] = f[j] * scale_log2;
  }
  float m[kG], l[kG], acc[kG][8];
#pragma unroll
  for (int g = 0; g < kG; ++g) {
    m[g] = -INFINITY;
    l[g] = 0.0f;
#pragma unroll
    for (int j = 0; j < 8; ++j) acc[g][j] = 0.0f;
  }

  for (int32_t i = 0; i < mine; ++i) {
    const int32_t next = i + kStages - 1;
    if (next < mine) issue(next, next % kStages, kAll);
    dev::cp_async_commit();
    dev::cp_async_wait<kStages - 1>();  // chunk i has landed
    const int stage = i % kStages;
    const int32_t c = warp + i * kWarps;

    // Scores of this slot's kSteps keys, summed over the key's kL lanes (sum_heads).
    float sc[kSteps][kG];
#pragma unroll
    for (int u = 0; u < kSteps; ++u) {
      float kf[8] = {};  // lanes past head_dim hold no key (and their q is zero)
      if (lane_live) dev::unpack8(*reinterpret_cast<const dev::Bf16x8*>(at(stage, 0, u)), kf);
      float d[kG];
#pragma unroll
      for (int g = 0; g < kG; ++g) {
        d[g] = 0.0f;
#pragma unroll
        for (int j = 0; j < 8; ++j) d[g] += q[g][j] * kf[j];
      }
      sum_heads<kL, kG>(d, vec, lane);
      const bool live = t_begin + c * kChunk + slot + u * kSlots < t_end;
#pragma unroll
      for (int g = 0; g < kG; ++g) sc[u][g] = live ? d[g] : -INFINITY;
    }
    // Online softmax over the chunk: one rescale of the running sums per chunk.
#pragma unroll
    for (int g = 0; g < kG; ++g) {
      float mx = m[g];
#pragma unroll
      for (int u = 0; u < kSteps; ++u) mx = fmaxf(mx, sc[u][g]);
      const float alpha = mx == -INFINITY ? 1.0f : dev::exp2_approx(m[g] - mx);
      float sum = 0.0f;
#pragma unroll
      for (int u = 0; u < kSteps; ++u) {
        sc[u][g] = mx == -INFINITY ? 0.0f : dev::exp2_approx(sc[u][g] - mx);
        sum += sc[u][g];
      }
      m[g] = mx;
      l[g] = l[g] * alpha + sum;
#pragma unroll
      for (int j = 0; j < 8; ++j) acc[g][j] *= alpha;
    }
#pragma unroll
    for (int u = 0; u < kSteps; ++u) {
      float vf[8] = {};
      if (lane_live) dev::unpack8(*reinterpret_cast<const dev::Bf16x8*>(at(stage, 1, u)), vf);
#pragma unroll
      for (int g = 0; g < kG; ++g) {
#pragma unroll
        for (int j = 0; j < 8; ++j) acc[g][j] += sc[u][g] * vf[j];
      }
    }
  }

  // The warp's key slots combined (lanes vec, vec + kL, ... hold the same dims), then the warps.
#pragma unroll
  for (int o = kL; o < 32; o <<= 1) {
#pragma unroll
    for (int g = 0; g < kG; ++g) {
      const float m2 = __shfl_xor_sync(0xffffffffu, m[g], o), l2 = __shfl_xor_sync(0xffffffffu, l[g], o);
      const float mx = fmaxf(m[g], m2);
      const float a1 = mx == -INFINITY ? 0.0f : dev::exp2_approx(m[g] - mx);
      const float a2 = mx == -INFINITY ? 0.0f : dev::exp2_approx(m2 - mx);
      l[g] = l[g] * a1 + l2 * a2;
#pragma unroll
      for (int j = 0; j < 8; ++j) acc[g][j] = acc[g][j] * a1 + __shfl_xor_sync(0xffffffffu, acc[g][j], o) * a2;
      m[g] = mx;
    }
  }
  // Each warp's partials go to the start of its own ring (no other warp reads that ring).
  const auto part_acc = [&](int w, int g) {
    return reinterpret_cast<float*>(smem_raw + w * kStages * kStageBytes) + g * D;
  };
  const auto part_ml = [&](int w, int g) {
    return reinterpret_cast<float*>(smem_raw + w * kStages * kStageBytes) + kG * D + 2 * g;
  };
  dev::cp_async_wait<0>();
  __syncwarp();
  if (slot == 0 && lane_live) {
#pragma unroll
    for (int g = 0; g < kG; ++g) {
#pragma unroll
      for (int j = 0; j < 8; ++j) part_acc(warp, g)[vec * 8 + j] = acc[g][j];
      if (vec == 0) {
        part_ml(warp, g)[0] = m[g];
        part_ml(warp, g)[1] = l[g];
      }
    }
  }
  __syncthreads();
  const int H = a.num_heads;
  for (int e = threadIdx.x; e < heads * D; e += kThreads) {
    const int g = e / D, d = e - g * D, h = h0 + g;
    float mx = -INFINITY;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) mx = fmaxf(mx, part_ml(w, g)[0]);
    float o = 0.0f, lsum = 0.0f;
    if (mx != -INFINITY) {
#pragma unroll
      for (int w = 0; w < kWarps; ++w) {
        const float f = dev::exp2_approx(part_ml(w, g)[0] - mx);
        lsum += part_ml(w, g)[1] * f;
        o += part_acc(w, g)[d] * f;
      }
    }
    o = lsum > 0.0f ? o / lsum : 0.0f;
    if (a.num_splits == 1) {
      reinterpret_cast<bf16*>(a.out)[row * H * D + static_cast<int64_t>(h) * D + d] = dev::to_bf(o);
    } else {
      const int64_t pi = (row * H + h) * a.num_splits + split;
      a.partial_out[pi * D + d] = o;
      if (d == 0) a.partial_lse[pi] = lsum > 0.0f ? (mx + log2f(lsum)) * dev::kLn2 : -INFINITY;  // natural log
    }
  }
}
// One block per (row, head), one thread per element of the head.
__global__ void merge_kernel(AttentionArgs a) {
  dev::pdl_begin();
  const int64_t row = blockIdx.x;
  const int h = blockIdx.y, D = a.head_dim, S = a.num_splits;
  const int64_t base = (row * a.num_heads + h) * S;
  float m = -INFINITY;
  for (int z = 0; z < S; ++z) m = fmaxf(m, a.partial_lse[base + z]);
  for (int d = threadIdx.x; d < D; d += blockDim.x) {
    float num = 0.0f, den = 0.0f;
    if (m != -INFINITY) {
      for (int z = 0; z < S; ++z) {
        const float w = __expf(a.partial_lse[base + z] - m);
        num += w * a.partial_out[(base + z) * D + d];
        den += w;
      }
    }
    reinterpret_cast<bf16*>(a.out)[row * a.num_heads * D + static_cast<int64_t>(h) * D + d] =
        dev::to_bf(den > 0.0f ? num / den : 0.0f);
  }
}

template <int kL>
Status launch_rows_l(const AttentionArgs& a, int group, Stream stream) {
  const auto kernel =
      group == 1 ? attention_kernel<kL, 1> : group == 2 ? attention_kernel<kL, 2> : attention_kernel<kL, 4>;
  const int per_block = group == 1 ? 1 : group == 2 ? 2 : kMaxHeads, head_groups = (group + per_block - 1) / per_block;
  const dim3 grid(static_cast<unsigned>(a.num_tokens), static_cast<unsigned>(a.num_kv_heads * head_groups),
                  static_cast<unsigned>(a.num_splits));
  // The most shared memory per SM (the default carveout fits fewer blocks).
  KILN_CUDA_RETURN_IF_ERROR(
      cudaFuncSetAttribute(kernel, cudaFuncAttributePreferredSharedMemoryCarveout, cudaSharedmemCarveoutMaxShared));
  if (kSmemBytes > 48 * 1024) {
    KILN_CUDA_RETURN_IF_ERROR(
        cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(kSmemBytes)));
  }
  return launch("attention_kernel", kernel, grid, dim3(kThreads), kSmemBytes, stream, a);
}

Status launch_rows(const AttentionArgs& a, Stream stream) {
  const int G = a.num_heads / a.num_kv_heads, vectors = a.head_dim / 8;
  if (vectors <= 4) return launch_rows_l<4>(a, G, stream);
  if (vectors <= 8) return launch_rows_l<8>(a, G, stream);
  if (vectors <= 16) return launch_rows_l<16>(a, G, stream);
  return launch_rows_l<32>(a, G, stream);
}

}  // namespace

int attention_num_splits(int64_t num_tokens, int num_kv_heads, int64_t max_kv_len, int sm_count) {
  const int64_t blocks = std::max<int64_t>(1, num_tokens * num_kv_heads);
  if (blocks >= sm_count) return 1;
  const int64_t want = (2 * static_cast<int64_t>(sm_count) + blocks - 1) / blocks;
  const int64_t tiles = (max_kv_len + dev::kSplitTile - 1) / dev::kSplitTile;
  return static_cast<int>(std::clamp<int64_t>(std::min(want, tiles), 1, 32));
}

size_t attention_partial_bytes(int64_t num_tokens, int num_heads, int head_dim, int num_splits) {
  if (num_splits <= 1) return 0;
  const size_t n = static_cast<size_t>(num_tokens) * num_heads * num_splits;
  return n * sizeof(float) * (static_cast<size_t>(head_dim) + 1);
}

Status launch_paged_attention(const AttentionArgs& a, Stream stream) {
  if (a.num_kv_heads <= 0 || a.num_heads % a.num_kv_heads != 0) {
    return invalid_argument(str_cat("paged_attention: ", a.num_heads, " heads are not a multiple of ",
                                    a.num_kv_heads, " kv heads"));
  }
  if (a.head_dim % 8 != 0 || a.head_dim > kMaxDim) {
    return invalid_argument(str_cat("paged_attention: head_dim ", a.head_dim,
                                    " is not supported (a multiple of 8, at most ", kMaxDim, ")"));
  }
  if (a.num_splits < 1 || (a.num_splits > 1 && (a.partial_out == nullptr || a.partial_lse == nullptr))) {
    return invalid_argument("paged_attention: split-KV needs partial buffers");
  }
  if (a.num_tokens == 0 || a.num_seqs == 0) return Status::ok();
  if (attention_tile_fits(a, a.max_query_len)) return launch_attention_tile(a, a.max_query_len, stream);
  KILN_RETURN_IF_ERROR(attention_decode_fits(a) ? launch_attention_decode(a, stream) : launch_rows(a, stream));
  if (a.num_splits > 1) {
    const dim3 mgrid(static_cast<unsigned>(a.num_tokens), static_cast<unsigned>(a.num_heads));
    KILN_RETURN_IF_ERROR(launch("merge_kernel", merge_kernel, mgrid, dim3(std::min(a.head_dim, 256)), 0, stream, a));
  }
  return Status::ok();
}

}  // namespace kiln::runtime::cuda
