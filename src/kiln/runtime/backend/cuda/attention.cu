// Paged causal attention with GQA, variable lengths and split-KV.
//
// One block per (query row, kv head, split): the block handles all query heads that share the kv
// head, so each K/V tile is read once for the whole group. Keys are visited in tiles of kTile in
// position order with an online softmax (FlashAttention's running max and sum); a split covers a
// contiguous range of whole tiles, and the merge kernel combines the splits by their
// log-sum-exp. The grid depends only on (rows, kv heads, splits), never on the lengths, so a
// decode step with a fixed split count can be captured in a CUDA graph.
#include <algorithm>
#include <cmath>

#include "kiln/runtime/backend/cuda/attention_tile.h"
#include "kiln/runtime/backend/cuda/cuda_util.cuh"
#include "kiln/runtime/backend/cuda/kernels.h"

namespace kiln::runtime::cuda {
namespace {

using dev::bf16;

constexpr int kThreads = 128;
constexpr int kTile = 64;
constexpr int kPad = 8;            // bf16 of padding per smem row: 16-byte reads stay conflict-free
constexpr int kMaxAccPerThread = 16;  // group_size * head_dim <= 2048
constexpr int kLoadBatch = 4;         // K/V vectors a thread has in flight while filling a tile

struct Smem {
  static size_t bytes(int group, int d) {
    return sizeof(float) * (static_cast<size_t>(group) * d + static_cast<size_t>(group) * kTile + 3 * group) +
           sizeof(bf16) * 2 * kTile * (d + kPad);
  }
};

__device__ __forceinline__ int find_seq(const int32_t* query_start, int num_seqs, int64_t row) {
  int lo = 0, hi = num_seqs - 1;  // the last s with query_start[s] <= row
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (query_start[mid] <= row) lo = mid; else hi = mid - 1;
  }
  return lo;
}

// kAcc: output values per thread (group * head_dim / kThreads, rounded up to a power of two), so
// that registers are held only for the accumulators a shape needs.
template <int kAcc>
__global__ void __launch_bounds__(kThreads) attention_kernel(AttentionArgs a) {
  dev::pdl_begin();
  extern __shared__ __align__(16) unsigned char smem_raw[];
  const int D = a.head_dim, KV = a.num_kv_heads;
  const int G = a.num_heads / KV;
  const int64_t row = blockIdx.x;
  const int kvh = blockIdx.y, split = blockIdx.z;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;

  bf16* k_s = reinterpret_cast<bf16*>(smem_raw);     // [kTile, D + kPad]
  bf16* v_s = k_s + kTile * (D + kPad);              // [kTile, D + kPad]
  float* q_s = reinterpret_cast<float*>(v_s + kTile * (D + kPad));  // [G, D]
  float* p_s = q_s + G * D;                          // [G, kTile]
  float* m_s = p_s + G * kTile;                      // [G]
  float* l_s = m_s + G;                              // [G]
  float* alpha_s = l_s + G;                          // [G]
  const int ks = D + kPad;

  const int s = find_seq(a.query_start, a.num_seqs, row);
  const int32_t q0 = a.query_start[s], n_new = a.query_start[s + 1] - q0;
  const int64_t pos = static_cast<int64_t>(a.kv_len[s]) - n_new + (row - q0);
  int64_t k_lo = 0;
  if (a.sliding_window > 0) k_lo = max(static_cast<int64_t>(0), pos + 1 - a.sliding_window);
  const int64_t k_hi = pos + 1;
  // This split's keys: whole tiles, so a row's reduction order is the same for any split count
  // that gives it the same ranges.
  const int64_t n_keys = max(static_cast<int64_t>(0), k_hi - k_lo);
  const int64_t tiles = (n_keys + kTile - 1) / kTile;
  const int64_t tiles_per_split = (tiles + a.num_splits - 1) / a.num_splits;
  const int64_t t_begin = k_lo + split * tiles_per_split * kTile;
  const int64_t t_end = min(k_hi, k_lo + (split + 1) * tiles_per_split * kTile);

  const bf16* qrow = reinterpret_cast<const bf16*>(a.q) + row * a.q_row_stride + static_cast<int64_t>(kvh) * G * D;
  for (int e = tid; e < G * D; e += kThreads) q_s[e] = dev::to_f(qrow[e]) * a.scale;
  for (int g = tid; g < G; g += kThreads) {
    m_s[g] = -INFINITY;
    l_s[g] = 0.0f;
  }
  float acc[kAcc];
#pragma unroll
  for (int r = 0; r < kAcc; ++r) acc[r] = 0.0f;

  const int32_t* table = a.block_ids + a.block_start[s];
  const int64_t kv_stride = static_cast<int64_t>(KV) * D;  // one token of one of K or V
  const bf16* cache = reinterpret_cast<const bf16*>(a.kv_cache);
  const int vec_per_row = D / 8;

  for (int64_t t0 = t_begin; t0 < t_end; t0 += kTile) {
    __syncthreads();  // the previous tile's K/V/p are no longer read
    // kLoadBatch vectors of K and of V per thread are read before any is stored, so that their
    // block-table lookups and then their cache reads are in flight together rather than one
    // dependent pair at a time.
    for (int base = 0; base < kTile * vec_per_row; base += kThreads * kLoadBatch) {
      uint4 kv[kLoadBatch], vv[kLoadBatch];
#pragma unroll
      for (int b = 0; b < kLoadBatch; ++b) {
        const int idx = base + b * kThreads + tid;
        const int j = idx / vec_per_row, c = idx - j * vec_per_row;
        const int64_t key = t0 + j;
        kv[b] = vv[b] = make_uint4(0, 0, 0, 0);
        if (idx < kTile * vec_per_row && key < t_end) {
          const int64_t blk = table[key / a.block_size], off = key % a.block_size;
          const bf16* kp = cache + ((blk * 2) * a.block_size + off) * kv_stride + static_cast<int64_t>(kvh) * D + c * 8;
          kv[b] = *reinterpret_cast<const uint4*>(kp);
          vv[b] = *reinterpret_cast<const uint4*>(kp + a.block_size * kv_stride);
        }
      }
#pragma unroll
      for (int b = 0; b < kLoadBatch; ++b) {
        const int idx = base + b * kThreads + tid;
        if (idx < kTile * vec_per_row) {
          const int j = idx / vec_per_row, c = idx - j * vec_per_row;
          *reinterpret_cast<uint4*>(k_s + j * ks + c * 8) = kv[b];
          *reinterpret_cast<uint4*>(v_s + j * ks + c * 8) = vv[b];
        }
      }
    }
    __syncthreads();
    for (int idx = tid; idx < G * kTile; idx += kThreads) {
      const int g = idx / kTile, j = idx - g * kTile;
      float sc = -INFINITY;
      if (t0 + j < t_end) {
        sc = 0.0f;
        const float4* qg = reinterpret_cast<const float4*>(q_s + g * D);  // one read for four dims
        const bf16* kr = k_s + j * ks;
        for (int c = 0; c < vec_per_row; ++c) {
          float kf[8];
          dev::unpack8(*reinterpret_cast<const dev::Bf16x8*>(kr + c * 8), kf);
          const float4 qa = qg[2 * c], qb = qg[2 * c + 1];
          const float qf[8] = {qa.x, qa.y, qa.z, qa.w, qb.x, qb.y, qb.z, qb.w};
#pragma unroll
          for (int u = 0; u < 8; ++u) sc += qf[u] * kf[u];
        }
      }
      p_s[idx] = sc;
    }
    __syncthreads();
    for (int g = warp; g < G; g += kThreads / 32) {
      float* pg = p_s + g * kTile;
      const float s0 = pg[lane], s1 = pg[lane + 32];
      const float m_old = m_s[g];
      const float m_new = fmaxf(m_old, dev::warp_max(fmaxf(s0, s1)));  // finite: the tile has a key
      const float p0 = __expf(s0 - m_new), p1 = __expf(s1 - m_new);
      pg[lane] = p0;
      pg[lane + 32] = p1;
      const float sum = dev::warp_sum(p0 + p1);
      if (lane == 0) {
        const float alpha = __expf(m_old - m_new);  // 0 on the first tile (m_old = -inf)
        alpha_s[g] = alpha;
        l_s[g] = l_s[g] * alpha + sum;
        m_s[g] = m_new;
      }
    }
    __syncthreads();
    // A thread owns pairs of adjacent dims of one query head: per key one shared read of two
    // values, and the probabilities four keys at a time.
#pragma unroll
    for (int r = 0; r < kAcc / 2; ++r) {
      const int pair = tid + r * kThreads;
      if (pair < G * D / 2) {
        const int g = pair / (D / 2), d = 2 * (pair - g * (D / 2));
        const float* pg = p_s + g * kTile;
        float s0 = 0.0f, s1 = 0.0f;
#pragma unroll 4
        for (int j = 0; j < kTile; j += 4) {
          const float4 p4 = *reinterpret_cast<const float4*>(pg + j);
          const float pj[4] = {p4.x, p4.y, p4.z, p4.w};
#pragma unroll
          for (int u = 0; u < 4; ++u) {
            const float2 v = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(v_s + (j + u) * ks + d));
            s0 += pj[u] * v.x;
            s1 += pj[u] * v.y;
          }
        }
        const float alpha = alpha_s[g];
        acc[2 * r] = acc[2 * r] * alpha + s0;
        acc[2 * r + 1] = acc[2 * r + 1] * alpha + s1;
      }
    }
  }
  __syncthreads();

  const int H = a.num_heads;
#pragma unroll
  for (int r = 0; r < kAcc; ++r) {
    const int pair = tid + (r / 2) * kThreads;
    if (pair < G * D / 2) {
      const int g = pair / (D / 2), d = 2 * (pair - g * (D / 2)) + (r & 1);
      const int h = kvh * G + g;
      const float l = l_s[g];
      const float o = l > 0.0f ? acc[r] / l : 0.0f;
      if (a.num_splits == 1) {
        reinterpret_cast<bf16*>(a.out)[row * H * D + static_cast<int64_t>(h) * D + d] = dev::to_bf(o);
      } else {
        const int64_t pi = (row * H + h) * a.num_splits + split;
        a.partial_out[pi * D + d] = o;
        if (d == 0) a.partial_lse[pi] = l > 0.0f ? m_s[g] + logf(l) : -INFINITY;
      }
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

template <int kAcc>
Status launch_rows(const AttentionArgs& a, Stream stream) {
  const size_t smem = Smem::bytes(a.num_heads / a.num_kv_heads, a.head_dim);
  // The most shared memory per SM (the default carveout fits fewer blocks of a tile of 64 keys).
  static const cudaError_t carveout = cudaFuncSetAttribute(
      attention_kernel<kAcc>, cudaFuncAttributePreferredSharedMemoryCarveout, cudaSharedmemCarveoutMaxShared);
  KILN_CUDA_RETURN_IF_ERROR(carveout);
  if (smem > 48 * 1024) {
    KILN_CUDA_RETURN_IF_ERROR(
        cudaFuncSetAttribute(attention_kernel<kAcc>, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
  }
  const dim3 grid(static_cast<unsigned>(a.num_tokens), static_cast<unsigned>(a.num_kv_heads),
                  static_cast<unsigned>(a.num_splits));
  return launch("attention_kernel", attention_kernel<kAcc>, grid, dim3(kThreads), smem, stream, a);
}

}  // namespace

int attention_num_splits(int64_t num_tokens, int num_kv_heads, int64_t max_kv_len, int sm_count) {
  const int64_t blocks = std::max<int64_t>(1, num_tokens * num_kv_heads);
  if (blocks >= sm_count) return 1;
  const int64_t want = (2 * static_cast<int64_t>(sm_count) + blocks - 1) / blocks;
  const int64_t tiles = (max_kv_len + kTile - 1) / kTile;
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
  const int G = a.num_heads / a.num_kv_heads;
  if (a.head_dim % 8 != 0 || G * a.head_dim > kThreads * kMaxAccPerThread) {
    return invalid_argument(str_cat("paged_attention: head_dim ", a.head_dim, " with ", G,
                                    " query heads per kv head is not supported (head_dim % 8 == 0 and "
                                    "group * head_dim <= ", kThreads * kMaxAccPerThread, ")"));
  }
  if (a.num_splits < 1 || (a.num_splits > 1 && (a.partial_out == nullptr || a.partial_lse == nullptr))) {
    return invalid_argument("paged_attention: split-KV needs partial buffers");
  }
  if (a.num_tokens == 0 || a.num_seqs == 0) return Status::ok();
  if (attention_tile_fits(a, a.max_query_len)) return launch_attention_tile(a, a.max_query_len, stream);
  const int per_thread = (G * a.head_dim + kThreads - 1) / kThreads;
  if (per_thread <= 2) KILN_RETURN_IF_ERROR(launch_rows<2>(a, stream));
  else if (per_thread <= 4) KILN_RETURN_IF_ERROR(launch_rows<4>(a, stream));
  else if (per_thread <= 8) KILN_RETURN_IF_ERROR(launch_rows<8>(a, stream));
  else KILN_RETURN_IF_ERROR(launch_rows<kMaxAccPerThread>(a, stream));
  if (a.num_splits > 1) {
    const dim3 mgrid(static_cast<unsigned>(a.num_tokens), static_cast<unsigned>(a.num_heads));
    KILN_RETURN_IF_ERROR(launch("merge_kernel", merge_kernel, mgrid, dim3(std::min(a.head_dim, 256)), 0, stream, a));
  }
  return Status::ok();
}

}  // namespace kiln::runtime::cuda
