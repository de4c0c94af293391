// CUDA kernel of ops::paged_attention (same contract; arguments are checked by
// runtime/ops/paged_attention.cpp). Split-KV partials live in per-thread scratch memory, grown on
// first use: run each shape once before capturing a CUDA graph.
#pragma once

#include "kiln/runtime/ops/paged_attention.h"

namespace kiln::runtime::cuda {
Status paged_attention(const DeviceContext& ctx, const Tensor& qkv, const Tensor& kv_cache,
                       const Tensor& query_start, const Tensor& kv_len, const Tensor& block_start,
                       const Tensor& block_ids, const ops::AttentionParams& params, const Tensor& out);
}  // namespace kiln::runtime::cuda
