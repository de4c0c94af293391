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

// A weight matrix in the layout its backend's GEMM wants. CPU: f32 packed in column panels
// (see backend/cpu/gemm_cpu.h); CUDA: [N, K] bf16 row-major. Only load_linear_weight builds one.
struct LinearWeight {
  Buffer weight;
  Buffer bias;  // [N] in compute_dtype, or empty
  int64_t out_features = 0;  // N
  int64_t in_features = 0;   // K
};

// Stacks `parts` along the output dimension (q/k/v into one [q+2kv, hidden] matrix, gate/up into
// one [2I, hidden]) and lays the result out for ctx's backend. `bias_parts` is empty (no bias) or
// one [1, rows_i] vector per part.
Result<LinearWeight> load_linear_weight(const DeviceContext& ctx, std::span<const HostMatrix> parts,
                                        std::span<const HostMatrix> bias_parts = {});

// x: [M, K] in compute dtype; out: [M, N] (must not alias x).
Status linear(const DeviceContext& ctx, const Tensor& x, const LinearWeight& w, const Tensor& out);

}  // namespace kiln::runtime::ops
