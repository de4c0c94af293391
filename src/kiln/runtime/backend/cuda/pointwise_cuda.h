// CUDA kernels of ops/pointwise.h (same contracts; arguments are checked by runtime/ops/pointwise.cpp).
#pragma once

#include "kiln/runtime/device_context.h"

namespace kiln::runtime::cuda {
Status geglu(const DeviceContext& ctx, const Tensor& gate_up, const Tensor& out);
Status scale(const DeviceContext& ctx, const Tensor& x, float s);
Status tanh_softcap(const DeviceContext& ctx, const Tensor& x, float cap);
Status add_into(const DeviceContext& ctx, const Tensor& x, const Tensor& y);
}  // namespace kiln::runtime::cuda
