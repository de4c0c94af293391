// The engine: a loaded model on one device, its paged KV cache, and step().
//
// One engine thread owns an Engine (DESIGN.md §2); nothing here is thread-safe.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "kiln/core/status.h"
#include "kiln/model/config.h"
#include "kiln/runtime/device.h"
#include "kiln/runtime/memory_plan.h"
#include "kiln/runtime/step.h"

namespace kiln::runtime {

struct EngineOptions {
  DeviceKind device = DeviceKind::kCpu;
  int device_index = 0;
  int num_threads = 0;                // CPU compute threads; 0 = all cores
  int block_size = 16;                // tokens per KV block
  // KV cache size (runtime/memory_plan.h has the whole rule): kv_cache_bytes when positive; else
  // what memory_budget (this engine's weights + KV cache + workspace) leaves after weights and
  // workspace; else on CUDA the budget default_memory_budget() gives for gpu_memory_fraction, read
  // once before loading; else on CPU room for max_seqs sequences of max_model_len tokens, at most
  // a quarter of physical memory.
  int64_t kv_cache_bytes = 0;
  int64_t memory_budget = 0;
  double gpu_memory_fraction = 0.90;
  // Most tokens in one step; sizes the activation workspace. 0: the device's default
  // (default_max_batched_tokens in memory_plan.h: 8192 on CUDA, 512 on the CPU).
  int32_t max_batched_tokens = 0;
  int32_t max_seqs = 256;             // most sequences in one step
  int64_t max_model_len = 0;          // 0 = the model's max_position_embeddings
  // `--quantize fp8`: a plain (bf16/f32) checkpoint's decoder projections are quantized to FP8
  // e4m3 with 128 x 128 block scales while loading (runtime/fp8_weights.h); an FP8 checkpoint
  // is loaded as it is.
  bool quantize_fp8 = false;
  // How linear weights are stored (weight_dtype.h). The default is the f32 reference; the CLI's
  // default is kAuto.
  WeightDType weight_dtype = WeightDType::kF32;
};

struct MemoryUsage {
  int64_t weights_bytes = 0;
  int64_t kv_cache_bytes = 0;
  int64_t workspace_bytes = 0;
  int64_t total() const { return weights_bytes + kv_cache_bytes + workspace_bytes; }
};

class Engine {
 public:
  virtual ~Engine() = default;

  // Loads the Hugging Face model directory `model_dir` onto the device of `options`.
  static Result<std::unique_ptr<Engine>> load(const std::filesystem::path& model_dir,
                                              const EngineOptions& options);

  // Runs one forward pass over `plan` and samples. An error fails this step's sequences; the
  // engine stays usable for later steps.
  virtual Result<StepResult> step(const StepPlan& plan) = 0;

  virtual const model::ModelConfig& config() const = 0;
  // What the engine was built from: its sizes and limits (the scheduler's come from here).
  virtual const MemoryPlan& memory_plan() const = 0;
  const EngineLimits& limits() const { return memory_plan().limits; }
  KvGeometry kv_geometry() const { return {limits().num_kv_blocks, limits().block_size}; }
  int64_t max_model_len() const { return limits().max_model_len; }
  // What the engine has allocated, measured (held to memory_plan() by tests).
  virtual MemoryUsage memory_usage() const = 0;
  virtual std::string device_name() const = 0;
};

// The free and total memory of a device right now: CUDA from the driver, CPU from /proc/meminfo
// (MemAvailable and MemTotal). The model pool sizes its default budget with it.
Status device_memory_info(DeviceKind device, int device_index, int64_t* free_bytes, int64_t* total_bytes);

}  // namespace kiln::runtime
