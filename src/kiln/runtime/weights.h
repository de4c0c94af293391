// Host-side sources of weights (usually tensors of a memory-mapped checkpoint) and their upload
// to a device in the dtype the backend computes in.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "kiln/core/dtype.h"
#include "kiln/core/status.h"
#include "kiln/runtime/buffer.h"
#include "kiln/runtime/device_context.h"

namespace kiln::runtime {

// A row-major [rows, cols] matrix (or a [cols] vector with rows = 1) in host memory, F32, F16 or
// BF16. `name` is used in error messages.
struct HostMatrix {
  const void* data = nullptr;
  DType dtype = DType::kF32;
  int64_t rows = 0;
  int64_t cols = 0;
  std::string name;
};

// The dtype activations and plain weights have on `device`: F32 on CPU, BF16 on CUDA.
DType compute_dtype(Device device);

// Checks that the parts can be stacked along rows (same cols, F32/F16/BF16, data present) and
// returns the stacked rows.
Result<int64_t> stacked_rows(std::span<const HostMatrix> parts);

// Uploads the parts stacked along rows ([sum rows, cols]) as one tensor of `dtype` on ctx's
// device. All parts must have the same cols.
Result<Buffer> upload_matrix(const DeviceContext& ctx, std::span<const HostMatrix> parts, DType dtype);

}  // namespace kiln::runtime
