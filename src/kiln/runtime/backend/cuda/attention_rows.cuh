// Device helpers shared by the attention kernels (attention.cu, attention_decode.cu,
// attention_tile.cu): which keys a query row attends to in a split, cp.async copies, base-2
// exponentials and the bf16 mma.sync / ldmatrix wrappers. CUDA-only header.
#pragma once

#include <cstdint>

#include "kiln/runtime/backend/cuda/cuda_util.cuh"
#include "kiln/runtime/backend/cuda/kernels.h"

namespace kiln::runtime::cuda::dev {

// Keys per split granule: a split covers whole tiles of this many keys (attention_num_splits).
// One chunk of the tensor-core decode kernel, so that at small batch (a decode graph sizes its
// split count for the whole context) each split's warp reads a single chunk: H100 batch-1
// decode of Qwen3-0.6B 6% faster than with tiles of 64.
inline constexpr int kSplitTile = 16;

// The keys query row `row` attends to within split `split`: [begin, end); those before
// first_new were written by earlier steps (the previous kernel writes the others).
struct RowKeys {
  int seq;
  int32_t first_new, begin, end;
  const int32_t* table;  // the sequence's block table
};

__device__ __forceinline__ int find_seq(const int32_t* query_start, int num_seqs, int64_t row) {
  int lo = 0, hi = num_seqs - 1;  // the last s with query_start[s] <= row
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (query_start[mid] <= row) lo = mid; else hi = mid - 1;
  }
  return lo;
}

// Reads only launch metadata (uploaded before the step), so it may run before the PDL wait.
// Positions fit in 32 bits (kv_len is int32). A decode batch has one row per sequence: row s is
// sequence s, found without a search. A split's range is whole tiles, so a row's reduction order
// is the same for any split count that gives it the same ranges.
__device__ __forceinline__ RowKeys row_keys(const AttentionArgs& a, int64_t row, int split) {
  RowKeys r;
  r.seq = row < a.num_seqs && a.query_start[row] == row && a.query_start[row + 1] == row + 1
              ? static_cast<int>(row)
              : find_seq(a.query_start, a.num_seqs, row);
  const int32_t q0 = a.query_start[r.seq], n_new = a.query_start[r.seq + 1] - q0;
  r.first_new = a.kv_len[r.seq] - n_new;
  const int32_t pos = r.first_new + static_cast<int32_t>(row - q0);
  const int32_t k_lo = a.sliding_window > 0 ? max(0, pos + 1 - static_cast<int32_t>(a.sliding_window)) : 0;
  const int32_t k_hi = pos + 1;
  const int32_t n_keys = max(0, k_hi - k_lo);
  const int32_t tiles_per_split = ((n_keys + kSplitTile - 1) / kSplitTile + a.num_splits - 1) / a.num_splits;
  r.begin = k_lo + split * tiles_per_split * kSplitTile;
  r.end = min(k_hi, r.begin + tiles_per_split * kSplitTile);
  r.table = a.block_ids + a.block_start[r.seq];
  return r;
}

// 16 bytes global -> shared, asynchronously; zeros instead when !fill.
__device__ __forceinline__ void cp_async16(void* smem, const void* gmem, bool fill) {
  const auto dst = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(dst), "l"(gmem), "r"(fill ? 16 : 0) : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;" ::: "memory"); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {  // at most N of this thread's groups pending
  asm volatile("cp.async.wait_group %0;" ::"n"(N) : "memory");
}

__device__ __forceinline__ float exp2_approx(float x) {  // 2^x; 0 for -inf
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}
inline constexpr float kLog2e = 1.4426950408889634f;
inline constexpr float kLn2 = 0.6931471805599453f;

// c += a b for a 16x16 bf16 A (row major), a 16x8 bf16 B (column major) and a 16x8 f32 C.
// Fragment coordinates (PTX m16n8k16): lane = 4 * g + t. A: rows g and g + 8, columns 2t, 2t + 1
// (+ 8); B: rows (k) 2t, 2t + 1 (+ 8), column g; C: rows g and g + 8, columns 2t, 2t + 1.
__device__ __forceinline__ void mma_16816(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Scales an mma accumulator's rows g (by alpha[0]) and g + 8 (by alpha[1]).
template <int NB>
__device__ __forceinline__ void scale_rows(float (&o)[NB][4], const float (&alpha)[2]) {
#pragma unroll
  for (int nb = 0; nb < NB; ++nb) {
    o[nb][0] *= alpha[0];
    o[nb][1] *= alpha[0];
    o[nb][2] *= alpha[1];
    o[nb][3] *= alpha[1];
  }
}

__device__ __forceinline__ uint32_t pack_bf16(bf16 lo, bf16 hi) {
  const __nv_bfloat162 v(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&v);
}

__device__ __forceinline__ uint32_t ld32(const bf16* p) { return *reinterpret_cast<const uint32_t*>(p); }

// Four 8x8 bf16 matrices from shared memory, lanes 8i .. 8i + 7 giving the row addresses of
// matrix i; register i holds matrix i's fragment (row g, columns 2t, 2t + 1), or with .trans its
// transpose's (rows 2t, 2t + 1 of column g).
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const bf16* row) {
  const auto p = static_cast<unsigned>(__cvta_generic_to_shared(row));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(p));
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const bf16* row) {
  const auto p = static_cast<unsigned>(__cvta_generic_to_shared(row));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(p));
}

}  // namespace kiln::runtime::cuda::dev
