// Memory accounting for the pool: what a model will take before it is loaded (to reserve room in
// the budget) and what it takes once loaded (measured by the engine), and the default budget.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "kiln/core/status.h"
#include "kiln/model/config.h"
#include "kiln/runtime/engine.h"

namespace kiln::pool {

// The parts of a model's footprint, in bytes.
struct ModelMemory {
  int64_t weights = 0;
  int64_t kv_cache = 0;
  int64_t workspace = 0;
  int64_t total() const { return weights + kv_cache + workspace; }
};

// Bytes one KV block of `config` takes on `device` (all layers, K and V).
int64_t kv_bytes_per_block(const model::ModelConfig& config, runtime::DeviceKind device, int block_size);

// What loading `config` with `options` (max_model_len, kv_cache_bytes and the batch limits already
// decided) will allocate: weights in the device's compute dtype (the lm_head counted even when
// tied, since the engine lays it out separately) plus the RoPE table; the KV cache rounded down
// to whole blocks; the activation workspace of the largest step the options allow.
ModelMemory estimate_model_memory(const model::ModelConfig& config, const runtime::EngineOptions& options);

// What the pool counts for a loaded model: the engine's measured weights and KV cache, and its
// workspace as measured or, while the engine has not yet grown it to the largest step (the CPU
// engine grows it on demand), the bound from the estimate, so later steps stay inside the budget.
ModelMemory accounted_memory(const runtime::MemoryUsage& measured, const ModelMemory& estimate);

// The memory budget when none is given: 90% of the device's free memory now (CPU: MemAvailable).
Result<int64_t> default_memory_budget(runtime::DeviceKind device, int device_index);

}  // namespace kiln::pool
