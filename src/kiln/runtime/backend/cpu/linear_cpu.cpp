#include <vector>

#include "kiln/core/str.h"
#include "kiln/runtime/backend/cpu/gemm_cpu.h"
#include "kiln/runtime/backend/cpu/gemm_lowp_cpu.h"
#include "kiln/runtime/backend/cpu/kernels_cpu.h"
#include "kiln/runtime/backend/cpu/parallel_cpu.h"

namespace kiln::runtime::cpu {

Result<ops::LinearWeight> load_linear_weight(const DeviceContext& ctx, std::span<const HostMatrix> parts,
                                             std::span<const HostMatrix> bias_parts) {
  ops::LinearWeight w;
  w.dtype = ctx.weight_dtype;
  KILN_ASSIGN_OR_RETURN(const int64_t n, stacked_rows(parts));
  const int64_t k = parts[0].cols;
  w.out_features = n;
  w.in_features = k;
  switch (w.dtype) {
    case WeightDType::kBF16: {
      KILN_ASSIGN_OR_RETURN(w.weight, Buffer::allocate(ctx.device, DType::kBF16, {bf16_packed_size(n, k)}));
      pack_bf16(ctx, parts, k, static_cast<uint16_t*>(w.weight.tensor().raw()));
      break;
    }
    case WeightDType::kQ8: {
      KILN_ASSIGN_OR_RETURN(w.weight, Buffer::allocate(ctx.device, DType::kU8, {q8_codes_size(n, k)}));
      KILN_ASSIGN_OR_RETURN(w.scales, Buffer::allocate(ctx.device, DType::kF16, {q8_scales_size(n, k)}));
      pack_q8(ctx, parts, k, static_cast<uint8_t*>(w.weight.tensor().raw()),
              static_cast<uint16_t*>(w.scales.tensor().raw()));
      break;
    }
    case WeightDType::kF32: {
      // Widen (and stack) into [N, K] f32 first, then pack into panels.
      KILN_ASSIGN_OR_RETURN(Buffer plain, upload_matrix(ctx, parts, DType::kF32));
      KILN_ASSIGN_OR_RETURN(w.weight, Buffer::allocate(ctx.device, DType::kF32, {packed_size(n, k)}));
      pack_weight(plain.tensor().data<float>(), n, k, w.weight.tensor().data<float>());
      break;
    }
    default:
      return invalid_argument(str_cat("linear weight ", parts[0].name, ": dtype ", weight_dtype_name(w.dtype),
                                      " was not resolved"));
  }
  if (!bias_parts.empty()) {
    KILN_ASSIGN_OR_RETURN(w.bias, Buffer::allocate(ctx.device, DType::kF32, {n}));
    float* b = w.bias.tensor().data<float>();
    for (const HostMatrix& part : bias_parts) {
      const size_t count = static_cast<size_t>(part.rows * part.cols);
      convert_to_f32(part.data, part.dtype, count, b);
      b += count;
    }
  }
  return w;
}

Status linear(const DeviceContext& ctx, const Tensor& x, const ops::LinearWeight& w, const Tensor& out) {
  const int64_t n = w.out_features, k = w.in_features;
  const float* bias = w.bias.empty() ? nullptr : w.bias.tensor().data<float>();
  const int64_t size = w.weight.tensor().numel();
  switch (w.dtype) {
    case WeightDType::kF32:
      if (size != packed_size(n, k) || w.weight.tensor().dtype() != DType::kF32) break;
      gemm_packed(ctx, x.data<float>(), x.dim(0), k, w.weight.tensor().data<float>(), n, bias, out.data<float>(),
                  cpu_isa());
      return Status::ok();
    case WeightDType::kBF16:
      if (size != bf16_packed_size(n, k) || w.weight.tensor().dtype() != DType::kBF16) break;
      gemm_bf16(ctx, x.data<float>(), x.dim(0), k, static_cast<const uint16_t*>(w.weight.tensor().raw()), n, bias,
                out.data<float>(), dot_isa());
      return Status::ok();
    case WeightDType::kQ8:
      if (size != q8_codes_size(n, k) || w.scales.empty() || w.scales.tensor().numel() != q8_scales_size(n, k)) break;
      gemm_q8(ctx, x.data<float>(), x.dim(0), k, static_cast<const uint8_t*>(w.weight.tensor().raw()),
              static_cast<const uint16_t*>(w.scales.tensor().raw()), n, bias, out.data<float>(), dot_isa());
      return Status::ok();
    default:
      break;
  }
  return invalid_argument("linear: weight was not packed for the CPU backend");
}

}  // namespace kiln::runtime::cpu
