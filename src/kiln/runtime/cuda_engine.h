// The CUDA engine: a llama-family model in bf16 on one GPU, its paged KV cache sized from real
// free device memory, decode steps replayed from CUDA graphs (one per batch-size bucket), and
// sampling on the GPU. Plain C++ header: no CUDA header. Built only with the CUDA backend; it
// sits beside the CPU engine, and backend/cuda/ holds only the kernels it dispatches to.
#pragma once

#include <filesystem>
#include <memory>

#include "kiln/runtime/engine.h"

namespace kiln::runtime::cuda {

// Loads `model_dir` onto CUDA device options.device_index. KV cache: options.kv_cache_bytes when
// positive, else gpu_memory_fraction of the device's total memory minus what is in use once the
// weights are loaded, minus the activation workspace of a max_batched_tokens step.
// KILN_CUDA_GRAPHS=0 in the environment turns the decode graphs off (for comparisons).
Result<std::unique_ptr<Engine>> load_engine(const std::filesystem::path& model_dir, const EngineOptions& options);

}  // namespace kiln::runtime::cuda
