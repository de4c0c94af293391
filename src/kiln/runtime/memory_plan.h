// The one source of a model's sizes and limits (DESIGN.md §3, "Sizes and limits have one source").
//
// plan_memory() turns a model config and engine options into what an engine will allocate
// (weights, KV cache, workspace, on its device) and the limits it runs under. The engines allocate
// from it, the model pool budgets from it, and the scheduler takes its limits from the engine.
// Nothing above runtime/ re-derives a byte count or a limit. docs/memory.md has the policy.
#pragma once

#include <cstdint>

#include "kiln/core/status.h"
#include "kiln/model/config.h"
#include "kiln/runtime/device.h"
#include "kiln/runtime/weight_dtype.h"

namespace kiln::runtime {

struct EngineOptions;

// What an engine runs under: the scheduler's limits come from here (Engine::limits()).
struct EngineLimits {
  int32_t max_seqs = 0;            // sequences in one step
  int32_t max_batched_tokens = 0;  // tokens in one step
  int64_t max_model_len = 0;       // prompt + generated tokens of one sequence
  int32_t block_size = 0;          // tokens per KV block
  int32_t num_kv_blocks = 0;       // blocks in the KV cache
  // Most prompt tokens of one sequence per step, so that a long prompt is prefilled in chunks
  // and other requests are scheduled between them (see default_prefill_chunk).
  int32_t prefill_chunk = 0;
};

// Bytes on the plan's device. The engine's measured MemoryUsage is held to it by tests.
struct MemoryPlan {
  Device device;
  WeightDType weight_dtype = WeightDType::kF32;  // resolved: never kAuto
  int64_t weights_bytes = 0;    // every weight in the device's layout, the RoPE table included
  int64_t kv_cache_bytes = 0;   // num_kv_blocks whole blocks
  int64_t workspace_bytes = 0;  // activations of the largest step, logits, step metadata, scratch
  // The part of workspace_bytes that the engine allocates on first use rather than at load (CUDA:
  // the scratch allowance and the sampler's working copy of the logits; CPU: none).
  int64_t workspace_on_first_use_bytes = 0;
  int64_t kv_bytes_per_block = 0;
  EngineLimits limits;
  int64_t total() const { return weights_bytes + kv_cache_bytes + workspace_bytes; }
};

// Bytes one KV block of `config` takes on `device` (all layers, K and V, in the compute dtype).
int64_t kv_bytes_per_block(const model::ModelConfig& config, DeviceKind device, int block_size);

// The default prefill chunk of a device. A step runs every scheduled token before any sequence
// gets its next token, so the chunk bounds how long a short request waits behind a long prompt.
int32_t default_prefill_chunk(DeviceKind device);

// The default token budget of one step (EngineOptions::max_batched_tokens 0) for `max_seqs`
// sequences. Every sequence in a step waits for the whole step, so the budget bounds how long a
// burst of new prompts holds up everyone's next token; see the definition for each device.
int32_t default_max_batched_tokens(DeviceKind device, int32_t max_seqs);

// The plan for `config` under `options`. The KV cache is, in order: options.kv_cache_bytes; else
// what options.memory_budget leaves after weights and workspace, at most what max_seqs sequences
// of max_model_len tokens can fill; else (CPU) that same amount capped at a quarter of physical
// memory. CUDA without either is an error here: the engine first turns gpu_memory_fraction into
// a budget (default_memory_budget). Fails when the options are out of range or no KV block fits.
Result<MemoryPlan> plan_memory(const model::ModelConfig& config, const EngineOptions& options);

// The memory budget kiln takes by default on a device: on CUDA gpu_memory_fraction of the device's
// total memory (as vLLM's gpu_memory_utilization) less what is in use now (other processes, other
// engines), so that the device as a whole stays within the fraction; on the CPU 90% of
// MemAvailable (gpu_memory_fraction does not apply). Fails when nothing is left.
Result<int64_t> default_memory_budget(DeviceKind device, int device_index, double gpu_memory_fraction);

}  // namespace kiln::runtime
