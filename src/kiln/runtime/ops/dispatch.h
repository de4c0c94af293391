// Internal to runtime/ops/*.cpp: how a checked op reaches its backend.
//
// Each op's CUDA kernels are declared, in namespace kiln::runtime::cuda with the same signature as
// the CPU kernel, in kiln/runtime/backend/cuda/<op>_cuda.h (a header that includes no CUDA
// header). An op whose CUDA header is not there yet answers kUnimplemented on a CUDA context.
#pragma once

#include "kiln/core/str.h"
#include "kiln/runtime/device_context.h"
#include "kiln/runtime/ops/linear.h"

namespace kiln::runtime::ops {

inline Status no_cuda_kernel(const char* op) {
  return unimplemented(str_cat(op, ": no CUDA kernel in this build of kiln"));
}

// The checks of a PreNorm for the input x of `op` (linear.cpp).
Status check_pre_norm(const DeviceContext& ctx, const char* op, const Tensor& x, const PreNorm& norm);

// The checks of a gated activation `op` (swiglu, geglu): gate_up [n, 2 * d] and out [n, d], both in
// the device's compute dtype (swiglu.cpp).
Status check_gated_activation(const DeviceContext& ctx, const char* op, const Tensor& gate_up, const Tensor& out);

}  // namespace kiln::runtime::ops
