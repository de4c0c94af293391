#include "kiln/runtime/tensor.h"

#include <algorithm>

#include "kiln/core/str.h"

namespace kiln::runtime {

Tensor::Tensor(void* data, DType dtype, Device device, std::initializer_list<int64_t> shape)
    : Tensor(data, dtype, device, std::span<const int64_t>(shape.begin(), shape.size())) {}

Tensor::Tensor(void* data, DType dtype, Device device, std::span<const int64_t> shape)
    : data_(data), dtype_(dtype), device_(device) {
  // A rank beyond kMaxTensorRank is a programming error inside kiln, never input: clamp it so
  // that the view stays memory-safe and checks report the wrong shape.
  rank_ = static_cast<int>(std::min<size_t>(shape.size(), kMaxTensorRank));
  std::copy_n(shape.begin(), rank_, shape_.begin());
}

int64_t Tensor::numel() const {
  int64_t n = 1;
  for (int i = 0; i < rank_; ++i) n *= shape_[static_cast<size_t>(i)];
  return n;
}

std::string Tensor::shape_string() const {
  std::string s = "[";
  for (int i = 0; i < rank_; ++i) s += str_cat(i ? ", " : "", shape_[static_cast<size_t>(i)]);
  return s + "]";
}

Tensor Tensor::rows(int64_t begin, int64_t count) const {
  Tensor t = *this;
  const int64_t row_elems = rank_ > 0 ? numel() / std::max<int64_t>(1, shape_[0]) : 1;
  t.data_ = static_cast<char*>(data_) + begin * row_elems * static_cast<int64_t>(dtype_size(dtype_));
  if (rank_ > 0) t.shape_[0] = count;
  return t;
}

Tensor Tensor::reshape(std::initializer_list<int64_t> shape) const {
  return Tensor(data_, dtype_, device_, shape);
}

Status check_tensor(const Tensor& t, const char* what, DType dtype, Device device, int rank) {
  if (t.empty()) return invalid_argument(str_cat(what, ": tensor is missing"));
  if (t.dtype() != dtype)
    return invalid_argument(str_cat(what, ": dtype ", dtype_name(t.dtype()), ", expected ", dtype_name(dtype)));
  if (!(t.device() == device))
    return invalid_argument(str_cat(what, ": on ", device_string(t.device()), ", expected ", device_string(device)));
  if (t.rank() != rank)
    return invalid_argument(str_cat(what, ": shape ", t.shape_string(), " has rank ", t.rank(), ", expected ", rank));
  return Status::ok();
}

Status check_dim(const Tensor& t, const char* what, int axis, int64_t expected) {
  if (t.dim(axis) != expected)
    return invalid_argument(str_cat(what, ": shape ", t.shape_string(), " has dimension ", axis, " = ", t.dim(axis),
                                    ", expected ", expected));
  return Status::ok();
}

}  // namespace kiln::runtime
