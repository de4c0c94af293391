// CUDA kernels of ops::rms_norm and ops::add_rms_norm (same contracts; arguments are checked by
// runtime/ops/rms_norm.cpp).
#pragma once

#include "kiln/runtime/device_context.h"

namespace kiln::runtime::cuda {
Status rms_norm(const DeviceContext& ctx, const Tensor& x, const Tensor& weight, float eps, const Tensor& out);
Status add_rms_norm(const DeviceContext& ctx, const Tensor& x, const Tensor& residual, const Tensor& weight,
                    float eps, const Tensor& out);
}  // namespace kiln::runtime::cuda
