// The pool of `kiln serve --model DIR`: the one model loaded at start-up, served under its name.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "kiln/metrics/metrics.h"
#include "kiln/pool/model_pool.h"
#include "kiln/runtime/engine.h"
#include "kiln/serve/engine_worker.h"

namespace kiln::pool {

struct ModelLoadOptions {
  std::filesystem::path dir;
  std::string served_name;          // empty: the directory's name
  runtime::EngineOptions engine;
  serve::EngineWorkerOptions worker;  // model_name, max_model_len, vocab and KV come from the engine
  std::string owned_by = "kiln";
  std::string description;
};

// Loads the engine, tokenizer, chat template and configs of `options.dir` and starts its worker.
// A model without a chat template still serves completions; chat requests get a 400 saying so.
Result<std::shared_ptr<LoadedModel>> load_model(const ModelLoadOptions& options);

// Exposes a model's worker counters (queue depth, running sequences, KV usage, ...) as callback
// gauges labelled with the model's id.
void register_model_metrics(metrics::Registry& registry, const std::shared_ptr<LoadedModel>& model);

class SingleModelPool final : public ModelPool {
 public:
  SingleModelPool(std::shared_ptr<LoadedModel> model, metrics::Registry* registry);
  ~SingleModelPool() override;

  using ModelPool::acquire;
  void acquire(std::string_view model_id, std::function<void(Result<ModelLease>)> done) override;
  std::vector<ModelInfo> list() const override;
  void shutdown() override;

 private:
  std::shared_ptr<LoadedModel> model_;
  metrics::Registry* registry_;
};

}  // namespace kiln::pool
