#include "kiln/runtime/ops/moe.h"

#include "kiln/runtime/backend/cpu/kernels_cpu.h"
#include "kiln/runtime/ops/dispatch.h"
#include "kiln/runtime/weights.h"

#if defined(KILN_WITH_CUDA) && __has_include("kiln/runtime/backend/cuda/moe_cuda.h")
#include "kiln/runtime/backend/cuda/moe_cuda.h"
#define KILN_HAVE_CUDA_OP 1
#endif

namespace kiln::runtime::ops {

Status moe_route(const DeviceContext& ctx, const Tensor& router_logits, const MoeRouting& r, const Tensor& topk_ids,
                 const Tensor& topk_weights) {
  if (r.num_experts <= 0 || r.top_k <= 0 || r.top_k > r.num_experts)
    return invalid_argument(str_cat("moe_route: top-", r.top_k, " of ", r.num_experts, " experts"));
  KILN_RETURN_IF_ERROR(check_tensor(router_logits, "moe_route router_logits", compute_dtype(ctx.device), ctx.device, 2));
  KILN_RETURN_IF_ERROR(check_dim(router_logits, "moe_route router_logits", 1, r.num_experts));
  const int64_t n = router_logits.dim(0);
  KILN_RETURN_IF_ERROR(check_tensor(topk_ids, "moe_route topk_ids", DType::kI32, ctx.device, 2));
  KILN_RETURN_IF_ERROR(check_dim(topk_ids, "moe_route topk_ids", 0, n));
  KILN_RETURN_IF_ERROR(check_dim(topk_ids, "moe_route topk_ids", 1, r.top_k));
  KILN_RETURN_IF_ERROR(check_tensor(topk_weights, "moe_route topk_weights", DType::kF32, ctx.device, 2));
  KILN_RETURN_IF_ERROR(check_dim(topk_weights, "moe_route topk_weights", 0, n));
  KILN_RETURN_IF_ERROR(check_dim(topk_weights, "moe_route topk_weights", 1, r.top_k));
  if (ctx.device.kind == DeviceKind::kCuda) {
#ifdef KILN_HAVE_CUDA_OP
    return cuda::moe_route(ctx, router_logits, r, topk_ids, topk_weights);
#else
    return no_cuda_kernel("moe_route");
#endif
  }
  return cpu::moe_route(ctx, router_logits, r, topk_ids, topk_weights);
}

Status moe_permute(const DeviceContext& ctx, const Tensor& topk_ids, int64_t num_experts, const Tensor& expert_start,
                   const Tensor& sorted_tokens, const Tensor& pair_row) {
  if (num_experts <= 0) return invalid_argument(str_cat("moe_permute: ", num_experts, " experts"));
  KILN_RETURN_IF_ERROR(check_tensor(topk_ids, "moe_permute topk_ids", DType::kI32, ctx.device, 2));
  const int64_t pairs = topk_ids.dim(0) * topk_ids.dim(1);
  KILN_RETURN_IF_ERROR(check_tensor(expert_start, "moe_permute expert_start", DType::kI32, ctx.device, 1));
  KILN_RETURN_IF_ERROR(check_dim(expert_start, "moe_permute expert_start", 0, num_experts + 1));
  KILN_RETURN_IF_ERROR(check_tensor(sorted_tokens, "moe_permute sorted_tokens", DType::kI32, ctx.device, 1));
  KILN_RETURN_IF_ERROR(check_dim(sorted_tokens, "moe_permute sorted_tokens", 0, pairs));
  KILN_RETURN_IF_ERROR(check_tensor(pair_row, "moe_permute pair_row", DType::kI32, ctx.device, 1));
  KILN_RETURN_IF_ERROR(check_dim(pair_row, "moe_permute pair_row", 0, pairs));
  if (ctx.device.kind == DeviceKind::kCuda) {
#ifdef KILN_HAVE_CUDA_OP
    return cuda::moe_permute(ctx, topk_ids, num_experts, expert_start, sorted_tokens, pair_row);
#else
    return no_cuda_kernel("moe_permute");
#endif
  }
  return cpu::moe_permute(ctx, topk_ids, num_experts, expert_start, sorted_tokens, pair_row);
}

Status moe_combine(const DeviceContext& ctx, const Tensor& expert_out, const Tensor& pair_row,
                   const Tensor& topk_weights, const Tensor& out) {
  const DType dt = compute_dtype(ctx.device);
  KILN_RETURN_IF_ERROR(check_tensor(topk_weights, "moe_combine topk_weights", DType::kF32, ctx.device, 2));
  const int64_t n = topk_weights.dim(0), k = topk_weights.dim(1);
  KILN_RETURN_IF_ERROR(check_tensor(out, "moe_combine out", dt, ctx.device, 2));
  KILN_RETURN_IF_ERROR(check_dim(out, "moe_combine out", 0, n));
  KILN_RETURN_IF_ERROR(check_tensor(expert_out, "moe_combine expert_out", dt, ctx.device, 2));
  KILN_RETURN_IF_ERROR(check_dim(expert_out, "moe_combine expert_out", 0, n * k));
  KILN_RETURN_IF_ERROR(check_dim(expert_out, "moe_combine expert_out", 1, out.dim(1)));
  KILN_RETURN_IF_ERROR(check_tensor(pair_row, "moe_combine pair_row", DType::kI32, ctx.device, 1));
  KILN_RETURN_IF_ERROR(check_dim(pair_row, "moe_combine pair_row", 0, n * k));
  if (ctx.device.kind == DeviceKind::kCuda) {
#ifdef KILN_HAVE_CUDA_OP
    return cuda::moe_combine(ctx, expert_out, pair_row, topk_weights, out);
#else
    return no_cuda_kernel("moe_combine");
#endif
  }
  return cpu::moe_combine(ctx, expert_out, pair_row, topk_weights, out);
}

}  // namespace kiln::runtime::ops
