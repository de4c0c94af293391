// CUDA kernel of ops::linear (same contract; arguments are checked by runtime/ops/linear.cpp):
// bf16 x and weight, f32 accumulation, bf16 or f32 out.
#pragma once

#include "kiln/runtime/ops/linear.h"

namespace kiln::runtime::cuda {
Status linear(const DeviceContext& ctx, const Tensor& x, const ops::LinearWeight& w, const Tensor& out);
}  // namespace kiln::runtime::cuda
