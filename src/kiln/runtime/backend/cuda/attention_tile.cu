// Paged causal attention for prefill on tensor cores (FlashAttention-2's loop order, with WMMA
// bf16 fragments). One block per (16 query rows of one sequence, kv head); one warp per query head
// of the group, so each K/V tile in shared memory serves 16 * group query vectors. Per key tile a
// warp computes S = Q K^T on tensor cores, masks it (causal, window), updates the running max and
// sum, rescales its output rows and adds P V on tensor cores. Output rows live in shared memory in
// f32, where the rescale needs no knowledge of the fragment layout.
#include <mma.h>

#include <algorithm>
#include <cmath>

#include "kiln/runtime/backend/cuda/attention_tile.h"
#include "kiln/runtime/backend/cuda/cuda_util.cuh"

namespace kiln::runtime::cuda {
namespace {

using dev::bf16;
namespace wmma = nvcuda::wmma;

constexpr int kRows = 16;      // query rows per block
constexpr int kKeys = 64;      // keys per tile
constexpr int kPad = 8;        // bf16 of padding per row: ldm stays a multiple of 8, rows shift banks
constexpr int kMaxGroup = 16;  // warps per block

struct TileSmem {
  size_t k, v, q, s, p, o, rowstate, total;
  __host__ __device__ static size_t up(size_t n) { return (n + 127) / 128 * 128; }
  __host__ __device__ TileSmem(int group, int d) {
    size_t at = 0;
    k = at; at += up(sizeof(bf16) * kKeys * (d + kPad));
    v = at; at += up(sizeof(bf16) * kKeys * (d + kPad));
    q = at; at += up(sizeof(bf16) * group * kRows * (d + kPad));
    s = at; at += up(sizeof(float) * group * kRows * kKeys);
    p = at; at += up(sizeof(bf16) * group * kRows * (kKeys + kPad));
    o = at; at += up(sizeof(float) * group * kRows * d);
    rowstate = at; at += up(sizeof(float) * group * 3 * kRows);  // running max, sum, last rescale
    total = at;
  }
};

__global__ void attention_tile_kernel(AttentionArgs a) {
  dev::pdl_begin();
  extern __shared__ __align__(128) unsigned char smem[];
  const int D = a.head_dim, KV = a.num_kv_heads, G = a.num_heads / KV;
  const int s = blockIdx.y, kvh = blockIdx.z;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int32_t q0 = a.query_start[s], n_new = a.query_start[s + 1] - q0;
  const int r0 = blockIdx.x * kRows;
  if (r0 >= n_new) return;
  const int rows = min(kRows, n_new - r0);
  const int64_t pos0 = static_cast<int64_t>(a.kv_len[s]) - n_new + r0;  // position of row 0
  const int64_t k_hi = pos0 + rows;                                      // keys the last row sees
  const int64_t k_lo = a.sliding_window > 0 ? max(int64_t{0}, pos0 + 1 - a.sliding_window) : 0;

  const TileSmem L(G, D);
  const int ld = D + kPad, ldp = kKeys + kPad;
  bf16* k_s = reinterpret_cast<bf16*>(smem + L.k);
  bf16* v_s = reinterpret_cast<bf16*>(smem + L.v);
  bf16* q_s = reinterpret_cast<bf16*>(smem + L.q) + warp * kRows * ld;
  float* s_s = reinterpret_cast<float*>(smem + L.s) + warp * kRows * kKeys;
  bf16* p_s = reinterpret_cast<bf16*>(smem + L.p) + warp * kRows * ldp;
  float* o_s = reinterpret_cast<float*>(smem + L.o) + warp * kRows * D;
  float* m_s = reinterpret_cast<float*>(smem + L.rowstate) + warp * 3 * kRows;
  float* l_s = m_s + kRows;
  float* alpha_s = l_s + kRows;

  // This warp's query head h: its 16 rows into q_s (zeros past the last row), o_s zeroed.
  const int h = kvh * G + warp;
  const bf16* qbase = reinterpret_cast<const bf16*>(a.q) + (q0 + r0) * a.q_row_stride + static_cast<int64_t>(h) * D;
  for (int e = lane; e < kRows * D / 8; e += 32) {
    const int r = e / (D / 8), c = e % (D / 8);
    uint4 v = make_uint4(0, 0, 0, 0);
    if (r < rows) v = *reinterpret_cast<const uint4*>(qbase + r * a.q_row_stride + c * 8);
    *reinterpret_cast<uint4*>(q_s + r * ld + c * 8) = v;
  }
  for (int e = lane; e < kRows * D; e += 32) o_s[e] = 0.0f;
  if (lane < kRows) {
    m_s[lane] = -INFINITY;
    l_s[lane] = 0.0f;
  }

  const int32_t* table = a.block_ids + a.block_start[s];
  const int64_t kv_stride = static_cast<int64_t>(KV) * D;
  const bf16* cache = reinterpret_cast<const bf16*>(a.kv_cache);
  const int vec = D / 8;
  const int k_start = static_cast<int>((k_lo / kKeys) * kKeys);  // tiles aligned to kKeys positions

  for (int64_t t0 = k_start; t0 < k_hi; t0 += kKeys) {
    __syncthreads();  // every warp is done with the previous K/V tile
    for (int idx = threadIdx.x; idx < kKeys * vec; idx += blockDim.x) {
      const int j = idx / vec, c = idx - j * vec;
      const int64_t key = t0 + j;
      uint4 kv = make_uint4(0, 0, 0, 0), vv = make_uint4(0, 0, 0, 0);
      if (key < k_hi) {
        const int64_t blk = table[key / a.block_size], off = key % a.block_size;
        const bf16* kp = cache + ((blk * 2) * a.block_size + off) * kv_stride + static_cast<int64_t>(kvh) * D + c * 8;
        kv = *reinterpret_cast<const uint4*>(kp);
        vv = *reinterpret_cast<const uint4*>(kp + a.block_size * kv_stride);
      }
      *reinterpret_cast<uint4*>(k_s + j * ld + c * 8) = kv;
      *reinterpret_cast<uint4*>(v_s + j * ld + c * 8) = vv;
    }
    __syncthreads();

    // S = Q K^T: [16, kKeys] in f32.
    for (int kb = 0; kb < kKeys / 16; ++kb) {
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
      wmma::fill_fragment(acc, 0.0f);
      for (int kk = 0; kk < D / 16; ++kk) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major> fa;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::col_major> fb;
        wmma::load_matrix_sync(fa, q_s + kk * 16, ld);
        wmma::load_matrix_sync(fb, k_s + kb * 16 * ld + kk * 16, ld);
        wmma::mma_sync(acc, fa, fb, acc);
      }
      wmma::store_matrix_sync(s_s + kb * 16, acc, kKeys, wmma::mem_row_major);
    }
    __syncwarp();

    // Online softmax, one row at a time; lane owns key columns lane and lane + 32, so shared
    // memory is read and written in consecutive words.
    for (int r = 0; r < kRows; ++r) {
      const int64_t pos = pos0 + r;
      const int64_t lo = a.sliding_window > 0 ? max(int64_t{0}, pos + 1 - a.sliding_window) : 0;
      const float* srow = s_s + r * kKeys;
      const int64_t key0 = t0 + lane, key1 = key0 + 32;
      const bool valid = r < rows;
      const float v0 = valid && key0 <= pos && key0 >= lo ? srow[lane] * a.scale : -INFINITY;
      const float v1 = valid && key1 <= pos && key1 >= lo ? srow[lane + 32] * a.scale : -INFINITY;
      const float m_old = m_s[r];
      const float m_new = fmaxf(m_old, dev::warp_max(fmaxf(v0, v1)));
      const bool none = m_new == -INFINITY;  // no key seen yet by this row
      const bf16 p0 = dev::to_bf(none ? 0.0f : __expf(v0 - m_new));
      const bf16 p1 = dev::to_bf(none ? 0.0f : __expf(v1 - m_new));
      bf16* prow = p_s + r * ldp;
      prow[lane] = p0;
      prow[lane + 32] = p1;
      const float psum = dev::warp_sum(dev::to_f(p0) + dev::to_f(p1));  // exactly the weights P V uses
      if (lane == 0) {
        const float alpha = none ? 1.0f : __expf(m_old - m_new);
        alpha_s[r] = alpha;
        l_s[r] = l_s[r] * alpha + psum;
        m_s[r] = m_new;
      }
    }
    __syncwarp();
    for (int e = lane; e < kRows * D; e += 32) o_s[e] *= alpha_s[e / D];
    __syncwarp();

    // O += P V.
    for (int cb = 0; cb < D / 16; ++cb) {
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
      wmma::load_matrix_sync(acc, o_s + cb * 16, D, wmma::mem_row_major);
      for (int kk = 0; kk < kKeys / 16; ++kk) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major> fa;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::row_major> fb;
        wmma::load_matrix_sync(fa, p_s + kk * 16, ldp);
        wmma::load_matrix_sync(fb, v_s + kk * 16 * ld + cb * 16, ld);
        wmma::mma_sync(acc, fa, fb, acc);
      }
      wmma::store_matrix_sync(o_s + cb * 16, acc, D, wmma::mem_row_major);
    }
    __syncwarp();
  }

  // out[row, h * D + d] = O / l.
  __syncwarp();
  bf16* out = reinterpret_cast<bf16*>(a.out) + (q0 + r0) * static_cast<int64_t>(a.num_heads) * D + static_cast<int64_t>(h) * D;
  for (int e = lane; e < rows * D; e += 32) {
    const int r = e / D, c = e - r * D;
    const float l = l_s[r];
    out[static_cast<int64_t>(r) * a.num_heads * D + c] = dev::to_bf(l > 0.0f ? o_s[e] / l : 0.0f);
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
  if (G > kMaxGroup || a.head_dim % 16 != 0 || a.head_dim > 256) return false;
  static const int limit = max_smem_optin();
  if (TileSmem(G, a.head_dim).total > static_cast<size_t>(limit)) return false;
  // Blocks are laid out per sequence for the longest query span; skip this kernel when most of
  // them would find no rows (many short spans beside one long one).
  const int64_t blocks = (max_query_len + kRows - 1) / kRows * a.num_seqs;
  const int64_t useful = (a.num_tokens + kRows - 1) / kRows + a.num_seqs;
  return blocks <= 4 * useful;
}

Status launch_attention_tile(const AttentionArgs& a, int64_t max_query_len, Stream stream) {
  const int G = a.num_heads / a.num_kv_heads;
  const size_t smem = TileSmem(G, a.head_dim).total;
  KILN_CUDA_RETURN_IF_ERROR(
      cudaFuncSetAttribute(attention_tile_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
  const dim3 grid(static_cast<unsigned>((max_query_len + kRows - 1) / kRows), static_cast<unsigned>(a.num_seqs),
                  static_cast<unsigned>(a.num_kv_heads));
  return launch("attention_tile_kernel", attention_tile_kernel, grid, dim3(32 * G), smem, stream, a);
}

}  // namespace kiln::runtime::cuda
