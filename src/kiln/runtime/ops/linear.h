// Linear layer: out[M, N] = x[M, K] @ W[N, K]^T (+ bias[N]).
//
// Every output row is computed with the same reduction order whatever M is, on CPU: a sequence's
// logits must not depend on the batch it runs in (see DESIGN.md §3, Determinism).
#pragma once

#include <cstdint>
#include <span>

#include "kiln/runtime/buffer.h"
#include "kiln/runtime/device_context.h"
#include "kiln/runtime/tensor.h"
#include "kiln/runtime/weights.h"

namespace kiln::runtime::ops {

// A weight matrix in the layout its backend's GEMM wants. CPU: packed in column panels, f32
// (backend/cpu/gemm_cpu.h), bf16 or q8 codes + f16 scales (backend/cpu/gemm_lowp_cpu.h), as
// ctx.weight_dtype said at load; CUDA: [N, K] bf16 row-major. Only load_linear_weight builds one,
// and ops::linear picks the kernel from `dtype`.
struct LinearWeight {
  WeightDType dtype = WeightDType::kF32;
  Buffer weight;
  // q8: the blocks' f16 scales. FP8 (CUDA; runtime/fp8_weights.h): `weight` is [N, K] F8_E4M3
  // and this the f32 scale of each row's 128-column group, [ceil(K / 128), N]. Else empty.
  Buffer scales;
  Buffer bias;  // [N] in compute_dtype, or empty
  int64_t out_features = 0;  // N
  int64_t in_features = 0;   // K
};

// Stacks `parts` along the output dimension (q/k/v into one [q+2kv, hidden] matrix, gate/up into
// one [2I, hidden]) and lays the result out for ctx's backend. `bias_parts` is empty (no bias) or
// one [1, rows_i] vector per part.
Result<LinearWeight> load_linear_weight(const DeviceContext& ctx, std::span<const HostMatrix> parts,
                                        std::span<const HostMatrix> bias_parts = {});

// Bytes load_linear_weight allocates on `device` for an [n, k] weight (and its [n] bias) stored as
// `dtype` (CPU; CUDA stores bf16 whatever it is).
int64_t linear_weight_bytes(Device device, WeightDType dtype, int64_t n, int64_t k, bool bias);

// x: [M, K] in compute dtype; out: [M, N] (must not alias x).
Status linear(const DeviceContext& ctx, const Tensor& x, const LinearWeight& w, const Tensor& out);

// The RMSNorm a pre-norm projection applies to its input: ops::rms_norm with `weight` ([K]) and
// `eps`. `normed` ([M, K]) is working space for the normalised rows; a backend that normalises
// inside the product (CUDA at decode batch sizes) leaves it untouched.
struct PreNorm {
  Tensor weight;
  float eps = 0.0f;
  Tensor normed;
};

// out = rms_norm(x) · wᵀ (+ bias): the same values as ops::rms_norm into norm.normed followed by
// ops::linear, which is what backends without the fused kernel run.
Status norm_linear(const DeviceContext& ctx, const Tensor& x, const PreNorm& norm, const LinearWeight& w,
                   const Tensor& out);

// residual += x · wᵀ (+ bias): a decoder block's output projection added into the residual stream
// ([M, N] in compute dtype). `scratch` ([M, N]) is working space for backends that cannot add in
// the product's epilogue (CPU). On CUDA the bf16 sum is rounded once (cuBLASLt), or the product is
// rounded to bf16 before the add as a separate add would (decode batch sizes).
Status linear_add(const DeviceContext& ctx, const Tensor& x, const LinearWeight& w, const Tensor& residual,
                  const Tensor& scratch);

}  // namespace kiln::runtime::ops
