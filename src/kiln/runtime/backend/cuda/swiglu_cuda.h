// CUDA kernel of ops::swiglu (same contract; arguments are checked by runtime/ops/swiglu.cpp).
#pragma once

#include "kiln/runtime/device_context.h"

namespace kiln::runtime::cuda {
Status swiglu(const DeviceContext& ctx, const Tensor& gate_up, const Tensor& out);
}  // namespace kiln::runtime::cuda
