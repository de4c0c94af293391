// One warp's dot products of one bf16 weight row with a few rows of x: the inner loop of the
// GEMVs that stream weights once for a handful of rows (small_m_kernel in gemm.cu, the experts'
// row kernel in moe_gemm.cu). Included only by .cu files of this folder.
#pragma once

#include "kiln/runtime/backend/cuda/cuda_util.cuh"

namespace kiln::runtime::cuda::dev {

inline constexpr int kRowDotUnroll = 8;  // 16-byte weight loads in flight per lane

// Where the rows of x lie: one after another (ContiguousRows), or anywhere (GatheredRows: the
// experts' rows kernel reads each token's row where it is instead of a gathered copy).
struct ContiguousRows {
  const Bf16x8* x;
  int64_t kv;
  __device__ __forceinline__ const Bf16x8* row(int m) const { return x + m * kv; }
};

template <int M>
struct GatheredRows {
  const Bf16x8* r[M];
  __device__ __forceinline__ const Bf16x8* row(int m) const { return r[m]; }
};

// The weight row w is kv 8-wide vectors; x is `rows` (<= M) rows of kv vectors each. Each lane
// takes every 32nd vector from its lane index, kRowDotUnroll at a time; a row shorter than one
// such step (k < 2048) is loaded whole, the loads past its end skipped. prefetch() issues the
// first step's loads (callers issue it before waiting on the previous kernel where the weight
// does not depend on it); accumulate() runs the rest and leaves each lane's partial sums in acc
// (the caller warp_sums them). Rows at or past `rows` are neither read nor summed.
template <int M>
struct WarpRowDot {
  Bf16x8 wr[kRowDotUnroll];
  int64_t v;
  bool short_row;

  __device__ __forceinline__ bool whole_step(int64_t kv) const { return v + 32 * (kRowDotUnroll - 1) < kv; }

  __device__ __forceinline__ void load_step(const Bf16x8* __restrict__ wv) {
#pragma unroll
    for (int u = 0; u < kRowDotUnroll; ++u) wr[u] = wv[v + 32 * u];
  }

  __device__ __forceinline__ void prefetch(const Bf16x8* __restrict__ wv, int64_t kv) {
    v = threadIdx.x & 31;
    short_row = !whole_step(kv);
    if (short_row) {
#pragma unroll
      for (int u = 0; u < kRowDotUnroll; ++u) {
        if (v + 32 * u < kv) wr[u] = wv[v + 32 * u];
      }
    } else {
      load_step(wv);
    }
  }

  template <typename Rows>
  __device__ __forceinline__ void add_products(const Bf16x8& wq, const Rows& xr, int64_t at, int rows,
                                               float (&acc)[M]) const {
    float wf[8];
    unpack8(wq, wf);
#pragma unroll
    for (int m = 0; m < M; ++m) {
      if (m >= rows) break;
      float xf[8];
      unpack8(xr.row(m)[at], xf);
#pragma unroll
      for (int j = 0; j < 8; ++j) acc[m] += wf[j] * xf[j];
    }
  }

  // acc[m] += this lane's share of w . x[m] for m < rows (acc is not zeroed here).
  template <typename Rows>
  __device__ __forceinline__ void accumulate(const Bf16x8* __restrict__ wv, const Rows& xr, int64_t kv, int rows,
                                             float (&acc)[M]) {
    if (short_row) {
#pragma unroll
      for (int u = 0; u < kRowDotUnroll; ++u) {
        if (v + 32 * u < kv) add_products(wr[u], xr, v + 32 * u, rows, acc);
      }
      return;
    }
    while (whole_step(kv)) {
#pragma unroll
      for (int u = 0; u < kRowDotUnroll; ++u) add_products(wr[u], xr, v + 32 * u, rows, acc);
      v += 32 * kRowDotUnroll;
      if (whole_step(kv)) load_step(wv);
    }
    for (; v < kv; v += 32) add_products(wv[v], xr, v, rows, acc);
  }
};

}  // namespace kiln::runtime::cuda::dev
