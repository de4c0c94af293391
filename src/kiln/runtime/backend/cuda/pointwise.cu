// The element-wise ops of Gemma 3: GeGLU, scale, logit soft-capping and the residual add. f32 math
// on bf16 activations, as the CPU reference (backend/cpu/pointwise_cpu.cpp).
#include <algorithm>

#include "kiln/runtime/backend/cuda/cuda_util.cuh"
#include "kiln/runtime/backend/cuda/kernels.h"

namespace kiln::runtime::cuda {
namespace {

using dev::bf16;

// transformers' gelu_pytorch_tanh, with the accurate tanhf (not an intrinsic) so that it tracks
// the CPU reference to f32 rounding.
__device__ __forceinline__ float gelu_tanh(float x) {
  constexpr float kSqrt2OverPi = 0.7978845608028654f;
  return 0.5f * x * (1.0f + tanhf(kSqrt2OverPi * (x + 0.044715f * x * x * x)));
}

__global__ void geglu_kernel(const bf16* __restrict__ gate_up, int64_t n, int64_t inter, bf16* __restrict__ out) {
  dev::pdl_begin();
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= inter) return;
  for (int64_t row = blockIdx.y; row < n; row += gridDim.y) {
    const bf16* g = gate_up + row * 2 * inter;
    out[row * inter + i] = dev::to_bf(gelu_tanh(dev::to_f(g[i])) * dev::to_f(g[inter + i]));
  }
}

__global__ void scale_kernel(bf16* x, int64_t count, float s) {
  dev::pdl_begin();
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < count;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    x[i] = dev::to_bf(dev::to_f(x[i]) * s);
}

__global__ void tanh_softcap_kernel(float* x, int64_t count, float cap) {
  dev::pdl_begin();
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < count;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    x[i] = cap * tanhf(x[i] / cap);
}

__global__ void add_into_kernel(const bf16* __restrict__ x, bf16* __restrict__ y, int64_t count) {
  dev::pdl_begin();
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < count;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    y[i] = dev::to_bf(dev::to_f(y[i]) + dev::to_f(x[i]));
}

unsigned flat_blocks(int64_t count) {
  return static_cast<unsigned>(std::min<int64_t>((count + 255) / 256, 65535));
}

}  // namespace

Status launch_geglu(const uint16_t* gate_up, int64_t n, int64_t inter, uint16_t* out, Stream stream) {
  if (n == 0 || inter == 0) return Status::ok();
  const dim3 grid(static_cast<unsigned>((inter + 255) / 256), static_cast<unsigned>(std::min<int64_t>(n, 65535)));
  return launch("geglu_kernel", geglu_kernel, grid, dim3(256), 0, stream, reinterpret_cast<const bf16*>(gate_up), n,
                inter, reinterpret_cast<bf16*>(out));
}

Status launch_scale(uint16_t* x, int64_t count, float s, Stream stream) {
  if (count == 0) return Status::ok();
  return launch("scale_kernel", scale_kernel, dim3(flat_blocks(count)), dim3(256), 0, stream, reinterpret_cast<bf16*>(x),
                count, s);
}

Status launch_tanh_softcap(float* x, int64_t count, float cap, Stream stream) {
  if (count == 0) return Status::ok();
  return launch("tanh_softcap_kernel", tanh_softcap_kernel, dim3(flat_blocks(count)), dim3(256), 0, stream, x, count,
                cap);
}

Status launch_add_into(const uint16_t* x, uint16_t* y, int64_t count, Stream stream) {
  if (count == 0) return Status::ok();
  return launch("add_into_kernel", add_into_kernel, dim3(flat_blocks(count)), dim3(256), 0, stream,
                reinterpret_cast<const bf16*>(x), reinterpret_cast<bf16*>(y), count);
}

}  // namespace kiln::runtime::cuda
