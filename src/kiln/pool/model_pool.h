// What the HTTP handlers ask for a model: a lease on a loaded model (its engine worker,
// tokenizer, chat template, configs and context length) and the list of servable models.
//
// The handlers only see ModelPool; MultiModelPool (multi_model_pool.h) implements it: it loads
// models on demand, keeps several within a memory budget and unloads idle ones.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/core/status.h"
#include "kiln/grammar/matcher.h"
#include "kiln/model/config.h"
#include "kiln/model/model_kind.h"
#include "kiln/pool/pool_status.h"
#include "kiln/serve/engine_worker.h"
#include "kiln/text/chat_template.h"
#include "kiln/text/output_parser.h"
#include "kiln/text/tokenizer.h"

namespace kiln::pool {

// One loaded model. Immutable once loaded, except the worker, which is thread-safe.
struct LoadedModel {
  std::string id;                       // the name clients use in "model"
  std::filesystem::path dir;
  std::unique_ptr<serve::EngineWorker> worker;
  std::shared_ptr<const text::Tokenizer> tokenizer;
  std::optional<text::ChatTemplate> chat_template;  // absent: the model has none
  std::string chat_template_error;      // why it is absent, for the 400 a chat request gets
  model::ModelConfig config;
  model::GenerationConfig generation;   // sampling defaults from generation_config.json
  int64_t max_model_len = 0;            // prompt + generated tokens
  int64_t created = 0;                  // unix seconds, for /v1/models
  std::string owned_by = "kiln";
  std::string description;              // e.g. that the weights are random
  text::DetectedFormats output_formats;  // tool and reasoning parsers; empty names: none
  std::optional<bool> store_bodies;     // kiln.toml's store_bodies; unset: the server's --store-bodies
  model::ModelTask task;                // generate, embed or rerank, and how (model/model_kind.h)
  std::string device;                   // the engine's device and weights (Engine::device_name())

  // The tokenizer's vocabulary as the grammar matcher sees it (with the worker's end ids), built
  // on the first structured-output request and shared by all of them. Thread-safe.
  std::shared_ptr<const grammar::TokenVocabulary> token_vocabulary() const;

 private:
  mutable std::once_flag vocabulary_once_;
  mutable std::shared_ptr<const grammar::TokenVocabulary> vocabulary_;
};

// Keeps its model loaded while a request uses it. Cheap to copy.
class ModelLease {
 public:
  ModelLease() = default;
  explicit ModelLease(std::shared_ptr<LoadedModel> model, std::shared_ptr<void> hold = nullptr)
      : model_(std::move(model)), hold_(std::move(hold)) {}

  const std::string& id() const { return model_->id; }
  serve::EngineWorker& worker() const { return *model_->worker; }
  const text::Tokenizer& tokenizer() const { return *model_->tokenizer; }
  const std::shared_ptr<const text::Tokenizer>& tokenizer_ptr() const { return model_->tokenizer; }
  // nullptr when the model has no chat template (chat_template_error() says why).
  const text::ChatTemplate* chat_template() const {
    return model_->chat_template ? &*model_->chat_template : nullptr;
  }
  const std::string& chat_template_error() const { return model_->chat_template_error; }
  const model::ModelConfig& config() const { return model_->config; }
  const model::GenerationConfig& generation() const { return model_->generation; }
  int64_t max_model_len() const { return model_->max_model_len; }
  std::shared_ptr<const grammar::TokenVocabulary> token_vocabulary() const { return model_->token_vocabulary(); }
  const text::DetectedFormats& output_formats() const { return model_->output_formats; }
  std::optional<bool> store_bodies() const { return model_->store_bodies; }
  const model::ModelTask& task() const { return model_->task; }
  explicit operator bool() const { return model_ != nullptr; }

 private:
  std::shared_ptr<LoadedModel> model_;
  std::shared_ptr<void> hold_;  // released when the last copy goes: the pool may then unload
};

// A row of /v1/models.
struct ModelInfo {
  std::string id;
  int64_t created = 0;
  std::string owned_by;
  std::string description;
  int64_t max_model_len = 0;
  bool loaded = false;
  model::ModelKind kind = model::ModelKind::kGenerate;
  std::string device;  // a loaded model's engine: device and weight dtype (Engine::device_name())
};

// A loaded model as the seed's info, stats and queue endpoints show it: its config and its
// engine worker's limits and counters.
struct ModelRuntime {
  model::ModelConfig config;
  int64_t max_model_len = 0;
  int64_t max_seqs = 0;    // sequences the engine runs at once
  int64_t max_queue = 0;   // requests that may wait for their first step
  serve::WorkerCounters counters;
};

class ModelPool {
 public:
  virtual ~ModelPool() = default;

  // Gets `model_id` loaded and calls `done` with a lease, or with kNotFound for a model the pool
  // does not know (or another error when loading fails). `options` carries the request's
  // keep_alive. `done` runs on the calling thread when the answer is known at once, else on a
  // loader thread: callers must not block in it and must hop back to their own executor themselves.
  virtual void acquire(std::string_view model_id, const AcquireOptions& options,
                       std::function<void(Result<ModelLease>)> done) = 0;
  virtual std::vector<ModelInfo> list() const = 0;
  // Stops every worker (their requests end with kUnavailable). Idempotent.
  virtual void shutdown() = 0;

  // For /health and the admin API.
  virtual PoolStatus status() const = 0;
  virtual std::optional<ModelStatus> model_status(std::string_view model_id) const = 0;
  // The model's config, limits and counters while it is loaded (ready); nullopt otherwise.
  virtual std::optional<ModelRuntime> runtime(std::string_view model_id) const = 0;
  // Loads `model_id` (pinning or unpinning it when `pinned` is set); `done` runs once it is ready
  // or has failed.
  virtual void load(std::string_view model_id, std::optional<bool> pinned,
                    std::function<void(Result<ModelStatus>)> done) = 0;
  // Unloads `model_id` once its requests in flight have finished; `done` runs then.
  virtual void unload(std::string_view model_id, std::function<void(Result<ModelStatus>)> done) = 0;
  // Re-reads the registry; `done` gets the number of servable models.
  virtual void rescan(std::function<void(Result<int64_t>)> done) = 0;
  // Calls `fn` with `model_id`'s status after each change of its state, loading phase or
  // fraction, on whichever thread made the change and never under the pool's lock (so statuses
  // may arrive out of order: ModelStatus::revision orders them). The watch lasts as long as the
  // returned handle; nullptr for a model the pool does not know.
  virtual std::shared_ptr<void> watch(std::string_view model_id, std::function<void(const ModelStatus&)> fn) = 0;
};

// The 404 every pool answers for an unknown model, in OpenAI's wording.
Status model_not_found(std::string_view model_id);

}  // namespace kiln::pool
