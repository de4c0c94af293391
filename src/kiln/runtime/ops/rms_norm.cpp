#include "kiln/runtime/ops/rms_norm.h"

#include "kiln/runtime/backend/cpu/kernels_cpu.h"
#include "kiln/runtime/ops/dispatch.h"
#include "kiln/runtime/weights.h"

#if defined(KILN_WITH_CUDA) && __has_include("kiln/runtime/backend/cuda/rms_norm_cuda.h")
#include "kiln/runtime/backend/cuda/rms_norm_cuda.h"
#define KILN_HAVE_CUDA_OP 1
#endif

namespace kiln::runtime::ops {
namespace {
Status check_norm(const DeviceContext& ctx, const char* op, const Tensor& x, const Tensor& weight, float eps,
                  const Tensor& out) {
  const DType dt = compute_dtype(ctx.device);
  KILN_RETURN_IF_ERROR(check_tensor(x, str_cat(op, " x").c_str(), dt, ctx.device, 2));
  KILN_RETURN_IF_ERROR(check_tensor(weight, str_cat(op, " weight").c_str(), dt, ctx.device, 1));
  KILN_RETURN_IF_ERROR(check_dim(weight, str_cat(op, " weight").c_str(), 0, x.dim(1)));
  KILN_RETURN_IF_ERROR(check_tensor(out, str_cat(op, " out").c_str(), dt, ctx.device, 2));
  KILN_RETURN_IF_ERROR(check_dim(out, str_cat(op, " out").c_str(), 0, x.dim(0)));
  KILN_RETURN_IF_ERROR(check_dim(out, str_cat(op, " out").c_str(), 1, x.dim(1)));
  if (!(eps >= 0.0f)) return invalid_argument(str_cat(op, ": eps ", eps, " is not >= 0"));
  return Status::ok();
}
}  // namespace

Status rms_norm(const DeviceContext& ctx, const Tensor& x, const Tensor& weight, float eps, const Tensor& out) {
  KILN_RETURN_IF_ERROR(check_norm(ctx, "rms_norm", x, weight, eps, out));
  if (ctx.device.kind == DeviceKind::kCuda) {
#ifdef KILN_HAVE_CUDA_OP
    return cuda::rms_norm(ctx, x, weight, eps, out);
#else
    return no_cuda_kernel("rms_norm");
#endif
  }
  return cpu::rms_norm(ctx, x, weight, eps, out);
}

}  // namespace kiln::runtime::ops
