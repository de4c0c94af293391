// CUDA kernel of ops::rms_norm (same contract; arguments are checked by runtime/ops/rms_norm.cpp).
#pragma once

#include "kiln/runtime/device_context.h"

namespace kiln::runtime::cuda {
Status rms_norm(const DeviceContext& ctx, const Tensor& x, const Tensor& weight, float eps, const Tensor& out);
}  // namespace kiln::runtime::cuda
