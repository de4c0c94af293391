// The CUDA side of runtime/weights.cpp's upload_matrix: host weights into bf16 device memory
// through pinned staging. Plain C++ header (no CUDA header).
#pragma once

#include <span>

#include "kiln/core/status.h"
#include "kiln/runtime/device_context.h"
#include "kiln/runtime/weights.h"

namespace kiln::runtime::cuda {

// Writes the parts (F32, F16 or BF16, checked by the caller) one after another as bf16 into `dst`
// ([sum rows, cols] on ctx's device) on ctx's stream. Two pinned staging buffers alternate: the
// host converts one chunk while the copy engine moves the other, and pageable-memory copies
// (which the driver stages synchronously) are avoided. Returns when every copy has landed.
Status upload_bf16_parts(const DeviceContext& ctx, std::span<const HostMatrix> parts, void* dst);

}  // namespace kiln::runtime::cuda
