// The RMSNorm prologue of the fused pre-norm projections (small_m_kernel in gemm.cu, the FP8
// GEMV in fp8_gemv.cu): a block normalises the few rows it multiplies into shared memory, bitwise as
// ops::rms_norm would. Included only by .cu files of this folder.
#pragma once

#include "kiln/runtime/backend/cuda/cuda_util.cuh"

namespace kiln::runtime::cuda::dev {

// The RMSNorm prologue: the M rows of x ([M, kv] 8-wide vectors) normalised by w into `out`
// (shared memory), bf16; w_first is w[threadIdx.x], loaded by the caller. The sum of squares is
// split over threads and reduced exactly as rms_norm_kernel splits and reduces it with its
// norm_threads(k) threads (here emulated by the block's threads), so the normalised rows are
// bitwise those of ops::rms_norm.
template <int M>
__device__ __forceinline__ void rms_norm_rows(const Bf16x8* __restrict__ x, const Bf16x8* __restrict__ w,
                                              Bf16x8 w_first, int64_t kv, float eps, Bf16x8* out, float* red) {
  const int tid = threadIdx.x, lane = tid & 31;
  int threads = 32;  // norm_threads(k)
  while (threads < kv && threads < 1024) threads *= 2;
#pragma unroll
  for (int m = 0; m < M; ++m) {
    for (int vt = tid; vt < threads; vt += blockDim.x) {
      float ss = 0.0f;
      for (int64_t i = vt; i < kv; i += threads) {
        float v[8];
        unpack8(x[m * kv + i], v);
#pragma unroll
        for (int j = 0; j < 8; ++j) ss += v[j] * v[j];
      }
      ss = warp_sum(ss);
      if (lane == 0) red[vt >> 5] = ss;
    }
    __syncthreads();
    const float ss = warp_sum(lane < threads / 32 ? red[lane] : 0.0f);
    const float rs = rsqrtf(ss / static_cast<float>(8 * kv) + eps);
    for (int64_t i = tid; i < kv; i += blockDim.x) {
      float v[8], g[8];
      unpack8(x[m * kv + i], v);
      unpack8(i == tid ? w_first : w[i], g);
#pragma unroll
      for (int j = 0; j < 8; ++j) v[j] = v[j] * rs * g[j];
      out[m * kv + i] = pack8(v);
    }
    __syncthreads();  // `out` is complete and `red` free for the next row
  }
}

}  // namespace kiln::runtime::cuda::dev
