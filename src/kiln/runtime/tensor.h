// Tensor: a non-owning, contiguous, row-major view of typed memory on one device.
//
// Ops take Tensors; Buffers (buffer.h) own the memory behind them. A default-constructed Tensor is
// "absent" (empty()), which is how ops spell an optional input such as a missing bias.
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>

#include "kiln/core/dtype.h"
#include "kiln/core/status.h"
#include "kiln/runtime/device.h"

namespace kiln::runtime {

inline constexpr int kMaxTensorRank = 5;

class Tensor {
 public:
  Tensor() = default;
  Tensor(void* data, DType dtype, Device device, std::initializer_list<int64_t> shape);
  Tensor(void* data, DType dtype, Device device, std::span<const int64_t> shape);

  bool empty() const { return data_ == nullptr; }
  void* raw() const { return data_; }
  template <typename T>
  T* data() const { return static_cast<T*>(data_); }
  DType dtype() const { return dtype_; }
  Device device() const { return device_; }
  int rank() const { return rank_; }
  // dim(-1) is the last dimension.
  int64_t dim(int i) const { return shape_[static_cast<size_t>(i < 0 ? rank_ + i : i)]; }
  std::span<const int64_t> shape() const { return {shape_.data(), static_cast<size_t>(rank_)}; }
  int64_t numel() const;
  int64_t nbytes() const { return numel() * static_cast<int64_t>(dtype_size(dtype_)); }
  std::string shape_string() const;  // "[12, 2048]"

  // Rows [begin, begin + count) along dimension 0 (a view of the same memory).
  Tensor rows(int64_t begin, int64_t count) const;
  // The same memory with another shape of the same element count.
  Tensor reshape(std::initializer_list<int64_t> shape) const;

 private:
  void* data_ = nullptr;
  DType dtype_ = DType::kF32;
  Device device_;
  int rank_ = 0;
  std::array<int64_t, kMaxTensorRank> shape_{};
};

// Argument checks shared by the ops: each returns an error naming `what` and the mismatch.
Status check_tensor(const Tensor& t, const char* what, DType dtype, Device device, int rank);
Status check_dim(const Tensor& t, const char* what, int axis, int64_t expected);

}  // namespace kiln::runtime
