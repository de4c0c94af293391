#include "kiln/runtime/ops/linear.h"

#include <vector>

#include "kiln/runtime/backend/cpu/gemm_cpu.h"
#include "kiln/runtime/backend/cpu/gemm_lowp_cpu.h"
#include "kiln/runtime/backend/cpu/kernels_cpu.h"
#include "kiln/runtime/ops/dispatch.h"
#include "kiln/runtime/ops/rms_norm.h"

#if defined(KILN_WITH_CUDA) && __has_include("kiln/runtime/backend/cuda/linear_cuda.h")
#include "kiln/runtime/backend/cuda/linear_cuda.h"
#define KILN_HAVE_CUDA_OP 1
#endif

namespace kiln::runtime::ops {

Result<LinearWeight> load_linear_weight(const DeviceContext& ctx, std::span<const HostMatrix> parts,
                                        std::span<const HostMatrix> bias_parts) {
  if (parts.empty()) return invalid_argument("linear weight: no parts");
  if (!bias_parts.empty() && bias_parts.size() != parts.size())
    return invalid_argument(str_cat("linear weight ", parts[0].name, ": ", bias_parts.size(), " bias parts for ",
                                    parts.size(), " weight parts"));
  for (size_t i = 0; i < bias_parts.size(); ++i) {
    if (bias_parts[i].rows * bias_parts[i].cols != parts[i].rows)
      return invalid_argument(str_cat("linear bias ", bias_parts[i].name, ": ", bias_parts[i].rows * bias_parts[i].cols,
                                      " values for ", parts[i].rows, " outputs of ", parts[i].name));
  }
  if (ctx.device.kind == DeviceKind::kCuda) {
    LinearWeight w;
    w.dtype = WeightDType::kBF16;
    KILN_ASSIGN_OR_RETURN(w.weight, upload_matrix(ctx, parts, compute_dtype(ctx.device)));
    if (!bias_parts.empty()) {
      // Biases are small: widen them into one [1, N] row on the host and upload that.
      std::vector<float> bias;
      for (const HostMatrix& b : bias_parts) {
        const size_t at = bias.size();
        bias.resize(at + static_cast<size_t>(b.rows * b.cols));
        convert_to_f32(b.data, b.dtype, static_cast<size_t>(b.rows * b.cols), bias.data() + at);
      }
      const HostMatrix row{bias.data(), DType::kF32, 1, static_cast<int64_t>(bias.size()), bias_parts[0].name};
      KILN_ASSIGN_OR_RETURN(Buffer b, upload_matrix(ctx, std::span<const HostMatrix>(&row, 1), compute_dtype(ctx.device)));
      w.bias = std::move(b);
    }
    w.out_features = w.weight.tensor().dim(0);
    w.in_features = w.weight.tensor().dim(1);
    return w;
  }
  return cpu::load_linear_weight(ctx, parts, bias_parts);
}

int64_t linear_weight_bytes(Device device, WeightDType dtype, int64_t n, int64_t k, bool bias) {
  const int64_t dt = static_cast<int64_t>(dtype_size(compute_dtype(device)));
  const int64_t b = bias ? n * dt : 0;
  if (device.kind == DeviceKind::kCuda) return n * k * dt + b;
  // Column panels, zero padded.
  switch (dtype) {
    case WeightDType::kBF16: return cpu::bf16_packed_size(n, k) * 2 + b;
    case WeightDType::kQ8: return cpu::q8_codes_size(n, k) + cpu::q8_scales_size(n, k) * 2 + b;
    default: return cpu::packed_size(n, k) * dt + b;
  }
}

namespace {

// x [M, K] in compute dtype, out [M, N] in compute dtype (or f32 where `f32_out`), w on ctx's device.
Status check_linear(const DeviceContext& ctx, const char* op, const Tensor& x, const LinearWeight& w,
                    const Tensor& out, bool f32_out) {
  const DType dt = compute_dtype(ctx.device);
  KILN_RETURN_IF_ERROR(check_tensor(x, str_cat(op, " x").c_str(), dt, ctx.device, 2));
  const DType out_dt = f32_out && out.dtype() == DType::kF32 ? DType::kF32 : dt;
  KILN_RETURN_IF_ERROR(check_tensor(out, str_cat(op, " out").c_str(), out_dt, ctx.device, 2));
  KILN_RETURN_IF_ERROR(check_dim(x, str_cat(op, " x").c_str(), 1, w.in_features));
  KILN_RETURN_IF_ERROR(check_dim(out, str_cat(op, " out").c_str(), 0, x.dim(0)));
  KILN_RETURN_IF_ERROR(check_dim(out, str_cat(op, " out").c_str(), 1, w.out_features));
  if (w.weight.empty() || !(w.weight.tensor().device() == ctx.device))
    return invalid_argument(str_cat(op, ": weight is missing or on another device"));
  if (x.raw() == out.raw() && x.numel() > 0) return invalid_argument(str_cat(op, ": out must not alias x"));
  return Status::ok();
}

}  // namespace

Status linear(const DeviceContext& ctx, const Tensor& x, const LinearWeight& w, const Tensor& out) {
  // F32 out is allowed everywhere: the lm_head writes f32 logits from bf16 activations on CUDA.
  KILN_RETURN_IF_ERROR(check_linear(ctx, "linear", x, w, out, true));
  if (ctx.device.kind == DeviceKind::kCuda) {
#ifdef KILN_HAVE_CUDA_OP
    return cuda::linear(ctx, x, w, out);
#else
    return no_cuda_kernel("linear");
#endif
  }
  return cpu::linear(ctx, x, w, out);
}

Status check_pre_norm(const DeviceContext& ctx, const char* op, const Tensor& x, const PreNorm& norm) {
  const DType dt = compute_dtype(ctx.device);
  KILN_RETURN_IF_ERROR(check_tensor(norm.weight, str_cat(op, " norm weight").c_str(), dt, ctx.device, 1));
  KILN_RETURN_IF_ERROR(check_dim(norm.weight, str_cat(op, " norm weight").c_str(), 0, x.dim(1)));
  KILN_RETURN_IF_ERROR(check_tensor(norm.normed, str_cat(op, " normed").c_str(), dt, ctx.device, 2));
  KILN_RETURN_IF_ERROR(check_dim(norm.normed, str_cat(op, " normed").c_str(), 0, x.dim(0)));
  KILN_RETURN_IF_ERROR(check_dim(norm.normed, str_cat(op, " normed").c_str(), 1, x.dim(1)));
  if (!(norm.eps >= 0.0f)) return invalid_argument(str_cat(op, ": eps ", norm.eps, " is not >= 0"));
  if (norm.normed.raw() == x.raw()) return invalid_argument(str_cat(op, ": normed must not alias x"));
  return Status::ok();
}

Status norm_linear(const DeviceContext& ctx, const Tensor& x, const PreNorm& norm, const LinearWeight& w,
                   const Tensor& out) {
  KILN_RETURN_IF_ERROR(check_linear(ctx, "norm_linear", x, w, out, false));
  KILN_RETURN_IF_ERROR(check_pre_norm(ctx, "norm_linear", x, norm));
#ifdef KILN_HAVE_CUDA_OP
  if (ctx.device.kind == DeviceKind::kCuda && cuda::norm_linear_fused(ctx, x, norm, w, out)) {
    return cuda::norm_linear(ctx, x, norm, w, out);
  }
#endif
  KILN_RETURN_IF_ERROR(rms_norm(ctx, x, norm.weight, norm.eps, norm.normed));
  return linear(ctx, norm.normed, w, out);
}

Status linear_add(const DeviceContext& ctx, const Tensor& x, const LinearWeight& w, const Tensor& residual,
                  const Tensor& scratch) {
  KILN_RETURN_IF_ERROR(check_linear(ctx, "linear_add", x, w, residual, false));
  KILN_RETURN_IF_ERROR(check_linear(ctx, "linear_add", x, w, scratch, false));
  if (scratch.raw() == residual.raw()) return invalid_argument("linear_add: scratch must not alias residual");
  if (ctx.device.kind == DeviceKind::kCuda) {
#ifdef KILN_HAVE_CUDA_OP
    return cuda::linear_add(ctx, x, w, residual);
#else
    return no_cuda_kernel("linear_add");
#endif
  }
  KILN_RETURN_IF_ERROR(cpu::linear(ctx, x, w, scratch));
  return cpu::add_into(ctx, scratch, residual);
}

}  // namespace kiln::runtime::ops
