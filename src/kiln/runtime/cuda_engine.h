// The CUDA engine: a llama-family model in bf16 on one GPU, its paged KV cache sized by the memory
// plan (runtime/memory_plan.h), decode steps replayed from CUDA graphs (one per batch-size bucket), and
// sampling on the GPU. Plain C++ header: no CUDA header. Built only with the CUDA backend; it
// sits beside the CPU engine, and backend/cuda/ holds only the kernels it dispatches to.
#pragma once

#include <filesystem>
#include <memory>

#include "kiln/runtime/engine.h"

namespace kiln::runtime::cuda {

// Loads `model_dir` onto CUDA device options.device_index and allocates what plan_memory() gives.
// Without kv_cache_bytes or memory_budget, the budget is gpu_memory_fraction of the device's total
// memory less what is in use before the load (default_memory_budget), read once.
// KILN_CUDA_GRAPHS=0 in the environment turns the decode graphs off (for comparisons).
Result<std::unique_ptr<Engine>> load_engine(const std::filesystem::path& model_dir, const EngineOptions& options);

}  // namespace kiln::runtime::cuda
