// SwiGLU activation of a fused gate/up projection: out = silu(gate) * up.
#pragma once

#include "kiln/runtime/device_context.h"
#include "kiln/runtime/ops/linear.h"
#include "kiln/runtime/tensor.h"

namespace kiln::runtime::ops {

// gate_up: [n, 2 * I], gate in columns [0, I), up in [I, 2I); out: [n, I].
Status swiglu(const DeviceContext& ctx, const Tensor& gate_up, const Tensor& out);

// out = swiglu(x · wᵀ) for a fused [gate; up] weight of 2 * I rows: linear then swiglu, which a
// backend may run as one kernel (CUDA does at decode batch sizes). x: [n, K]; gate_up: [n, 2 * I],
// working space for the product (its contents afterwards are unspecified); out: [n, I].
Status linear_swiglu(const DeviceContext& ctx, const Tensor& x, const LinearWeight& w, const Tensor& gate_up,
                     const Tensor& out);

// out = swiglu(rms_norm(x) · wᵀ): ops::rms_norm into norm.normed, then linear_swiglu; one kernel on
// CUDA at decode batch sizes.
Status norm_linear_swiglu(const DeviceContext& ctx, const Tensor& x, const PreNorm& norm, const LinearWeight& w,
                          const Tensor& gate_up, const Tensor& out);

}  // namespace kiln::runtime::ops
