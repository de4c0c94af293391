// Memory accounting for the pool, over the runtime's memory plan (runtime/memory_plan.h): what a
// model will take before it is loaded (to reserve room in the budget), what it takes once loaded,
// and the default budget. The pool derives no byte count itself (docs/memory.md).
#pragma once

#include <cstdint>

#include "kiln/core/status.h"
#include "kiln/runtime/engine.h"
#include "kiln/runtime/memory_plan.h"

namespace kiln::pool {

// The parts of a model's footprint, in bytes.
struct ModelMemory {
  int64_t weights = 0;
  int64_t kv_cache = 0;
  int64_t workspace = 0;
  int64_t total() const { return weights + kv_cache + workspace; }
};

// What the runtime's plan says loading the model will allocate.
ModelMemory planned_memory(const runtime::MemoryPlan& plan);

// What the pool counts for a loaded model: the engine's measured weights and KV cache, and the
// larger of its measured and planned workspace (CUDA scratch such as cuBLAS's workspace and the
// worker thread's buffers is not all measured at load; the plan bounds it).
ModelMemory accounted_memory(const runtime::MemoryUsage& measured, const ModelMemory& planned);

// The memory budget when none is given (runtime::default_memory_budget): on CUDA
// gpu_memory_fraction of the device's memory less what is in use now; on CPU 90% of MemAvailable.
Result<int64_t> default_memory_budget(runtime::DeviceKind device, int device_index, double gpu_memory_fraction);

}  // namespace kiln::pool
