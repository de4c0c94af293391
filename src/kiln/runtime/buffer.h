// Buffer: owned device memory with a Tensor view over it; host <-> device copies.
#pragma once

#include <cstdint>
#include <vector>

#include "kiln/core/status.h"
#include "kiln/runtime/device_context.h"
#include "kiln/runtime/tensor.h"

namespace kiln::runtime {

class Buffer {
 public:
  Buffer() = default;
  // Uninitialised memory for `shape` elements of `dtype` on `device` (64-byte aligned on CPU).
  static Result<Buffer> allocate(Device device, DType dtype, std::vector<int64_t> shape);
  ~Buffer();
  Buffer(Buffer&& other) noexcept;
  Buffer& operator=(Buffer&& other) noexcept;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  bool empty() const { return tensor_.empty(); }
  const Tensor& tensor() const { return tensor_; }
  // 0 when empty (an empty tensor's shape {} would count one element).
  int64_t nbytes() const { return empty() ? 0 : tensor_.nbytes(); }
  // Gives the buffer another shape with the same element count.
  Status reshape(std::initializer_list<int64_t> shape);

 private:
  void release();
  Tensor tensor_;
};

// Copies between host memory and a tensor of ctx's device. On CUDA the copy is enqueued on
// ctx's stream (host memory must stay alive until synchronize); on CPU it happens at once.
Status copy_to_device(const DeviceContext& ctx, const void* host, const Tensor& dst);
Status copy_to_host(const DeviceContext& ctx, const Tensor& src, void* host);
// Zeroes a tensor of ctx's device (enqueued like the copies).
Status fill_zero(const DeviceContext& ctx, const Tensor& dst);
// Waits until every op enqueued on ctx has finished. Ops never synchronise implicitly.
Status synchronize(const DeviceContext& ctx);

}  // namespace kiln::runtime
