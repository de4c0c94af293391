// RMSNorm, alone and fused with the residual add that precedes it in a pre-norm decoder.
//
// As transformers computes it: y = weight * (x / sqrt(mean(x^2) + eps)), the mean and rsqrt in f32.
#pragma once

#include "kiln/runtime/device_context.h"
#include "kiln/runtime/tensor.h"

namespace kiln::runtime::ops {

// x: [n, hidden]; weight: [hidden]; out: [n, hidden] (may alias x).
Status rms_norm(const DeviceContext& ctx, const Tensor& x, const Tensor& weight, float eps,
                const Tensor& out);

// residual += x (in place), then out = rms_norm(residual) * weight.
// x, residual, out: [n, hidden]; weight: [hidden]. out may alias x, never residual.
Status add_rms_norm(const DeviceContext& ctx, const Tensor& x, const Tensor& residual,
                    const Tensor& weight, float eps, const Tensor& out);

}  // namespace kiln::runtime::ops
