// Device memory and host<->device copies of the CUDA backend, behind runtime/buffer.cpp.
// Plain C++ header: no CUDA header.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kiln/core/status.h"
#include "kiln/runtime/device.h"
#include "kiln/runtime/device_context.h"

namespace kiln::runtime::cuda {

// cudaMalloc on `device`, counted in allocated_bytes(); an out-of-memory error names the size and
// the device's free memory.
Result<void*> device_malloc(Device device, size_t bytes);
void device_free(Device device, void* p);
// Bytes held through device_malloc on `device` right now.
int64_t allocated_bytes(Device device);

// Enqueued on ctx's stream.
Status copy_to_device(const DeviceContext& ctx, const void* host, void* dst, size_t bytes);
Status copy_to_host(const DeviceContext& ctx, const void* src, void* host, size_t bytes);
Status fill_zero(const DeviceContext& ctx, void* dst, size_t bytes);
Status synchronize(const DeviceContext& ctx);

}  // namespace kiln::runtime::cuda
