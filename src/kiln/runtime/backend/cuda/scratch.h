// Per-thread scratch memory of the CUDA ops: device buffers (and pinned host buffers) that grow
// to the largest request and are reused, so that steady-state steps allocate nothing (and can be
// captured in a CUDA graph once every shape has run once). Plain C++ header.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kiln/core/status.h"
#include "kiln/runtime/device.h"

namespace kiln::runtime::cuda {

enum class ScratchSlot {
  kAttentionPartials, kSampleWork, kSampleInputs, kSampleResults, kTokenMasks,
  kFp8Activations, kFp8Product,  // fp8_gemm.cu: quantized activations and scales; a bf16 product
  kCount
};

// At least `bytes` of device memory on `device` for `slot`, valid until the next call for the
// same slot on this thread with a larger size.
Result<void*> device_scratch(Device device, ScratchSlot slot, size_t bytes);
// Same, in pinned host memory.
Result<void*> pinned_scratch(ScratchSlot slot, size_t bytes);
// Counts every reallocation of this thread's device scratch: a CUDA graph captured at one
// generation holds dangling pointers at any later one.
uint64_t scratch_generation();
// The number of multiprocessors of `device` (cached).
int sm_count(Device device);

}  // namespace kiln::runtime::cuda
