// FP8 GEMM of the CUDA backend: y[m, n] = x[m, k] · dequant(w)[n, k]^T (+ bias[n]) with w held as
// e4m3 codes and one f32 scale per row and 128-column group (runtime/fp8_weights.h). docs/fp8.md
// says which path runs where and why. Plain C++17 header (the .cu includes it): no CUDA header;
// fp8_linear.h is the entry for C++ callers (it finds the scratch).
#pragma once

#include <cstdint>

#include "kiln/core/status.h"
#include "kiln/runtime/backend/cuda/device.h"

namespace kiln::runtime::cuda {

struct Fp8GemmArgs {
  const uint16_t* x = nullptr;      // [m, k] bf16
  const uint8_t* w = nullptr;       // [n, k] e4m3
  const float* w_scale = nullptr;   // [ceil(k / 128), n]
  const uint16_t* bias = nullptr;   // [n] bf16 or null
  void* y = nullptr;                // [m, n] bf16, or f32 when y_f32 (GEMV and dequant paths only)
  bool y_f32 = false;
  bool accumulate = false;  // y += product rounded to bf16 (the residual stream), bf16 y only
  int64_t m = 0, n = 0, k = 0;  // k a multiple of 16
  // Device scratch of at least fp8_scratch_bytes(): quantized activations and their scales
  // (cuBLASLt, mma), or the bf16 product before its epilogue (cuBLASLt) or the dequantized weight.
  void* act_scratch = nullptr;
  void* product_scratch = nullptr;
};

enum class Fp8Path {
  kAuto,       // GEMV up to kFp8GemvMaxM rows, else kBf16Mma (bf16 activations); with
               // KILN_FP8_GEMM=e4m3 kCublasLt, else kMma; kDequant where those refuse
               // (run_fp8_gemm falls through on kUnimplemented)
  kGemv,       // kiln's kernel: streams the codes once into f16 tensor-core products, f32 sums
  kBf16Mma,    // kiln's tensor-core GEMM: codes widened to bf16 in shared memory, bf16 activations
  kCublasLt,   // activations quantized to e4m3 per token and 128 columns, cuBLASLt block-scaled FP8
  kMma,        // the same quantized activations, kiln's block-scaled e4m3 mma.sync GEMM (sm_89+)
  kDequant,    // the weight dequantized to bf16 into scratch, then the bf16 GEMM (a fallback)
};

// Up to this many rows the GEMV kernel runs: weight bytes dominate there, and it reads them once.
inline constexpr int64_t kFp8GemvMaxM = 8;

// The path kAuto stands for with these operands (any other path is returned as it is).
Fp8Path fp8_choose_path(const Fp8GemmArgs& args, Fp8Path path);
// The scratch `path` (not kAuto) needs: activation bytes, and product bytes through *product.
size_t fp8_scratch_bytes(const Fp8GemmArgs& args, Fp8Path path, size_t* product);

// Enqueues the product on `stream` by `path` (not kAuto). `lt_handle` is the device's
// cublasLtHandle_t. The first call of a shape on the cuBLASLt path asks its heuristic: run each
// shape once before capturing a CUDA graph, as for gemm(). kUnimplemented when cuBLASLt offers no
// algorithm for the shape, or when the mma kernel does not take it (a card before sm_89, sizes
// past int32, operands not 16-byte aligned).
Status fp8_gemm(void* lt_handle, int device, const Fp8GemmArgs& args, Stream stream, Fp8Path path);

// The kGemv kernel (fp8_gemv.cu), up to kFp8GemvMaxM rows: y = x w^T (+ bias), or with `swiglu`
// (w a fused [gate; up] matrix, y bf16 [m, n / 2]) y = silu(gate) * up, each rounded to bf16 first
// as the separate product and activation would be.
Status launch_fp8_gemv(const Fp8GemmArgs& args, bool swiglu, Stream stream);

// The kBf16Mma kernel (fp8_bf16_mma.cu), which fp8_gemm() launches on a card of sm_80 or later;
// kUnimplemented for sizes past int32 or operands not 16-byte aligned.
Status launch_fp8_bf16_mma(const Fp8GemmArgs& args, Stream stream);

}  // namespace kiln::runtime::cuda
