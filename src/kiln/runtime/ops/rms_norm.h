// RMSNorm (the pre-norm projections fuse it: ops::norm_linear, ops::norm_linear_swiglu).
//
// As transformers computes it: y = weight * (x / sqrt(mean(x^2) + eps)), the mean and rsqrt in f32.
#pragma once

#include "kiln/runtime/device_context.h"
#include "kiln/runtime/tensor.h"

namespace kiln::runtime::ops {

// x: [n, hidden]; weight: [hidden]; out: [n, hidden] (may alias x).
Status rms_norm(const DeviceContext& ctx, const Tensor& x, const Tensor& weight, float eps,
                const Tensor& out);

}  // namespace kiln::runtime::ops
