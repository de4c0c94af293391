#include "kiln/runtime/weight_dtype.h"

#include "kiln/core/str.h"
#include "kiln/runtime/backend/cpu/isa_cpu.h"

namespace kiln::runtime {

std::string_view weight_dtype_name(WeightDType t) {
  switch (t) {
    case WeightDType::kAuto: return "auto";
    case WeightDType::kF32: return "f32";
    case WeightDType::kBF16: return "bf16";
    case WeightDType::kQ8: return "q8";
  }
  return "?";
}

bool parse_weight_dtype(std::string_view s, WeightDType* out) {
  for (WeightDType t : {WeightDType::kAuto, WeightDType::kF32, WeightDType::kBF16, WeightDType::kQ8}) {
    if (s == weight_dtype_name(t)) {
      *out = t;
      return true;
    }
  }
  return false;
}

Result<WeightDType> resolve_weight_dtype(WeightDType requested, DeviceKind device, DType checkpoint_dtype) {
  if (device == DeviceKind::kCuda) {
    // f32 is the library default (each device's reference): on CUDA that is its bf16 path.
    if (requested != WeightDType::kQ8) return WeightDType::kBF16;
    return invalid_argument("dtype q8 is not supported on CUDA (its weights are bf16)");
  }
  if (requested != WeightDType::kAuto) return requested;
  if (checkpoint_dtype == DType::kF32) return WeightDType::kF32;
  return cpu::dot_isa() >= cpu::DotIsa::kAvx512Bf16 ? WeightDType::kBF16 : WeightDType::kF32;
}

}  // namespace kiln::runtime
