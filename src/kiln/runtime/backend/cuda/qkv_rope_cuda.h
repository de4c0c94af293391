// CUDA kernel of ops::qkv_rope_cache (same contract; arguments are checked by runtime/ops/qkv_rope.cpp).
#pragma once

#include "kiln/runtime/ops/qkv_rope.h"

namespace kiln::runtime::cuda {
Status qkv_rope_cache(const DeviceContext& ctx, const Tensor& qkv, const Tensor& positions,
                      const Tensor& slot_mapping, const Tensor& q_norm, const Tensor& k_norm,
                      const Tensor& rope_table, const ops::QkvParams& params, const Tensor& kv_cache);
}  // namespace kiln::runtime::cuda
