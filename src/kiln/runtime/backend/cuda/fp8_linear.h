// The C++ entry of the FP8 GEMM (fp8_gemm.h): chooses the path, gives it this thread's device
// scratch, and under kAuto falls back where cuBLASLt has no algorithm for a shape: to kiln's mma
// kernel, then (where that refuses the operands) to the dequantized path. Plain C++ header.
#pragma once

#include "kiln/core/status.h"
#include "kiln/runtime/backend/cuda/fp8_gemm.h"
#include "kiln/runtime/device.h"

namespace kiln::runtime::cuda {

Status run_fp8_gemm(void* lt_handle, Device device, Fp8GemmArgs args, Stream stream, Fp8Path path = Fp8Path::kAuto);

}  // namespace kiln::runtime::cuda
