// CUDA kernel of ops::swiglu (same contract; arguments are checked by runtime/ops/swiglu.cpp).
#pragma once

#include "kiln/runtime/device_context.h"
#include "kiln/runtime/ops/linear.h"

namespace kiln::runtime::cuda {
Status swiglu(const DeviceContext& ctx, const Tensor& gate_up, const Tensor& out);

// Whether ops::linear_swiglu (norm null) or ops::norm_linear_swiglu runs as one kernel on these
// operands (decode batch sizes), and that kernel: out = swiglu(x · wᵀ), x RMS-normalised first when
// `norm` is given, without the normalised rows or the [n, 2I] product in memory.
bool linear_swiglu_fused(const DeviceContext& ctx, const Tensor& x, const ops::LinearWeight& w, const Tensor& out,
                         const ops::PreNorm* norm);
Status linear_swiglu(const DeviceContext& ctx, const Tensor& x, const ops::LinearWeight& w, const Tensor& out,
                     const ops::PreNorm* norm);
}  // namespace kiln::runtime::cuda
