#include "kiln/runtime/ops/pointwise.h"

#include <cmath>

#include "kiln/runtime/backend/cpu/kernels_cpu.h"
#include "kiln/runtime/ops/dispatch.h"
#include "kiln/runtime/weights.h"

#if defined(KILN_WITH_CUDA) && __has_include("kiln/runtime/backend/cuda/pointwise_cuda.h")
#include "kiln/runtime/backend/cuda/pointwise_cuda.h"
#define KILN_HAVE_CUDA_OP 1
#endif

namespace kiln::runtime::ops {

Status geglu(const DeviceContext& ctx, const Tensor& gate_up, const Tensor& out) {
  KILN_RETURN_IF_ERROR(check_gated_activation(ctx, "geglu", gate_up, out));
  if (ctx.device.kind == DeviceKind::kCuda) {
#ifdef KILN_HAVE_CUDA_OP
    return cuda::geglu(ctx, gate_up, out);
#else
    return no_cuda_kernel("geglu");
#endif
  }
  return cpu::geglu(ctx, gate_up, out);
}

Status scale(const DeviceContext& ctx, const Tensor& x, float s) {
  KILN_RETURN_IF_ERROR(check_tensor(x, "scale x", compute_dtype(ctx.device), ctx.device, 2));
  if (!std::isfinite(s)) return invalid_argument(str_cat("scale: factor ", s, " is not finite"));
  if (ctx.device.kind == DeviceKind::kCuda) {
#ifdef KILN_HAVE_CUDA_OP
    return cuda::scale(ctx, x, s);
#else
    return no_cuda_kernel("scale");
#endif
  }
  return cpu::scale(ctx, x, s);
}

Status tanh_softcap(const DeviceContext& ctx, const Tensor& x, float cap) {
  KILN_RETURN_IF_ERROR(check_tensor(x, "tanh_softcap x", DType::kF32, ctx.device, 2));
  if (!(cap > 0) || !std::isfinite(cap)) return invalid_argument(str_cat("tanh_softcap: cap ", cap, " must be positive"));
  if (ctx.device.kind == DeviceKind::kCuda) {
#ifdef KILN_HAVE_CUDA_OP
    return cuda::tanh_softcap(ctx, x, cap);
#else
    return no_cuda_kernel("tanh_softcap");
#endif
  }
  return cpu::tanh_softcap(ctx, x, cap);
}

Status add_into(const DeviceContext& ctx, const Tensor& x, const Tensor& y) {
  const DType dt = compute_dtype(ctx.device);
  KILN_RETURN_IF_ERROR(check_tensor(x, "add_into x", dt, ctx.device, 2));
  KILN_RETURN_IF_ERROR(check_tensor(y, "add_into y", dt, ctx.device, 2));
  KILN_RETURN_IF_ERROR(check_dim(y, "add_into y", 0, x.dim(0)));
  KILN_RETURN_IF_ERROR(check_dim(y, "add_into y", 1, x.dim(1)));
  if (ctx.device.kind == DeviceKind::kCuda) {
#ifdef KILN_HAVE_CUDA_OP
    return cuda::add_into(ctx, x, y);
#else
    return no_cuda_kernel("add_into");
#endif
  }
  return cpu::add_into(ctx, x, y);
}

}  // namespace kiln::runtime::ops
