// Device-side helpers shared by the kernels (bf16 vectors, warp and block reductions), and the
// host error checks. Included only by .cu files of this folder.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp8.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "kiln/runtime/backend/cuda/cuda_status.h"

namespace kiln::runtime::cuda {

// Programmatic dependent launch (Hopper): a kernel may be launched while the one before it on the
// stream is still running; it waits in dev::pdl_begin() until that one has finished and its
// writes are visible, so only launch latency and block scheduling overlap. Off before sm_90 and
// with KILN_CUDA_PDL=0.
inline bool pdl_enabled() {
  static const bool env_on = [] {
    const char* v = std::getenv("KILN_CUDA_PDL");
    return v == nullptr || std::strcmp(v, "0") != 0;
  }();
  static std::atomic<int> by_device[64] = {};  // 0 unknown, 1 off, 2 on
  if (!env_on) return false;
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess || device < 0 || device >= 64) return false;
  int state = by_device[device].load();
  if (state == 0) {
    int major = 0;
    cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device);
    state = major >= 9 ? 2 : 1;
    by_device[device].store(state);
  }
  return state == 2;
}

// Launches `kernel` on `stream`, with programmatic dependent launch where enabled; every kernel
// launched this way must call dev::pdl_begin() before touching global memory.
template <typename... Params, typename... Args>
Status launch(const char* name, void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
              Args... args) {
  cudaLaunchConfig_t cfg{};
  cfg.gridDim = grid;
  cfg.blockDim = block;
  cfg.dynamicSmemBytes = smem;
  cfg.stream = stream;
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[0].val.programmaticStreamSerializationAllowed = 1;
  cfg.attrs = attr;
  cfg.numAttrs = pdl_enabled() ? 1 : 0;
  return cuda_status(cudaLaunchKernelEx(&cfg, kernel, static_cast<Params>(args)...), name);
}

}  // namespace kiln::runtime::cuda

namespace kiln::runtime::cuda::dev {

// Grids up to this many blocks let the next kernel launch as soon as they start; larger ones let
// it launch as their blocks exit, so that its waiting blocks never take the slots of their later
// waves. (Measured on an H100: launching early gained 3% to 13% at decode batch 1 and cost 4% at
// batch 64, where several kernels run in more than one wave.)
constexpr unsigned kEarlyTriggerBlocks = 264;

// Waits for the previous kernel of the stream (see launch()), then lets the next one launch.
__device__ __forceinline__ void pdl_begin() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
  if (gridDim.x * gridDim.y * gridDim.z <= kEarlyTriggerBlocks) {
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
  }
#endif
}


using bf16 = __nv_bfloat16;

__device__ __forceinline__ float to_f(bf16 x) { return __bfloat162float(x); }
__device__ __forceinline__ bf16 to_bf(float x) { return __float2bfloat16_rn(x); }
__device__ __forceinline__ float silu(float g) { return g / (1.0f + __expf(-g)); }

// 8 bf16 in one 16-byte word, for vector loads.
struct alignas(16) Bf16x8 {
  __nv_bfloat162 h[4];
};

__device__ __forceinline__ void unpack8(const Bf16x8& v, float* out) {
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    float2 f = __bfloat1622float2(v.h[i]);
    out[2 * i] = f.x;
    out[2 * i + 1] = f.y;
  }
}

__device__ __forceinline__ Bf16x8 pack8(const float* in) {
  Bf16x8 v;
#pragma unroll
  for (int i = 0; i < 4; ++i) v.h[i] = __floats2bfloat162_rn(in[2 * i], in[2 * i + 1]);
  return v;
}

// 16 e4m3 codes (one 16-byte load) to f32, through the hardware's paired e4m3 -> f16 conversion
// (exact: every e4m3 value is an f16 value).
__device__ __forceinline__ void unpack16_e4m3(const uint4& q, float* out) {
  const uint32_t words[4] = {q.x, q.y, q.z, q.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const auto pair = static_cast<__nv_fp8x2_storage_t>((words[i] >> (16 * h)) & 0xffffu);
      const float2 f = __half22float2(__half2(__nv_cvt_fp8x2_to_halfraw2(pair, __NV_E4M3)));
      out[4 * i + 2 * h] = f.x;
      out[4 * i + 2 * h + 1] = f.y;
    }
  }
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Sum over the block; `scratch` holds at least 32 floats. Every thread gets the result.
__device__ __forceinline__ float block_sum(float v, float* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int nwarps = (blockDim.x + 31) >> 5;
  v = warp_sum(v);
  __syncthreads();  // scratch may still be read by a previous call
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < nwarps ? scratch[lane] : 0.0f;
  return warp_sum(v);
}

__device__ __forceinline__ float block_max(float v, float* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int nwarps = (blockDim.x + 31) >> 5;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < nwarps ? scratch[lane] : -INFINITY;
  return warp_max(v);
}

}  // namespace kiln::runtime::cuda::dev
