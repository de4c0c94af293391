#include <vector>

#include "kiln/core/str.h"
#include "kiln/runtime/backend/cpu/gemm_cpu.h"
#include "kiln/runtime/backend/cpu/kernels_cpu.h"
#include "kiln/runtime/backend/cpu/parallel_cpu.h"

namespace kiln::runtime::cpu {

Result<ops::LinearWeight> load_linear_weight(const DeviceContext& ctx, std::span<const HostMatrix> parts,
                                             std::span<const HostMatrix> bias_parts) {
  // Widen (and stack) into [N, K] f32 first, then pack into panels.
  KILN_ASSIGN_OR_RETURN(Buffer plain, upload_matrix(ctx, parts, DType::kF32));
  const int64_t n = plain.tensor().dim(0), k = plain.tensor().dim(1);
  ops::LinearWeight w;
  w.out_features = n;
  w.in_features = k;
  KILN_ASSIGN_OR_RETURN(w.weight, Buffer::allocate(ctx.device, DType::kF32, {packed_size(n, k)}));
  pack_weight(plain.tensor().data<float>(), n, k, w.weight.tensor().data<float>());
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
  if (w.weight.tensor().numel() != packed_size(w.out_features, w.in_features))
    return invalid_argument("linear: weight was not packed for the CPU backend");
  gemm_packed(ctx, x.data<float>(), x.dim(0), w.in_features, w.weight.tensor().data<float>(), w.out_features,
              w.bias.empty() ? nullptr : w.bias.tensor().data<float>(), out.data<float>(), cpu_isa());
  return Status::ok();
}

}  // namespace kiln::runtime::cpu
