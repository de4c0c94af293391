#include "kiln/runtime/ops/swiglu.h"

#include "kiln/runtime/backend/cpu/kernels_cpu.h"
#include "kiln/runtime/ops/dispatch.h"
#include "kiln/runtime/ops/rms_norm.h"
#include "kiln/runtime/weights.h"

#if defined(KILN_WITH_CUDA) && __has_include("kiln/runtime/backend/cuda/swiglu_cuda.h")
#include "kiln/runtime/backend/cuda/swiglu_cuda.h"
#define KILN_HAVE_CUDA_OP 1
#endif

namespace kiln::runtime::ops {

Status check_gated_activation(const DeviceContext& ctx, const char* op, const Tensor& gate_up, const Tensor& out) {
  const DType dt = compute_dtype(ctx.device);
  KILN_RETURN_IF_ERROR(check_tensor(gate_up, str_cat(op, " gate_up").c_str(), dt, ctx.device, 2));
  KILN_RETURN_IF_ERROR(check_tensor(out, str_cat(op, " out").c_str(), dt, ctx.device, 2));
  KILN_RETURN_IF_ERROR(check_dim(out, str_cat(op, " out").c_str(), 0, gate_up.dim(0)));
  if (gate_up.dim(1) != 2 * out.dim(1))
    return invalid_argument(str_cat(op, ": gate_up ", gate_up.shape_string(), " is not twice as wide as out ",
                                    out.shape_string()));
  return Status::ok();
}

Status swiglu(const DeviceContext& ctx, const Tensor& gate_up, const Tensor& out) {
  KILN_RETURN_IF_ERROR(check_gated_activation(ctx, "swiglu", gate_up, out));
  if (ctx.device.kind == DeviceKind::kCuda) {
#ifdef KILN_HAVE_CUDA_OP
    return cuda::swiglu(ctx, gate_up, out);
#else
    return no_cuda_kernel("swiglu");
#endif
  }
  return cpu::swiglu(ctx, gate_up, out);
}

namespace {

Status check_linear_swiglu(const DeviceContext& ctx, const char* op, const Tensor& x, const LinearWeight& w,
                           const Tensor& out) {
  const DType dt = compute_dtype(ctx.device);
  KILN_RETURN_IF_ERROR(check_tensor(x, str_cat(op, " x").c_str(), dt, ctx.device, 2));
  KILN_RETURN_IF_ERROR(check_tensor(out, str_cat(op, " out").c_str(), dt, ctx.device, 2));
  KILN_RETURN_IF_ERROR(check_dim(x, str_cat(op, " x").c_str(), 1, w.in_features));
  KILN_RETURN_IF_ERROR(check_dim(out, str_cat(op, " out").c_str(), 0, x.dim(0)));
  if (w.out_features != 2 * out.dim(1))
    return invalid_argument(str_cat(op, ": ", w.out_features, " gate/up rows for an activation of ",
                                    out.shape_string()));
  if (w.weight.empty() || !(w.weight.tensor().device() == ctx.device))
    return invalid_argument(str_cat(op, ": weight is missing or on another device"));
  return Status::ok();
}

}  // namespace

Status linear_swiglu(const DeviceContext& ctx, const Tensor& x, const LinearWeight& w, const Tensor& gate_up,
                     const Tensor& out) {
  KILN_RETURN_IF_ERROR(check_linear_swiglu(ctx, "linear_swiglu", x, w, out));
#ifdef KILN_HAVE_CUDA_OP
  if (ctx.device.kind == DeviceKind::kCuda && cuda::linear_swiglu_fused(ctx, x, w, out, nullptr)) {
    return cuda::linear_swiglu(ctx, x, w, out, nullptr);
  }
#endif
  KILN_RETURN_IF_ERROR(linear(ctx, x, w, gate_up));
  return swiglu(ctx, gate_up, out);
}

Status norm_linear_swiglu(const DeviceContext& ctx, const Tensor& x, const PreNorm& norm, const LinearWeight& w,
                          const Tensor& gate_up, const Tensor& out) {
  KILN_RETURN_IF_ERROR(check_linear_swiglu(ctx, "norm_linear_swiglu", x, w, out));
  KILN_RETURN_IF_ERROR(check_pre_norm(ctx, "norm_linear_swiglu", x, norm));
#ifdef KILN_HAVE_CUDA_OP
  if (ctx.device.kind == DeviceKind::kCuda && cuda::linear_swiglu_fused(ctx, x, w, out, &norm)) {
    return cuda::linear_swiglu(ctx, x, w, out, &norm);
  }
#endif
  KILN_RETURN_IF_ERROR(rms_norm(ctx, x, norm.weight, norm.eps, norm.normed));
  return linear_swiglu(ctx, norm.normed, w, gate_up, out);
}

}  // namespace kiln::runtime::ops
