#include "kiln/runtime/ops/embedding.h"

#include "kiln/runtime/backend/cpu/kernels_cpu.h"
#include "kiln/runtime/ops/dispatch.h"
#include "kiln/runtime/weights.h"

#if defined(KILN_WITH_CUDA) && __has_include("kiln/runtime/backend/cuda/embedding_cuda.h")
#include "kiln/runtime/backend/cuda/embedding_cuda.h"
#define KILN_HAVE_CUDA_OP 1
#endif

namespace kiln::runtime::ops {

Status embedding(const DeviceContext& ctx, const Tensor& token_ids, const Tensor& table, const Tensor& out) {
  const DType dt = compute_dtype(ctx.device);
  KILN_RETURN_IF_ERROR(check_tensor(token_ids, "embedding token_ids", DType::kI32, ctx.device, 1));
  // The CPU also gathers from a bf16 table (kept so when the weights are not f32), widening rows.
  const bool cpu_bf16 = ctx.device.kind == DeviceKind::kCpu && table.dtype() == DType::kBF16;
  KILN_RETURN_IF_ERROR(check_tensor(table, "embedding table", cpu_bf16 ? DType::kBF16 : dt, ctx.device, 2));
  KILN_RETURN_IF_ERROR(check_tensor(out, "embedding out", dt, ctx.device, 2));
  KILN_RETURN_IF_ERROR(check_dim(out, "embedding out", 0, token_ids.dim(0)));
  KILN_RETURN_IF_ERROR(check_dim(out, "embedding out", 1, table.dim(1)));
  if (ctx.device.kind == DeviceKind::kCuda) {
#ifdef KILN_HAVE_CUDA_OP
    return cuda::embedding(ctx, token_ids, table, out);
#else
    return no_cuda_kernel("embedding");
#endif
  }
  return cpu::embedding(ctx, token_ids, table, out);
}

}  // namespace kiln::runtime::ops
