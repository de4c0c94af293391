// CUDA side of ops::sample's token masks (structured generation): uploads the step's packed
// bitmasks and sets each masked row's disallowed logits to -inf in place, on the stream, before
// the sampler's kernels read the rows. Plain C++ header.
#pragma once

#include "kiln/runtime/ops/sample.h"

namespace kiln::runtime::cuda {
// logits: [m, vocab] F32 on the device; batch.mask_row is not empty (checked by ops::sample).
Status mask_logits(const DeviceContext& ctx, const Tensor& logits, const ops::SamplingBatch& batch);
}  // namespace kiln::runtime::cuda
