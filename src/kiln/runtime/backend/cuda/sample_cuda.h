// CUDA sampler of ops::sample (same contract; arguments are checked by runtime/ops/sample.cpp).
// Only the sampled ids and requested logprobs come back to the host.
#pragma once

#include <vector>

#include "kiln/runtime/ops/sample.h"

namespace kiln::runtime::cuda {
Status sample(const DeviceContext& ctx, const Tensor& logits, const ops::SamplingBatch& batch,
              std::vector<SampledToken>* out);
}  // namespace kiln::runtime::cuda
