#include "kiln/runtime/backend/cuda/fp8_linear.h"

#include "kiln/runtime/backend/cuda/scratch.h"

namespace kiln::runtime::cuda {
namespace {

Status with_scratch(Device device, Fp8GemmArgs* a, Fp8Path path) {
  size_t product = 0;
  const size_t act = fp8_scratch_bytes(*a, path, &product);
  if (act > 0) {
    KILN_ASSIGN_OR_RETURN(a->act_scratch, device_scratch(device, ScratchSlot::kFp8Activations, act));
  }
  if (product > 0) {
    KILN_ASSIGN_OR_RETURN(a->product_scratch, device_scratch(device, ScratchSlot::kFp8Product, product));
  }
  return Status::ok();
}

}  // namespace

Status run_fp8_gemm(void* lt_handle, Device device, Fp8GemmArgs a, Stream stream, Fp8Path path) {
  const Fp8Path chosen = fp8_choose_path(a, path);
  KILN_RETURN_IF_ERROR(with_scratch(device, &a, chosen));
  Status st = fp8_gemm(lt_handle, device.index, a, stream, chosen);
  if (path != Fp8Path::kAuto) return st;
  // e4m3 activations (KILN_FP8_GEMM=e4m3): where cuBLASLt has no block-scaled algorithm (the
  // H100 with CUDA 13.0: docs/fp8.md), kiln's own mma kernel; where that refuses the operands,
  // the dequantized weight.
  if (chosen == Fp8Path::kCublasLt && st.code() == StatusCode::kUnimplemented) {
    KILN_RETURN_IF_ERROR(with_scratch(device, &a, Fp8Path::kMma));
    st = fp8_gemm(lt_handle, device.index, a, stream, Fp8Path::kMma);
  }
  if (chosen != Fp8Path::kDequant && st.code() == StatusCode::kUnimplemented) {
    KILN_RETURN_IF_ERROR(with_scratch(device, &a, Fp8Path::kDequant));
    st = fp8_gemm(lt_handle, device.index, a, stream, Fp8Path::kDequant);
  }
  return st;
}

}  // namespace kiln::runtime::cuda
