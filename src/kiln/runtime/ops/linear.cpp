#include "kiln/runtime/ops/linear.h"

#include <vector>

#include "kiln/runtime/backend/cpu/kernels_cpu.h"
#include "kiln/runtime/ops/dispatch.h"

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

Status linear(const DeviceContext& ctx, const Tensor& x, const LinearWeight& w, const Tensor& out) {
  const DType dt = compute_dtype(ctx.device);
  KILN_RETURN_IF_ERROR(check_tensor(x, "linear x", dt, ctx.device, 2));
  // F32 out is allowed everywhere: the lm_head writes f32 logits from bf16 activations on CUDA.
  KILN_RETURN_IF_ERROR(check_tensor(out, "linear out", out.dtype() == DType::kF32 ? DType::kF32 : dt, ctx.device, 2));
  KILN_RETURN_IF_ERROR(check_dim(x, "linear x", 1, w.in_features));
  KILN_RETURN_IF_ERROR(check_dim(out, "linear out", 0, x.dim(0)));
  KILN_RETURN_IF_ERROR(check_dim(out, "linear out", 1, w.out_features));
  if (w.weight.empty() || !(w.weight.tensor().device() == ctx.device))
    return invalid_argument("linear: weight is missing or on another device");
  if (x.raw() == out.raw() && x.numel() > 0) return invalid_argument("linear: out must not alias x");
  if (ctx.device.kind == DeviceKind::kCuda) {
#ifdef KILN_HAVE_CUDA_OP
    return cuda::linear(ctx, x, w, out);
#else
    return no_cuda_kernel("linear");
#endif
  }
  return cpu::linear(ctx, x, w, out);
}

}  // namespace kiln::runtime::ops
