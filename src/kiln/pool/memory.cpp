#include "kiln/pool/memory.h"

#include <algorithm>

namespace kiln::pool {

ModelMemory planned_memory(const runtime::MemoryPlan& plan) {
  ModelMemory m;
  m.weights = plan.weights_bytes;
  m.kv_cache = plan.kv_cache_bytes;
  m.workspace = plan.workspace_bytes;
  return m;
}

ModelMemory accounted_memory(const runtime::MemoryUsage& measured, const ModelMemory& planned) {
  ModelMemory m;
  m.weights = measured.weights_bytes;
  m.kv_cache = measured.kv_cache_bytes;
  m.workspace = std::max(measured.workspace_bytes, planned.workspace);
  return m;
}

Result<int64_t> default_memory_budget(runtime::DeviceKind device, int device_index, double gpu_memory_fraction) {
  return runtime::default_memory_budget(device, device_index, gpu_memory_fraction);
}

}  // namespace kiln::pool
