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
  bool accumulate = false;  // y += x w^T (+ bias) instead of y = ...; bf16 y only
  // When set, x is RMS-normalised by this [k] bf16 weight first (rounded to bf16, exactly as
  // launch_rms_norm would): small-m only, m <= kSmallMAuto, bf16 y, no accumulate.
  const uint16_t* norm_weight = nullptr;
  float norm_eps = 0.0f;
  int64_t m = 0, n = 0, k = 0;
};

enum class GemmPath { kAuto, kCublasLt, kSmallM };

// The most rows the small-m kernel takes, and the most for which kAuto picks it: measured on an
// H100 it streams weights at up to 3.1 TB/s for one row and loses to cuBLASLt from four rows
// (bench/results, CudaBench.DISABLED_DecodeGemms).
inline constexpr int64_t kSmallMMax = 8;
inline constexpr int64_t kSmallMAuto = 2;
// The most bytes of normalised rows (m * k bf16) the norm prologue keeps in shared memory.
inline constexpr int64_t kNormSmemBytes = 48 << 10;

// Whether the small-m kernel can take the product (m, k and alignment; with norm_weight, the rows
// and shared memory of the norm prologue).
bool small_m_fits(const GemmArgs& args);

// Whether the norm prologue pays for this product on a device of `sm_count` SMs: every block of
// the small-m kernel normalises x itself, which a grid of many waves pays once per wave. Measured
// on an H100 at batch-1 decode: fusing both norms made Llama-3.2-1B 2-3% faster (its gate/up grid
// is two waves) and Qwen3-0.6B 2.5% faster, but Llama-3.1-8B 2-3% slower (gate/up, seven waves);
// so the prologue runs only in grids of at most two waves.
bool small_m_norm_pays(const GemmArgs& args, bool swiglu, int sm_count);

// y[m, n / 2] = silu(p[:, :n / 2]) * p[:, n / 2:] for p = x w^T (+ bias), rounded to bf16 as the
// separate product and activation would be: a fused [gate; up] projection and its SwiGLU in one
// small-m kernel (decode). `args.y` is the bf16 activation; needs small_m_fits and an even n.
Status gemm_swiglu_small_m(const GemmArgs& args, Stream stream);

// Enqueues the product on `stream`; `lt_handle` is the cublasLtHandle_t of the current device.
// With norm_weight the small-m kernel runs whatever the path (it alone has the norm prologue).
// With accumulate, cuBLASLt adds into y before its one rounding (beta = 1) and the small-m kernel
// adds the bf16-rounded product, as a separate add would.
// The first call for a shape queries cuBLASLt's heuristics and allocates the device's workspace,
// so run each shape once before capturing a CUDA graph.
Status gemm(void* lt_handle, const GemmArgs& args, Stream stream, GemmPath path = GemmPath::kAuto);

}  // namespace kiln::runtime::cuda
