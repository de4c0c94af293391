// Embedding gather: out[i, :] = table[token_ids[i], :].
#pragma once

#include "kiln/runtime/device_context.h"
#include "kiln/runtime/tensor.h"

namespace kiln::runtime::ops {

// token_ids: [n] I32; table: [vocab, hidden]; out: [n, hidden], in compute dtype. The table is in
// compute dtype too, or bf16 on the CPU (rows widened to f32 as they are gathered).
// A token id outside [0, vocab) is an error on CPU; on CUDA ids must be validated beforehand
// (validate_step_plan does) because the kernel cannot report it without synchronising.
Status embedding(const DeviceContext& ctx, const Tensor& token_ids, const Tensor& table,
                 const Tensor& out);

}  // namespace kiln::runtime::ops
