// The CPU engine: a llama-family model in f32 on the host, its paged KV cache, and step().
// It is the reference the CUDA engine is checked against, and it is batch invariant: a sequence's
// logits are bitwise the same alone or in any batch, and however its prompt is chunked.
#pragma once

#include <filesystem>
#include <memory>
#include <vector>

#include "kiln/core/thread_pool.h"
#include "kiln/runtime/engine.h"
#include "kiln/runtime/kv_cache.h"
#include "kiln/runtime/models/llama.h"

namespace kiln::runtime {

class CpuEngine final : public Engine {
 public:
  static Result<std::unique_ptr<CpuEngine>> load(const std::filesystem::path& model_dir, const EngineOptions& options);

  Result<StepResult> step(const StepPlan& plan) override;
  const model::ModelConfig& config() const override { return model_->config(); }
  KvGeometry kv_geometry() const override;
  int64_t max_model_len() const override { return max_model_len_; }
  MemoryUsage memory_usage() const override;
  std::string device_name() const override;

 private:
  CpuEngine() = default;

  EngineOptions options_;
  std::unique_ptr<ThreadPool> pool_;
  DeviceContext ctx_;
  std::unique_ptr<model::Checkpoint> checkpoint_;
  std::unique_ptr<models::LlamaModel> model_;
  KvCache cache_;
  int64_t max_model_len_ = 0;
  std::vector<float> logits_;  // [m, vocab] of the last step
};

// Bytes of KV cache the CPU engine allocates for `options` (see EngineOptions::kv_cache_bytes).
int64_t cpu_kv_cache_bytes(const EngineOptions& options, int64_t bytes_per_block, int64_t max_model_len);

}  // namespace kiln::runtime
