// Row-wise CPU kernels: embedding, RMSNorm, residual add, SwiGLU, row gather.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "kiln/core/str.h"
#include "kiln/runtime/backend/cpu/kernels_cpu.h"
#include "kiln/runtime/backend/cpu/lanes16_cpu.h"
#include "kiln/runtime/backend/cpu/parallel_cpu.h"

namespace kiln::runtime::cpu {
namespace {

// Rows per task, so that small rows are not scheduled one by one.
int64_t row_grain(int64_t row_elems) { return std::max<int64_t>(1, 16384 / std::max<int64_t>(1, row_elems)); }

// y = w * (x * rsqrt(mean(x^2) + eps)) for one row; the sum of squares in double, in index order.
void norm_row(const float* x, const float* w, int64_t h, float eps, float* y) {
  double ss = 0.0;
  for (int64_t j = 0; j < h; ++j) ss += static_cast<double>(x[j]) * static_cast<double>(x[j]);
  const float variance = static_cast<float>(ss / static_cast<double>(h));
  const float inv = 1.0f / std::sqrt(variance + eps);
  for (int64_t j = 0; j < h; ++j) y[j] = w[j] * (x[j] * inv);
}

#define KILN_LANES_KERNEL "kiln/runtime/backend/cpu/swiglu_kernel_cpu.inc"
#include "kiln/runtime/backend/cpu/lanes16_each_isa_cpu.inc"
#undef KILN_LANES_KERNEL

using SwigluRowFn = void (*)(const float*, const float*, float*, int64_t);

SwigluRowFn swiglu_row_for(CpuIsa isa) {
  switch (isa) {
#ifdef KILN_LANES_X86
    case CpuIsa::kAvx512: return avx512::swiglu_row;
    case CpuIsa::kAvx2: return avx2::swiglu_row;
#endif
    default: return portable::swiglu_row;
  }
}

}  // namespace

Status embedding(const DeviceContext& ctx, const Tensor& token_ids, const Tensor& table, const Tensor& out) {
  const int64_t n = token_ids.dim(0), vocab = table.dim(0), h = table.dim(1);
  const int32_t* ids = token_ids.data<int32_t>();
  for (int64_t i = 0; i < n; ++i) {
    if (ids[i] < 0 || ids[i] >= vocab)
      return invalid_argument(str_cat("embedding: token id ", ids[i], " at index ", i, " is outside the vocabulary of ", vocab));
  }
  float* o = out.data<float>();
  if (table.dtype() == DType::kBF16) {
    const uint16_t* t = table.data<uint16_t>();
    parallel_for(ctx, n, row_grain(h), [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        const uint16_t* src = t + ids[i] * h;
        for (int64_t j = 0; j < h; ++j) o[i * h + j] = bf16_to_f32(src[j]);
      }
    });
    return Status::ok();
  }
  const float* t = table.data<float>();
  parallel_for(ctx, n, row_grain(h), [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) std::memcpy(o + i * h, t + ids[i] * h, sizeof(float) * static_cast<size_t>(h));
  });
  return Status::ok();
}

Status rms_norm(const DeviceContext& ctx, const Tensor& x, const Tensor& weight, float eps, const Tensor& out) {
  const int64_t n = x.dim(0), h = x.dim(1);
  const float* xp = x.data<float>();
  const float* w = weight.data<float>();
  float* o = out.data<float>();
  parallel_for(ctx, n, row_grain(h), [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) norm_row(xp + i * h, w, h, eps, o + i * h);
  });
  return Status::ok();
}

Status add_into(const DeviceContext& ctx, const Tensor& x, const Tensor& y) {
  const int64_t n = x.dim(0), h = x.dim(1);
  const float* xp = x.data<float>();
  float* yp = y.data<float>();
  parallel_for(ctx, n, row_grain(h), [&](int64_t b, int64_t e) {
    for (int64_t i = b * h; i < e * h; ++i) yp[i] += xp[i];
  });
  return Status::ok();
}

Status swiglu(const DeviceContext& ctx, const Tensor& gate_up, const Tensor& out, CpuIsa isa) {
  const int64_t n = out.dim(0), inter = out.dim(1);
  const float* gu = gate_up.data<float>();
  float* o = out.data<float>();
  const SwigluRowFn row = swiglu_row_for(isa);
  parallel_for(ctx, n, row_grain(inter), [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) row(gu + i * 2 * inter, gu + i * 2 * inter + inter, o + i * inter, inter);
  });
  return Status::ok();
}

Status gather_rows(const DeviceContext& ctx, const Tensor& x, const Tensor& rows, const Tensor& out) {
  const int64_t n = x.dim(0), m = rows.dim(0);
  const int64_t row_bytes = x.nbytes() / std::max<int64_t>(1, n);
  const int32_t* r = rows.data<int32_t>();
  for (int64_t i = 0; i < m; ++i) {
    if (r[i] < 0 || r[i] >= n) return invalid_argument(str_cat("gather_rows: row ", r[i], " at index ", i, " is outside [0, ", n, ")"));
  }
  const char* src = static_cast<const char*>(x.raw());
  char* dst = static_cast<char*>(out.raw());
  (void)ctx;
  for (int64_t i = 0; i < m; ++i) std::memcpy(dst + i * row_bytes, src + r[i] * row_bytes, static_cast<size_t>(row_bytes));
  return Status::ok();
}

}  // namespace kiln::runtime::cpu
