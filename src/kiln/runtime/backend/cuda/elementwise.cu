// Embedding gather, row gather, RMSNorm and SwiGLU.
#include <algorithm>

#include "kiln/runtime/backend/cuda/cuda_util.cuh"
#include "kiln/runtime/backend/cuda/kernels.h"

namespace kiln::runtime::cuda {
namespace {

using dev::bf16;
using dev::Bf16x8;

__global__ void embedding_kernel(const int32_t* __restrict__ ids, const bf16* __restrict__ table,
                                 int64_t vocab, int64_t hidden, bf16* __restrict__ out) {
  dev::pdl_begin();
  const int64_t row = blockIdx.x;
  int64_t id = ids[row];
  id = id < 0 ? 0 : (id >= vocab ? vocab - 1 : id);
  const bf16* src = table + id * hidden;
  bf16* dst = out + row * hidden;
  if ((hidden & 7) == 0) {
    const auto* s8 = reinterpret_cast<const uint4*>(src);
    auto* d8 = reinterpret_cast<uint4*>(dst);
    for (int64_t i = threadIdx.x; i < hidden / 8; i += blockDim.x) d8[i] = s8[i];
  } else {
    for (int64_t i = threadIdx.x; i < hidden; i += blockDim.x) dst[i] = src[i];
  }
}

__global__ void gather_rows_kernel(const uint8_t* __restrict__ x, const int32_t* __restrict__ rows,
                                   int64_t row_bytes, uint8_t* __restrict__ out) {
  dev::pdl_begin();
  const uint8_t* src = x + static_cast<int64_t>(rows[blockIdx.x]) * row_bytes;
  uint8_t* dst = out + static_cast<int64_t>(blockIdx.x) * row_bytes;
  if ((row_bytes & 15) == 0 && (reinterpret_cast<uintptr_t>(x) & 15) == 0 &&
      (reinterpret_cast<uintptr_t>(out) & 15) == 0) {
    for (int64_t i = threadIdx.x; i < row_bytes / 16; i += blockDim.x)
      reinterpret_cast<uint4*>(dst)[i] = reinterpret_cast<const uint4*>(src)[i];
  } else {
    for (int64_t i = threadIdx.x; i < row_bytes; i += blockDim.x) dst[i] = src[i];
  }
}

// One block of norm_threads(hidden) threads per row. The small-m GEMM's norm prologue
// (gemm.cu, rms_norm_rows) splits and reduces the sum of squares exactly as this does.
__global__ void rms_norm_kernel(const bf16* x, const bf16* __restrict__ weight, int64_t hidden, float eps, bf16* out) {
  dev::pdl_begin();
  __shared__ float scratch[32];
  const int64_t row = blockIdx.x;
  const bf16* xr = x + row * hidden;
  bf16* orow = out + row * hidden;
  const bool vec = (hidden & 7) == 0;
  float ss = 0.0f;
  if (vec) {
    for (int64_t i = threadIdx.x; i < hidden / 8; i += blockDim.x) {
      float v[8];
      dev::unpack8(reinterpret_cast<const Bf16x8*>(xr)[i], v);
#pragma unroll
      for (int j = 0; j < 8; ++j) ss += v[j] * v[j];
    }
  } else {
    for (int64_t i = threadIdx.x; i < hidden; i += blockDim.x) {
      const float v = dev::to_f(xr[i]);
      ss += v * v;
    }
  }
  ss = dev::block_sum(ss, scratch);
  const float rs = rsqrtf(ss / static_cast<float>(hidden) + eps);
  // Each thread reads back only what it read itself (same index split), so out may alias x.
  if (vec) {
    for (int64_t i = threadIdx.x; i < hidden / 8; i += blockDim.x) {
      float v[8], w[8];
      dev::unpack8(reinterpret_cast<const Bf16x8*>(xr)[i], v);
      dev::unpack8(reinterpret_cast<const Bf16x8*>(weight)[i], w);
#pragma unroll
      for (int j = 0; j < 8; ++j) v[j] = v[j] * rs * w[j];
      reinterpret_cast<Bf16x8*>(orow)[i] = dev::pack8(v);
    }
  } else {
    for (int64_t i = threadIdx.x; i < hidden; i += blockDim.x) {
      orow[i] = dev::to_bf(dev::to_f(xr[i]) * rs * dev::to_f(weight[i]));
    }
  }
}

__global__ void swiglu_kernel(const bf16* __restrict__ gate_up, int64_t n, int64_t inter,
                              bf16* __restrict__ out) {
  dev::pdl_begin();
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const bool vec = (inter & 7) == 0;
  if (i >= (vec ? inter / 8 : inter)) return;
  for (int64_t row = blockIdx.y; row < n; row += gridDim.y) {
    const bf16* g = gate_up + row * 2 * inter;
    const bf16* u = g + inter;
    bf16* o = out + row * inter;
    if (vec) {
      float gv[8], uv[8];
      dev::unpack8(reinterpret_cast<const Bf16x8*>(g)[i], gv);
      dev::unpack8(reinterpret_cast<const Bf16x8*>(u)[i], uv);
#pragma unroll
      for (int j = 0; j < 8; ++j) gv[j] = dev::silu(gv[j]) * uv[j];
      reinterpret_cast<Bf16x8*>(o)[i] = dev::pack8(gv);
    } else {
      o[i] = dev::to_bf(dev::silu(dev::to_f(g[i])) * dev::to_f(u[i]));
    }
  }
}

int norm_threads(int64_t hidden) {
  const int64_t per = (hidden & 7) == 0 ? hidden / 8 : hidden;
  int t = 32;
  while (t < per && t < 1024) t *= 2;
  return t;
}

}  // namespace

Status launch_embedding(const int32_t* ids, int64_t n, const uint16_t* table, int64_t vocab, int64_t hidden,
                        uint16_t* out, Stream stream) {
  if (n == 0) return Status::ok();
  return launch("embedding_kernel", embedding_kernel, dim3(static_cast<unsigned>(n)), dim3(256), 0, stream, ids,
                reinterpret_cast<const bf16*>(table), vocab, hidden, reinterpret_cast<bf16*>(out));
}

Status launch_gather_rows(const void* x, const int32_t* rows, int64_t m, int64_t row_bytes, void* out,
                          Stream stream) {
  if (m == 0) return Status::ok();
  return launch("gather_rows_kernel", gather_rows_kernel, dim3(static_cast<unsigned>(m)), dim3(256), 0, stream,
                static_cast<const uint8_t*>(x), rows, row_bytes, static_cast<uint8_t*>(out));
}

Status launch_rms_norm(const uint16_t* x, const uint16_t* weight, int64_t n, int64_t hidden, float eps,
                       uint16_t* out, Stream stream) {
  if (n == 0) return Status::ok();
  return launch("rms_norm_kernel", rms_norm_kernel, dim3(static_cast<unsigned>(n)), dim3(norm_threads(hidden)), 0,
                stream, reinterpret_cast<const bf16*>(x), reinterpret_cast<const bf16*>(weight), hidden, eps,
                reinterpret_cast<bf16*>(out));
}

Status launch_swiglu(const uint16_t* gate_up, int64_t n, int64_t inter, uint16_t* out, Stream stream) {
  if (n == 0) return Status::ok();
  const int64_t per_row = (inter & 7) == 0 ? inter / 8 : inter;
  const dim3 grid(static_cast<unsigned>((per_row + 255) / 256), static_cast<unsigned>(std::min<int64_t>(n, 65535)));
  return launch("swiglu_kernel", swiglu_kernel, grid, dim3(256), 0, stream, reinterpret_cast<const bf16*>(gate_up), n,
                inter, reinterpret_cast<bf16*>(out));
}

}  // namespace kiln::runtime::cuda
