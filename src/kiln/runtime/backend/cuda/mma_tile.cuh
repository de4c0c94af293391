// The epilogue kiln's mma.sync GEMM kernels share (fp8_gemm.cu, fp8_bf16_mma.cu). Included only by
// .cu files of this folder.
#pragma once

#include "kiln/runtime/backend/cuda/cuda_util.cuh"

namespace kiln::runtime::cuda::dev {

// Writes a warp's 32 x 32 f32 accumulator tile (2 x 4 m16n8 tiles in the mma C layout: lane
// 4 · gid + tig holds rows gid and gid + 8, columns 2 · tig and 2 · tig + 1 of each) whose first
// row is r0 and first column c0: bias added, rounded to bf16, or with `accumulate` the rounded
// product added into y as a separate bf16 add would. Rows past m and columns past n are skipped.
__device__ __forceinline__ void store_mma_tile_32x32(const float (&acc)[2][4][4], int r0, int c0,
                                                     const bf16* __restrict__ bias, bf16* __restrict__ y,
                                                     int accumulate, int m, int n) {
  const int lane = static_cast<int>(threadIdx.x) & 31, gid = lane >> 2, tig = lane & 3;
#pragma unroll
  for (int i = 0; i < 2; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int r = r0 + i * 16 + gid + (e >> 1) * 8, c = c0 + j * 8 + tig * 2 + (e & 1);
        if (r >= m || c >= n) continue;
        const float v = acc[i][j][e] + (bias != nullptr ? to_f(bias[c]) : 0.0f);
        const size_t at = static_cast<size_t>(r) * n + c;
        y[at] = accumulate ? to_bf(to_f(to_bf(v)) + to_f(y[at])) : to_bf(v);
      }
}

}  // namespace kiln::runtime::cuda::dev
