#include "kiln/runtime/ops/gather_rows.h"

#include "kiln/runtime/backend/cpu/kernels_cpu.h"
#include "kiln/runtime/ops/dispatch.h"

#if defined(KILN_WITH_CUDA) && __has_include("kiln/runtime/backend/cuda/gather_rows_cuda.h")
#include "kiln/runtime/backend/cuda/gather_rows_cuda.h"
#define KILN_HAVE_CUDA_OP 1
#endif

namespace kiln::runtime::ops {

Status gather_rows(const DeviceContext& ctx, const Tensor& x, const Tensor& rows, const Tensor& out) {
  if (x.empty()) return invalid_argument("gather_rows x: tensor is missing");
  KILN_RETURN_IF_ERROR(check_tensor(x, "gather_rows x", x.dtype(), ctx.device, 2));
  KILN_RETURN_IF_ERROR(check_tensor(rows, "gather_rows rows", DType::kI32, ctx.device, 1));
  KILN_RETURN_IF_ERROR(check_tensor(out, "gather_rows out", x.dtype(), ctx.device, 2));
  KILN_RETURN_IF_ERROR(check_dim(out, "gather_rows out", 0, rows.dim(0)));
  KILN_RETURN_IF_ERROR(check_dim(out, "gather_rows out", 1, x.dim(1)));
  if (ctx.device.kind == DeviceKind::kCuda) {
#ifdef KILN_HAVE_CUDA_OP
    return cuda::gather_rows(ctx, x, rows, out);
#else
    return no_cuda_kernel("gather_rows");
#endif
  }
  return cpu::gather_rows(ctx, x, rows, out);
}

}  // namespace kiln::runtime::ops
