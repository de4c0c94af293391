#include "kiln/runtime/ops/paged_attention.h"

#include "kiln/runtime/backend/cpu/kernels_cpu.h"
#include "kiln/runtime/ops/dispatch.h"
#include "kiln/runtime/weights.h"

#if defined(KILN_WITH_CUDA) && __has_include("kiln/runtime/backend/cuda/paged_attention_cuda.h")
#include "kiln/runtime/backend/cuda/paged_attention_cuda.h"
#define KILN_HAVE_CUDA_OP 1
#endif

namespace kiln::runtime::ops {

Status paged_attention(const DeviceContext& ctx, const Tensor& qkv, const Tensor& kv_cache,
                       const Tensor& query_start, const Tensor& kv_len, const Tensor& block_start,
                       const Tensor& block_ids, const AttentionParams& p, const Tensor& out) {
  const DType dt = compute_dtype(ctx.device);
  if (p.num_heads <= 0 || p.num_kv_heads <= 0 || p.head_dim <= 0 || p.num_heads % p.num_kv_heads != 0)
    return invalid_argument(str_cat("paged_attention: bad head geometry heads=", p.num_heads, " kv_heads=",
                                    p.num_kv_heads, " head_dim=", p.head_dim));
  if (p.sliding_window < 0) return invalid_argument(str_cat("paged_attention: sliding_window ", p.sliding_window, " < 0"));
  KILN_RETURN_IF_ERROR(check_tensor(qkv, "paged_attention qkv", dt, ctx.device, 2));
  KILN_RETURN_IF_ERROR(check_dim(qkv, "paged_attention qkv", 1, (p.num_heads + 2 * p.num_kv_heads) * p.head_dim));
  KILN_RETURN_IF_ERROR(check_tensor(kv_cache, "paged_attention kv_cache", kv_cache.dtype(), ctx.device, 5));
  KILN_RETURN_IF_ERROR(check_dim(kv_cache, "paged_attention kv_cache", 1, 2));
  KILN_RETURN_IF_ERROR(check_dim(kv_cache, "paged_attention kv_cache", 3, p.num_kv_heads));
  KILN_RETURN_IF_ERROR(check_dim(kv_cache, "paged_attention kv_cache", 4, p.head_dim));
  KILN_RETURN_IF_ERROR(check_tensor(kv_len, "paged_attention kv_len", DType::kI32, ctx.device, 1));
  const int64_t s = kv_len.dim(0);
  KILN_RETURN_IF_ERROR(check_tensor(query_start, "paged_attention query_start", DType::kI32, ctx.device, 1));
  KILN_RETURN_IF_ERROR(check_dim(query_start, "paged_attention query_start", 0, s + 1));
  KILN_RETURN_IF_ERROR(check_tensor(block_start, "paged_attention block_start", DType::kI32, ctx.device, 1));
  KILN_RETURN_IF_ERROR(check_dim(block_start, "paged_attention block_start", 0, s + 1));
  KILN_RETURN_IF_ERROR(check_tensor(block_ids, "paged_attention block_ids", DType::kI32, ctx.device, 1));
  KILN_RETURN_IF_ERROR(check_tensor(out, "paged_attention out", dt, ctx.device, 2));
  KILN_RETURN_IF_ERROR(check_dim(out, "paged_attention out", 0, qkv.dim(0)));
  KILN_RETURN_IF_ERROR(check_dim(out, "paged_attention out", 1, p.num_heads * p.head_dim));
  if (ctx.device.kind == DeviceKind::kCuda) {
#ifdef KILN_HAVE_CUDA_OP
    return cuda::paged_attention(ctx, qkv, kv_cache, query_start, kv_len, block_start, block_ids, p, out);
#else
    return no_cuda_kernel("paged_attention");
#endif
  }
  KILN_RETURN_IF_ERROR(check_tensor(kv_cache, "paged_attention kv_cache", DType::kF32, ctx.device, 5));
  return cpu::paged_attention(ctx, qkv, kv_cache, query_start, kv_len, block_start, block_ids, p, out);
}

}  // namespace kiln::runtime::ops
