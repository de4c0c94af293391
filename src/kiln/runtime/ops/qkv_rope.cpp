#include "kiln/runtime/ops/qkv_rope.h"

#include "kiln/runtime/backend/cpu/kernels_cpu.h"
#include "kiln/runtime/ops/dispatch.h"
#include "kiln/runtime/weights.h"

#if defined(KILN_WITH_CUDA) && __has_include("kiln/runtime/backend/cuda/qkv_rope_cuda.h")
#include "kiln/runtime/backend/cuda/qkv_rope_cuda.h"
#define KILN_HAVE_CUDA_OP 1
#endif

namespace kiln::runtime::ops {

Status qkv_rope_cache(const DeviceContext& ctx, const Tensor& qkv, const Tensor& positions,
                      const Tensor& slot_mapping, const Tensor& q_norm, const Tensor& k_norm,
                      const Tensor& rope_table, const QkvParams& p, const Tensor& kv_cache) {
  const DType dt = compute_dtype(ctx.device);
  if (p.num_heads <= 0 || p.num_kv_heads <= 0 || p.head_dim <= 0 || p.head_dim % 2 != 0)
    return invalid_argument(str_cat("qkv_rope_cache: bad head geometry heads=", p.num_heads, " kv_heads=",
                                    p.num_kv_heads, " head_dim=", p.head_dim));
  KILN_RETURN_IF_ERROR(check_tensor(qkv, "qkv_rope_cache qkv", dt, ctx.device, 2));
  KILN_RETURN_IF_ERROR(check_dim(qkv, "qkv_rope_cache qkv", 1, (p.num_heads + 2 * p.num_kv_heads) * p.head_dim));
  const int64_t n = qkv.dim(0);
  KILN_RETURN_IF_ERROR(check_tensor(positions, "qkv_rope_cache positions", DType::kI32, ctx.device, 1));
  KILN_RETURN_IF_ERROR(check_dim(positions, "qkv_rope_cache positions", 0, n));
  KILN_RETURN_IF_ERROR(check_tensor(slot_mapping, "qkv_rope_cache slot_mapping", DType::kI32, ctx.device, 1));
  KILN_RETURN_IF_ERROR(check_dim(slot_mapping, "qkv_rope_cache slot_mapping", 0, n));
  if (q_norm.empty() != k_norm.empty()) return invalid_argument("qkv_rope_cache: q_norm and k_norm must come together");
  if (!q_norm.empty()) {
    KILN_RETURN_IF_ERROR(check_tensor(q_norm, "qkv_rope_cache q_norm", dt, ctx.device, 1));
    KILN_RETURN_IF_ERROR(check_dim(q_norm, "qkv_rope_cache q_norm", 0, p.head_dim));
    KILN_RETURN_IF_ERROR(check_tensor(k_norm, "qkv_rope_cache k_norm", dt, ctx.device, 1));
    KILN_RETURN_IF_ERROR(check_dim(k_norm, "qkv_rope_cache k_norm", 0, p.head_dim));
  }
  KILN_RETURN_IF_ERROR(check_tensor(rope_table, "qkv_rope_cache rope_table", DType::kF32, ctx.device, 2));
  KILN_RETURN_IF_ERROR(check_dim(rope_table, "qkv_rope_cache rope_table", 1, p.head_dim));
  KILN_RETURN_IF_ERROR(check_tensor(kv_cache, "qkv_rope_cache kv_cache", kv_cache.dtype(), ctx.device, 5));
  KILN_RETURN_IF_ERROR(check_dim(kv_cache, "qkv_rope_cache kv_cache", 1, 2));
  KILN_RETURN_IF_ERROR(check_dim(kv_cache, "qkv_rope_cache kv_cache", 3, p.num_kv_heads));
  KILN_RETURN_IF_ERROR(check_dim(kv_cache, "qkv_rope_cache kv_cache", 4, p.head_dim));
  if (ctx.device.kind == DeviceKind::kCuda) {
#ifdef KILN_HAVE_CUDA_OP
    return cuda::qkv_rope_cache(ctx, qkv, positions, slot_mapping, q_norm, k_norm, rope_table, p, kv_cache);
#else
    return no_cuda_kernel("qkv_rope_cache");
#endif
  }
  KILN_RETURN_IF_ERROR(check_tensor(kv_cache, "qkv_rope_cache kv_cache", DType::kF32, ctx.device, 5));
  return cpu::qkv_rope_cache(ctx, qkv, positions, slot_mapping, q_norm, k_norm, rope_table, p, kv_cache);
}

}  // namespace kiln::runtime::ops
