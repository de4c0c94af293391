// Paged causal attention for prefill on tensor cores, FlashAttention-2's way: one warp owns 16
// query rows of one query head and keeps everything of them in registers - Q as mma fragments,
// the scores S = Q K^T of a 64-key tile, their softmax weights P (which become the A operand of
// P V without leaving registers) and the output O - with the running max and sum per row. A block
// is the warps of one (sequence, kv head) that share each K/V tile in shared memory: the group's
// query heads, times row_groups() 16-row groups. mma.sync m16n8k16 bf16 with f32
// accumulation; P is rounded to bf16 for the product and the row sums add exactly those weights.
#include <algorithm>
#include <cmath>

#include "kiln/runtime/backend/cuda/attention_tile.h"
#include "kiln/runtime/backend/cuda/attention_rows.cuh"

namespace kiln::runtime::cuda {
namespace {

using dev::bf16;
using dev::ld32;
using dev::mma_16816;
using dev::pack_bf16;

constexpr int kRows = 16;      // query rows per warp (the mma's M)
constexpr int kKeys = 64;      // keys per tile
constexpr int kPad = 8;        // bf16 of padding per smem row: fragment reads fall in distinct banks
constexpr int kMaxGroup = 8;   // query heads per kv head this kernel takes
constexpr int kLoadBatch = 4;  // K/V vector pairs a thread has in flight while filling a tile

// 16-row groups per block: two (each K/V tile serves 32 rows) where the warps fit. Measured on an
// H100, prefill of 512 tokens: Llama-3.1-8B (group 4) 1.5% faster than one group, Qwen3-0.6B
// (group 2) 4% slower with four groups than with two.
int row_groups(int group) { return group <= kMaxGroup / 2 ? 2 : 1; }
size_t tile_smem(int d) { return sizeof(bf16) * 2 * kKeys * (d + kPad); }

// Fragment coordinates: see dev::mma_16816.
template <int D>
__global__ void __launch_bounds__(32 * kMaxGroup) attention_tile_kernel(AttentionArgs a) {
  constexpr int ld = D + kPad, KS = D / 16, NB = D / 8, TB = kKeys / 8;
  dev::pdl_begin();
  extern __shared__ __align__(16) unsigned char smem[];
  bf16* k_s = reinterpret_cast<bf16*>(smem);  // [kKeys, ld]
  bf16* v_s = k_s + kKeys * ld;               // [kKeys, ld]
  const int KV = a.num_kv_heads, G = a.num_heads / KV;
  const int s = blockIdx.y, kvh = blockIdx.z;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  const int32_t q0 = a.query_start[s], n_new = a.query_start[s + 1] - q0;
  const int block_rows = kRows * (blockDim.x / 32 / G);
  const int br0 = blockIdx.x * block_rows;
  if (br0 >= n_new) return;
  const int64_t first_pos = static_cast<int64_t>(a.kv_len[s]) - n_new;  // position of row 0
  const int64_t k_hi = first_pos + min(n_new, br0 + block_rows);       // keys the block's last row sees
  const int64_t k_lo = a.sliding_window > 0 ? max(int64_t{0}, first_pos + br0 + 1 - a.sliding_window) : 0;

  // This warp: query head h, rows [r0, r0 + rows) of the sequence's new tokens.
  const int h = kvh * G + warp % G;
  const int r0 = br0 + (warp / G) * kRows;
  const int rows = max(0, min(kRows, n_new - r0));
  const int64_t pos0 = first_pos + r0;
  const auto window_lo = [&](int64_t pos) {
    return a.sliding_window > 0 ? max(int64_t{0}, pos + 1 - a.sliding_window) : int64_t{0};
  };

  uint32_t qf[KS][4];
  {
    const bf16* qb = reinterpret_cast<const bf16*>(a.q) + (q0 + r0) * a.q_row_stride + static_cast<int64_t>(h) * D;
    const bool lo_ok = g < rows, hi_ok = g + 8 < rows;
#pragma unroll
    for (int ks = 0; ks < KS; ++ks) {
      const int c = 16 * ks + 2 * t;
      qf[ks][0] = lo_ok ? ld32(qb + g * a.q_row_stride + c) : 0u;
      qf[ks][1] = hi_ok ? ld32(qb + (g + 8) * a.q_row_stride + c) : 0u;
      qf[ks][2] = lo_ok ? ld32(qb + g * a.q_row_stride + c + 8) : 0u;
      qf[ks][3] = hi_ok ? ld32(qb + (g + 8) * a.q_row_stride + c + 8) : 0u;
    }
  }
  float o[NB][4];
#pragma unroll
  for (int nb = 0; nb < NB; ++nb) o[nb][0] = o[nb][1] = o[nb][2] = o[nb][3] = 0.0f;
  float m_run[2] = {-INFINITY, -INFINITY}, l_run[2] = {0.0f, 0.0f};

  const int32_t* table = a.block_ids + a.block_start[s];
  const int64_t kv_stride = static_cast<int64_t>(KV) * D;
  const bf16* cache = reinterpret_cast<const bf16*>(a.kv_cache);
  constexpr int vec = D / 8;
  const int64_t k_start = (k_lo / kKeys) * kKeys;  // tiles aligned to kKeys positions

  for (int64_t t0 = k_start; t0 < k_hi; t0 += kKeys) {
    __syncthreads();  // every warp is done with the previous K/V tile
    // kLoadBatch K/V pairs per thread at a time: their block-table lookups are issued together,
    // then their cache reads.
    for (int base = 0; base < kKeys * vec; base += blockDim.x * kLoadBatch) {
      const bf16* kp[kLoadBatch];
#pragma unroll
      for (int b = 0; b < kLoadBatch; ++b) {
        const int idx = base + b * blockDim.x + threadIdx.x;
        const int j = idx / vec, c = idx - j * vec;
        const int64_t key = t0 + j;
        kp[b] = nullptr;
        if (idx < kKeys * vec && key < k_hi) {
          const int64_t blk = table[key / a.block_size], off = key % a.block_size;
          kp[b] = cache + ((blk * 2) * a.block_size + off) * kv_stride + static_cast<int64_t>(kvh) * D + c * 8;
        }
      }
      uint4 kr[kLoadBatch], vr[kLoadBatch];
#pragma unroll
      for (int b = 0; b < kLoadBatch; ++b) {
        kr[b] = vr[b] = make_uint4(0, 0, 0, 0);
        if (kp[b] != nullptr) {
          kr[b] = *reinterpret_cast<const uint4*>(kp[b]);
          vr[b] = *reinterpret_cast<const uint4*>(kp[b] + a.block_size * kv_stride);
        }
      }
#pragma unroll
      for (int b = 0; b < kLoadBatch; ++b) {
        const int idx = base + b * blockDim.x + threadIdx.x;
        if (idx < kKeys * vec) {
          const int j = idx / vec, c = idx - j * vec;
          *reinterpret_cast<uint4*>(k_s + j * ld + c * 8) = kr[b];
          *reinterpret_cast<uint4*>(v_s + j * ld + c * 8) = vr[b];
        }
      }
    }
    __syncthreads();
    // Nothing for this warp in the tile: past its last row's keys, or before its first row's window.
    if (rows == 0 || t0 > pos0 + rows - 1 || t0 + kKeys <= window_lo(pos0)) continue;

    // S = Q K^T for keys t0 + 8n + (2t, 2t + 1), scaled and masked.
    float sc[TB][4];
#pragma unroll
    for (int n = 0; n < TB; ++n) {
      sc[n][0] = sc[n][1] = sc[n][2] = sc[n][3] = 0.0f;
      const bf16* krow = k_s + (8 * n + g) * ld + 2 * t;
#pragma unroll
      for (int ks = 0; ks < KS; ++ks) mma_16816(sc[n], qf[ks], ld32(krow + 16 * ks), ld32(krow + 16 * ks + 8));
    }
    float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
    for (int n = 0; n < TB; ++n) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int row = g + 8 * (e >> 1);
        const int64_t pos = pos0 + row, key = t0 + 8 * n + 2 * t + (e & 1);
        const bool keep = row < rows && key <= pos && key >= window_lo(pos);
        sc[n][e] = keep ? sc[n][e] * a.scale : -INFINITY;
        mx[e >> 1] = fmaxf(mx[e >> 1], sc[n][e]);
      }
    }
    float m_new[2], alpha[2], sum[2] = {0.0f, 0.0f};
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      mx[i] = fmaxf(mx[i], __shfl_xor_sync(0xffffffffu, mx[i], 1));
      mx[i] = fmaxf(mx[i], __shfl_xor_sync(0xffffffffu, mx[i], 2));
      m_new[i] = fmaxf(m_run[i], mx[i]);
      alpha[i] = m_new[i] == -INFINITY ? 1.0f : __expf(m_run[i] - m_new[i]);
    }
    // P in bf16, packed as the A operand of P V: pa[n][0] row g, pa[n][1] row g + 8.
    uint32_t pa[TB][2];
#pragma unroll
    for (int n = 0; n < TB; ++n) {
      bf16 p[4];
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const float mn = m_new[e >> 1];
        p[e] = dev::to_bf(mn == -INFINITY ? 0.0f : __expf(sc[n][e] - mn));
        sum[e >> 1] += dev::to_f(p[e]);
      }
      pa[n][0] = pack_bf16(p[0], p[1]);
      pa[n][1] = pack_bf16(p[2], p[3]);
    }
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      sum[i] += __shfl_xor_sync(0xffffffffu, sum[i], 1);
      sum[i] += __shfl_xor_sync(0xffffffffu, sum[i], 2);
      l_run[i] = l_run[i] * alpha[i] + sum[i];
      m_run[i] = m_new[i];
    }
    dev::scale_rows(o, alpha);
    // O += P V: key step kk covers keys 16kk .. 16kk + 15 (score blocks 2kk and 2kk + 1).
#pragma unroll
    for (int kk = 0; kk < kKeys / 16; ++kk) {
      const uint32_t af[4] = {pa[2 * kk][0], pa[2 * kk][1], pa[2 * kk + 1][0], pa[2 * kk + 1][1]};
      const bf16* v0 = v_s + (16 * kk + 2 * t) * ld + g;
#pragma unroll
      for (int nb = 0; nb < NB; ++nb) {
        const bf16* vp = v0 + 8 * nb;
        mma_16816(o[nb], af, pack_bf16(vp[0], vp[ld]), pack_bf16(vp[8 * ld], vp[9 * ld]));
      }
    }
  }

  // out[row, h * D + d] = O / l.
  bf16* out = reinterpret_cast<bf16*>(a.out) + (q0 + r0) * static_cast<int64_t>(a.num_heads) * D +
              static_cast<int64_t>(h) * D + 2 * t;
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    const int row = g + 8 * i;
    if (row >= rows) continue;
    const float inv = l_run[i] > 0.0f ? 1.0f / l_run[i] : 0.0f;
    bf16* orow = out + static_cast<int64_t>(row) * a.num_heads * D;
#pragma unroll
    for (int nb = 0; nb < NB; ++nb) {
      *reinterpret_cast<__nv_bfloat162*>(orow + 8 * nb) =
          __floats2bfloat162_rn(o[nb][2 * i] * inv, o[nb][2 * i + 1] * inv);
    }
  }
}

int max_smem_optin() {
  int device = 0, bytes = 0;
  if (cudaGetDevice(&device) != cudaSuccess ||
      cudaDeviceGetAttribute(&bytes, cudaDevAttrMaxSharedMemoryPerBlockOptin, device) != cudaSuccess) {
    cudaGetLastError();
    return 48 * 1024;
  }
  return bytes;
}

}  // namespace

bool attention_tile_fits(const AttentionArgs& a, int64_t max_query_len) {
  if (max_query_len < 8 || a.num_kv_heads <= 0 || a.num_heads % a.num_kv_heads != 0) return false;
  const int G = a.num_heads / a.num_kv_heads;
  if (G > kMaxGroup || (a.head_dim != 64 && a.head_dim != 128)) return false;
  static const int limit = max_smem_optin();
  if (tile_smem(a.head_dim) > static_cast<size_t>(limit)) return false;
  // Blocks are laid out per sequence for the longest query span; skip this kernel when most of
  // them would find no rows (many short spans beside one long one).
  const int64_t block_rows = kRows * row_groups(G);
  const int64_t blocks = (max_query_len + block_rows - 1) / block_rows * a.num_seqs;
  const int64_t useful = (a.num_tokens + block_rows - 1) / block_rows + a.num_seqs;
  return blocks <= 4 * useful;
}

Status launch_attention_tile(const AttentionArgs& a, int64_t max_query_len, Stream stream) {
  const int G = a.num_heads / a.num_kv_heads, R = row_groups(G);
  const size_t smem = tile_smem(a.head_dim);
  const auto kernel = a.head_dim == 64 ? attention_tile_kernel<64> : attention_tile_kernel<128>;
  KILN_CUDA_RETURN_IF_ERROR(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
  const dim3 grid(static_cast<unsigned>((max_query_len + kRows * R - 1) / (kRows * R)), static_cast<unsigned>(a.num_seqs),
                  static_cast<unsigned>(a.num_kv_heads));
  return launch("attention_tile_kernel", kernel, grid, dim3(32 * G * R), smem, stream, a);
}

}  // namespace kiln::runtime::cuda
