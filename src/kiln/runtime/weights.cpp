#include "kiln/runtime/weights.h"

#include <cstring>
#include <vector>

#include "kiln/core/str.h"

#if defined(KILN_WITH_CUDA) && __has_include("kiln/runtime/backend/cuda/weight_upload.h")
#include "kiln/runtime/backend/cuda/weight_upload.h"
#define KILN_HAVE_CUDA_UPLOAD 1
#endif

namespace kiln::runtime {

DType compute_dtype(Device device) { return device.kind == DeviceKind::kCpu ? DType::kF32 : DType::kBF16; }

Result<int64_t> stacked_rows(std::span<const HostMatrix> parts) {
  if (parts.empty()) return invalid_argument("weight: no parts");
  const int64_t cols = parts[0].cols;
  int64_t rows = 0;
  for (const HostMatrix& p : parts) {
    if (p.cols != cols)
      return invalid_argument(str_cat("weight ", p.name, ": ", p.cols, " columns, expected ", cols, " like ", parts[0].name));
    if (p.dtype != DType::kF32 && p.dtype != DType::kF16 && p.dtype != DType::kBF16)
      return invalid_argument(str_cat("weight ", p.name, ": dtype ", dtype_name(p.dtype), " is not F32, F16 or BF16"));
    if (p.data == nullptr && p.rows * p.cols > 0) return invalid_argument(str_cat("weight ", p.name, ": no data"));
    rows += p.rows;
  }
  return rows;
}

Result<Buffer> upload_matrix(const DeviceContext& ctx, std::span<const HostMatrix> parts, DType dtype) {
  if (dtype != DType::kF32 && dtype != DType::kBF16)
    return invalid_argument(str_cat("upload_matrix: cannot store weights as ", dtype_name(dtype)));
  KILN_ASSIGN_OR_RETURN(const int64_t rows, stacked_rows(parts));
  const int64_t cols = parts[0].cols;
  KILN_ASSIGN_OR_RETURN(Buffer buf, Buffer::allocate(ctx.device, dtype, {rows, cols}));
#ifdef KILN_HAVE_CUDA_UPLOAD
  if (ctx.device.kind == DeviceKind::kCuda && dtype == DType::kBF16) {
    KILN_RETURN_IF_ERROR(cuda::upload_bf16_parts(ctx, parts, buf.tensor().raw()));
    return buf;
  }
#endif
  std::vector<float> f32;
  std::vector<uint16_t> half;
  int64_t row = 0;
  for (const HostMatrix& p : parts) {
    if (ctx.device.kind == DeviceKind::kCpu && p.dtype == dtype) {
      // Already in the stored dtype: one copy, no staging (a bf16 embedding table on the CPU).
      const size_t n = static_cast<size_t>(p.rows * p.cols) * dtype_size(dtype);
      if (n > 0) std::memcpy(buf.tensor().rows(row, p.rows).raw(), p.data, n);
      row += p.rows;
      continue;
    }
    const size_t n = static_cast<size_t>(p.rows * p.cols);
    f32.resize(n);
    convert_to_f32(p.data, p.dtype, n, f32.data());
    const Tensor dst = buf.tensor().rows(row, p.rows);
    if (dtype == DType::kF32) {
      KILN_RETURN_IF_ERROR(copy_to_device(ctx, f32.data(), dst));
    } else {
      half.resize(n);
      for (size_t i = 0; i < n; ++i) half[i] = f32_to_bf16(f32[i]);
      KILN_RETURN_IF_ERROR(copy_to_device(ctx, half.data(), dst));
    }
    // The staging vectors are reused for the next part: the copy must have landed.
    KILN_RETURN_IF_ERROR(synchronize(ctx));
    row += p.rows;
  }
  return buf;
}

}  // namespace kiln::runtime
