// What the bf16 GEMM (gemm.cu) and the FP8 GEMM (fp8_gemm.cu) share of cuBLASLt: one shape's
// matmul descriptor, layouts and algorithm (a plan), the heuristic query, the matmul call, and a
// workspace per device. Host code of this folder only: it includes cuBLASLt's header.
#pragma once

#include <cublasLt.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>

#include "kiln/core/status.h"

namespace kiln::runtime::cuda {

// The workspace every plan is chosen for and every matmul is given.
inline constexpr size_t kLtWorkspaceBytes = 32u << 20;

// Row-major y[m, n] = x[m, k] · w[n, k]^T, computed as column-major y^T[n, m] = (w as [k, n])^T
// (x as [k, m]): f32 compute and scale, A = w (transposed, ld k), B = x (ld k), D = y^T (ld n).
// The caller adds its own descriptor attributes (bias epilogue, scale modes) before asking the
// heuristic, and keeps the plan per engine thread when it changes pointers in it per call.
struct LtPlan {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr;
  cublasLtMatmulAlgo_t algo{};
  // The operands' alignments in bytes (lt_alignment), told to the heuristic: it assumes 256
  // otherwise, and not every operand starts a buffer (one expert's rows start wherever its run
  // does, models/moe_block.cpp). A plan is then valid only for pointers this aligned.
  uint32_t align_w = 256, align_x = 256, align_y = 256;

  LtPlan() = default;
  LtPlan(const LtPlan&) = delete;
  LtPlan& operator=(const LtPlan&) = delete;
  ~LtPlan();

  // Creates the descriptor and the three layouts; `in` is the type of w and x, `out` that of y.
  Status init(cudaDataType_t in, cudaDataType_t out, int64_t m, int64_t n, int64_t k);

  template <typename T>
  Status set(cublasLtMatmulDescAttributes_t attr, const T& value) {
    return set_raw(attr, &value, sizeof(value));
  }
  Status set_raw(cublasLtMatmulDescAttributes_t attr, const void* value, size_t size);

  // Up to `max_results` algorithms for this plan within kLtWorkspaceBytes, best first, their count
  // in *found. The status is cuBLASLt's, so that a caller may treat a refusal as "no algorithm".
  cublasStatus_t heuristics(cublasLtHandle_t lt, cublasLtMatmulHeuristicResult_t* results, int max_results,
                            int* found) const;

  // Enqueues y = w x (+ beta y) with `chosen` (alpha 1) on `stream`, `workspace` of kLtWorkspaceBytes.
  cublasStatus_t matmul(cublasLtHandle_t lt, const cublasLtMatmulAlgo_t& chosen, const void* w, const void* x,
                        float beta, void* y, void* workspace, cudaStream_t stream) const;
};

// The largest power of two up to 256 that divides p's address.
uint32_t lt_alignment(const void* p);

// One kLtWorkspaceBytes buffer per device, allocated on first use and kept for the life of the
// process (plans and captured graphs refer to it).
class LtWorkspaces {
 public:
  Result<void*> get(int device);

 private:
  std::mutex mu_;
  std::map<int, void*> by_device_;
};

}  // namespace kiln::runtime::cuda
