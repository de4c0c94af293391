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
  const MemoryPlan& memory_plan() const override { return plan_; }
  MemoryUsage memory_usage() const override;
  std::string device_name() const override;

 private:
  CpuEngine() = default;

  MemoryPlan plan_;
  std::unique_ptr<ThreadPool> pool_;
  DeviceContext ctx_;
  std::unique_ptr<model::Checkpoint> checkpoint_;
  std::unique_ptr<models::LlamaModel> model_;
  KvCache cache_;
  std::vector<float> logits_;  // [m, vocab] of the last step; max_seqs rows reserved at load
};

}  // namespace kiln::runtime
