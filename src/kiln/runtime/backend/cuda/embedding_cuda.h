// CUDA kernel of ops::embedding (same contract; arguments are checked by runtime/ops/embedding.cpp).
#pragma once

#include "kiln/runtime/device_context.h"

namespace kiln::runtime::cuda {
Status embedding(const DeviceContext& ctx, const Tensor& token_ids, const Tensor& table, const Tensor& out);
}  // namespace kiln::runtime::cuda
