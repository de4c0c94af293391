#include "kiln/runtime/ops/moe.h"

#include <vector>

#include "kiln/runtime/backend/cpu/kernels_cpu.h"
#include "kiln/runtime/ops/dispatch.h"
#include "kiln/runtime/weights.h"

#if defined(KILN_WITH_CUDA) && __has_include("kiln/runtime/backend/cuda/moe_cuda.h")
#include "kiln/runtime/backend/cuda/moe_cuda.h"
#define KILN_HAVE_CUDA_OP 1
#endif

namespace kiln::runtime::ops {

namespace {

Status check_route(const DeviceContext& ctx, const Tensor& router_logits, const MoeRouting& r, const Tensor& topk_ids,
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
  return check_dim(topk_weights, "moe_route topk_weights", 1, r.top_k);
}

Status check_permute(const DeviceContext& ctx, const Tensor& topk_ids, int64_t num_experts, const Tensor& expert_start,
                     const Tensor& sorted_tokens, const Tensor& pair_row) {
  if (num_experts <= 0) return invalid_argument(str_cat("moe_permute: ", num_experts, " experts"));
  KILN_RETURN_IF_ERROR(check_tensor(topk_ids, "moe_permute topk_ids", DType::kI32, ctx.device, 2));
  const int64_t pairs = topk_ids.dim(0) * topk_ids.dim(1);
  KILN_RETURN_IF_ERROR(check_tensor(expert_start, "moe_permute expert_start", DType::kI32, ctx.device, 1));
  KILN_RETURN_IF_ERROR(check_dim(expert_start, "moe_permute expert_start", 0, num_experts + 1));
  KILN_RETURN_IF_ERROR(check_tensor(sorted_tokens, "moe_permute sorted_tokens", DType::kI32, ctx.device, 1));
  KILN_RETURN_IF_ERROR(check_dim(sorted_tokens, "moe_permute sorted_tokens", 0, pairs));
  KILN_RETURN_IF_ERROR(check_tensor(pair_row, "moe_permute pair_row", DType::kI32, ctx.device, 1));
  return check_dim(pair_row, "moe_permute pair_row", 0, pairs);
}

}  // namespace

Status moe_route(const DeviceContext& ctx, const Tensor& router_logits, const MoeRouting& r, const Tensor& topk_ids,
                 const Tensor& topk_weights) {
  KILN_RETURN_IF_ERROR(check_route(ctx, router_logits, r, topk_ids, topk_weights));
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
  KILN_RETURN_IF_ERROR(check_permute(ctx, topk_ids, num_experts, expert_start, sorted_tokens, pair_row));
  if (ctx.device.kind == DeviceKind::kCuda) {
#ifdef KILN_HAVE_CUDA_OP
    return cuda::moe_permute(ctx, topk_ids, num_experts, expert_start, sorted_tokens, pair_row);
#else
    return no_cuda_kernel("moe_permute");
#endif
  }
  return cpu::moe_permute(ctx, topk_ids, num_experts, expert_start, sorted_tokens, pair_row);
}

Status moe_route_permute(const DeviceContext& ctx, const Tensor& router_logits, const MoeRouting& r,
                         const Tensor& topk_ids, const Tensor& topk_weights, const Tensor& expert_start,
                         const Tensor& sorted_tokens, const Tensor& pair_row) {
  if (ctx.device.kind != DeviceKind::kCuda) {
    KILN_RETURN_IF_ERROR(moe_route(ctx, router_logits, r, topk_ids, topk_weights));
    return moe_permute(ctx, topk_ids, r.num_experts, expert_start, sorted_tokens, pair_row);
  }
  KILN_RETURN_IF_ERROR(check_route(ctx, router_logits, r, topk_ids, topk_weights));
  KILN_RETURN_IF_ERROR(check_permute(ctx, topk_ids, r.num_experts, expert_start, sorted_tokens, pair_row));
#ifdef KILN_HAVE_CUDA_OP
  return cuda::moe_route_permute(ctx, router_logits, r, topk_ids, topk_weights, expert_start, sorted_tokens, pair_row);
#else
  return no_cuda_kernel("moe_route_permute");
#endif
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

bool grouped_linear_supported(const DeviceContext& ctx, std::span<const LinearWeight> experts) {
#ifdef KILN_HAVE_CUDA_OP
  if (ctx.device.kind != DeviceKind::kCuda || experts.empty()) return false;
  const LinearWeight& first = experts.front();
  if (first.in_features <= 0 || first.in_features % 8 != 0 || first.out_features <= 0) return false;
  for (const LinearWeight& w : experts) {
    if (w.weight.empty() || w.weight.tensor().dtype() != DType::kBF16 || !(w.weight.tensor().device() == ctx.device) ||
        !w.bias.empty() || w.out_features != first.out_features || w.in_features != first.in_features)
      return false;
  }
  return true;
#else
  (void)ctx;
  (void)experts;
  return false;
#endif
}

Result<GroupedLinearWeight> group_linear_weights(const DeviceContext& ctx, std::span<const LinearWeight> experts) {
  if (!grouped_linear_supported(ctx, experts))
    return invalid_argument(str_cat("group_linear_weights: ", experts.size(),
                                    " expert weights are not plain bf16 [N, K] of one shape, K a multiple of 8, on CUDA"));
  GroupedLinearWeight g;
  g.num_experts = static_cast<int64_t>(experts.size());
  g.out_features = experts.front().out_features;
  g.in_features = experts.front().in_features;
  std::vector<int64_t> addr;
  for (const LinearWeight& w : experts) addr.push_back(static_cast<int64_t>(reinterpret_cast<uintptr_t>(w.weight.tensor().raw())));
  KILN_ASSIGN_OR_RETURN(g.table, Buffer::allocate(ctx.device, DType::kI64, {g.num_experts}));
  KILN_RETURN_IF_ERROR(copy_to_device(ctx, addr.data(), g.table.tensor()));
  KILN_RETURN_IF_ERROR(synchronize(ctx));  // `addr` dies here
  return g;
}

namespace {

Status check_grouped(const DeviceContext& ctx, const char* op, const Tensor& x, const Tensor& expert_start,
                     const GroupedLinearWeight& w, int64_t out_cols, const Tensor& out, const Tensor* x_row) {
  const DType dt = compute_dtype(ctx.device);
  if (w.table.empty() || !(w.table.tensor().device() == ctx.device))
    return invalid_argument(str_cat(op, ": the expert table is missing or on another device"));
  KILN_RETURN_IF_ERROR(check_tensor(x, str_cat(op, " x").c_str(), dt, ctx.device, 2));
  KILN_RETURN_IF_ERROR(check_dim(x, str_cat(op, " x").c_str(), 1, w.in_features));
  KILN_RETURN_IF_ERROR(check_tensor(expert_start, str_cat(op, " expert_start").c_str(), DType::kI32, ctx.device, 1));
  KILN_RETURN_IF_ERROR(check_dim(expert_start, str_cat(op, " expert_start").c_str(), 0, w.num_experts + 1));
  int64_t rows = x.dim(0);
  if (x_row != nullptr) {
    KILN_RETURN_IF_ERROR(check_tensor(*x_row, str_cat(op, " x_row").c_str(), DType::kI32, ctx.device, 1));
    rows = x_row->dim(0);
    if (rows > 0 && x.dim(0) == 0) return invalid_argument(str_cat(op, ": ", rows, " rows gathered from an empty x"));
  }
  KILN_RETURN_IF_ERROR(check_tensor(out, str_cat(op, " out").c_str(), dt, ctx.device, 2));
  KILN_RETURN_IF_ERROR(check_dim(out, str_cat(op, " out").c_str(), 0, rows));
  KILN_RETURN_IF_ERROR(check_dim(out, str_cat(op, " out").c_str(), 1, out_cols));
  if (x.raw() == out.raw() && x.numel() > 0) return invalid_argument(str_cat(op, ": out must not alias x"));
  return Status::ok();
}

}  // namespace

Status moe_grouped_linear_swiglu(const DeviceContext& ctx, const Tensor& x, const Tensor& expert_start,
                                 const GroupedLinearWeight& w, const Tensor& out, [[maybe_unused]] int64_t max_rows,
                                 const Tensor* x_row) {
  if (w.out_features % 2 != 0)
    return invalid_argument(str_cat("moe_grouped_linear_swiglu: ", w.out_features, " gate/up rows are odd"));
  KILN_RETURN_IF_ERROR(check_grouped(ctx, "moe_grouped_linear_swiglu", x, expert_start, w, w.out_features / 2, out, x_row));
  if (ctx.device.kind == DeviceKind::kCuda) {
#ifdef KILN_HAVE_CUDA_OP
    return cuda::moe_grouped_linear(ctx, x, expert_start, w, true, out, max_rows, cuda::MoeGemmPath::kAuto, x_row);
#else
    return no_cuda_kernel("moe_grouped_linear_swiglu");
#endif
  }
  return unimplemented("moe_grouped_linear_swiglu: CUDA only (the CPU runs each expert's linear_swiglu)");
}

Status moe_grouped_linear(const DeviceContext& ctx, const Tensor& x, const Tensor& expert_start,
                          const GroupedLinearWeight& w, const Tensor& out, [[maybe_unused]] int64_t max_rows,
                          const Tensor* x_row) {
  KILN_RETURN_IF_ERROR(check_grouped(ctx, "moe_grouped_linear", x, expert_start, w, w.out_features, out, x_row));
  if (ctx.device.kind == DeviceKind::kCuda) {
#ifdef KILN_HAVE_CUDA_OP
    return cuda::moe_grouped_linear(ctx, x, expert_start, w, false, out, max_rows, cuda::MoeGemmPath::kAuto, x_row);
#else
    return no_cuda_kernel("moe_grouped_linear");
#endif
  }
  return unimplemented("moe_grouped_linear: CUDA only (the CPU runs each expert's linear)");
}

}  // namespace kiln::runtime::ops
