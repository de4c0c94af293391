// Reading a model's weights out of a checkpoint onto the device, shared by the decoder and its
// blocks (runtime/models/*).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "kiln/core/status.h"
#include "kiln/model/checkpoint.h"
#include "kiln/model/fp8_format.h"
#include "kiln/runtime/buffer.h"
#include "kiln/runtime/ops/linear.h"
#include "kiln/runtime/weights.h"

namespace kiln::runtime::models {

// The checkpoint tensor `name`, checked to have `shape` ([n] or [rows, cols]), as a host matrix.
Result<HostMatrix> host_tensor(const model::Checkpoint& ck, const std::string& name, std::vector<int64_t> shape);

// A 1-D weight ([n]) on the device, in compute dtype. `offset` is added to every element first
// (Gemma's RMSNorms multiply by 1 + weight).
Result<Buffer> load_vector(const DeviceContext& ctx, const model::Checkpoint& ck, const std::string& name, int64_t n,
                           float offset = 0.0f);

// Linear weights "<prefix><part>.weight" stacked in `parts` order; biases when `bias` is set.
// Parts that `quant` covers are FP8 (runtime/fp8_weights.h).
Result<ops::LinearWeight> load_linear(const DeviceContext& ctx, const model::Checkpoint& ck, const std::string& prefix,
                                      const std::vector<std::pair<std::string, int64_t>>& parts, int64_t in_features,
                                      bool bias, const model::QuantizationConfig& quant = {});

inline int64_t linear_bytes(const ops::LinearWeight& w) { return w.weight.nbytes() + w.scales.nbytes() + w.bias.nbytes(); }

}  // namespace kiln::runtime::models
