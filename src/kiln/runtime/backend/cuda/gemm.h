// bf16 GEMM of the CUDA backend: y[m, n] = x[m, k] · w[n, k]^T (+ bias[n]), f32 accumulation.
// Large m goes through cuBLASLt, with the algorithm chosen once per shape and cached; small m
// (decode) goes through kiln's own kernel, which streams w once with 16-byte loads.
// Plain C++ header: no CUDA header.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kiln/core/status.h"
#include "kiln/runtime/backend/cuda/device.h"

namespace kiln::runtime::cuda {

struct GemmArgs {
  const uint16_t* x = nullptr;     // [m, k] bf16
  const uint16_t* w = nullptr;     // [n, k] bf16
  const uint16_t* bias = nullptr;  // [n] bf16 or null
  void* y = nullptr;               // [m, n] bf16, or f32 when y_f32
  bool y_f32 = false;
  int64_t m = 0, n = 0, k = 0;
};

enum class GemmPath { kAuto, kCublasLt, kSmallM };

// The most rows the small-m kernel takes, and the most for which kAuto picks it: measured on an
// H100 it streams weights at up to 3.1 TB/s for one row and loses to cuBLASLt from four rows
// (bench/results, CudaBench.DISABLED_DecodeGemms).
inline constexpr int64_t kSmallMMax = 8;
inline constexpr int64_t kSmallMAuto = 2;

// Whether the small-m kernel can take the product (m, k and alignment).
bool small_m_fits(const GemmArgs& args);

// y[m, n / 2] = silu(p[:, :n / 2]) * p[:, n / 2:] for p = x w^T (+ bias), rounded to bf16 as the
// separate product and activation would be: a fused [gate; up] projection and its SwiGLU in one
// small-m kernel (decode). `args.y` is the bf16 activation; needs small_m_fits and an even n.
Status gemm_swiglu_small_m(const GemmArgs& args, Stream stream);

// Enqueues the product on `stream`. `lt_handle` is the cublasLtHandle_t of the current device.
// The first call for a shape queries cuBLASLt's heuristics and allocates the device's workspace,
// so run each shape once before capturing a CUDA graph.
Status gemm(void* lt_handle, const GemmArgs& args, Stream stream, GemmPath path = GemmPath::kAuto);

}  // namespace kiln::runtime::cuda
