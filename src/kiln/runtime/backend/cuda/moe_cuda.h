// CUDA kernels of ops/moe.h (same contracts; arguments are checked by runtime/ops/moe.cpp), except
// that expert ids and rows out of range are clamped rather than reported (no host round trip).
#pragma once

#include "kiln/runtime/backend/cuda/kernels.h"
#include "kiln/runtime/device_context.h"
#include "kiln/runtime/ops/moe.h"

namespace kiln::runtime::cuda {
Status moe_route(const DeviceContext& ctx, const Tensor& router_logits, const ops::MoeRouting& routing,
                 const Tensor& topk_ids, const Tensor& topk_weights);
Status moe_permute(const DeviceContext& ctx, const Tensor& topk_ids, int64_t num_experts, const Tensor& expert_start,
                   const Tensor& sorted_tokens, const Tensor& pair_row);
Status moe_route_permute(const DeviceContext& ctx, const Tensor& router_logits, const ops::MoeRouting& routing,
                         const Tensor& topk_ids, const Tensor& topk_weights, const Tensor& expert_start,
                         const Tensor& sorted_tokens, const Tensor& pair_row);
Status moe_combine(const DeviceContext& ctx, const Tensor& expert_out, const Tensor& pair_row,
                   const Tensor& topk_weights, const Tensor& out);
// ops::moe_grouped_linear_swiglu (swiglu set) and ops::moe_grouped_linear: one launch over every
// expert (moe_gemm.cu); `path` picks the kernel (kernels.h; the tests run both); x_row as the ops'.
Status moe_grouped_linear(const DeviceContext& ctx, const Tensor& x, const Tensor& expert_start,
                          const ops::GroupedLinearWeight& w, bool swiglu, const Tensor& out, int64_t max_rows,
                          MoeGemmPath path = MoeGemmPath::kAuto, const Tensor* x_row = nullptr);
}  // namespace kiln::runtime::cuda
