// How an engine stores its linear (matmul) weights. The CPU engine computes in f32 whatever the
// weights are; bf16 and q8 halve and quarter the bytes each decode step streams (docs/cpu-dtypes.md).
#pragma once

#include <cstdint>
#include <string_view>

#include "kiln/core/dtype.h"
#include "kiln/core/status.h"
#include "kiln/runtime/device.h"

namespace kiln::runtime {

enum class WeightDType : uint8_t {
  kAuto,  // resolve_weight_dtype() picks
  kF32,   // the reference: f32 GEMM, batch invariant, bitwise equal on every instruction set
  kBF16,  // bf16 weights, activations rounded to bf16, f32 accumulation
  kQ8,    // blocks of 32 int8 codes with an f16 scale (Q8_0-like), activations quantized per block
};

std::string_view weight_dtype_name(WeightDType t);  // "auto", "f32", "bf16", "q8"
bool parse_weight_dtype(std::string_view s, WeightDType* out);

// kAuto on the CPU: an f32 checkpoint stays f32; a bf16 or f16 one is kept in bf16 where the CPU
// has AVX-512 BF16 and widened to f32 elsewhere (there the f32 kernels are as fast and exact).
// CUDA keeps its own bf16 weights whatever is asked (f32, the library default, names each
// device's reference path); q8 is refused there.
Result<WeightDType> resolve_weight_dtype(WeightDType requested, DeviceKind device, DType checkpoint_dtype);

}  // namespace kiln::runtime
