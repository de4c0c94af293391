// CUDA kernel of ops::gather_rows (same contract; arguments are checked by runtime/ops/gather_rows.cpp).
#pragma once

#include "kiln/runtime/device_context.h"

namespace kiln::runtime::cuda {
Status gather_rows(const DeviceContext& ctx, const Tensor& x, const Tensor& rows, const Tensor& out);
}  // namespace kiln::runtime::cuda
