// The model pool of `kiln serve`: every model of the registry can be served; a request for one
// that is not loaded loads it (single flight: concurrent requests wait on the same load), inside
// a memory budget and a cap on loaded models. When a load needs room, idle models are unloaded
// least recently used first; a model with requests in flight is never unloaded under them (each
// request holds a lease), and pinned or preloaded models are never unloaded by the pool. A model
// idle for its keep-alive is unloaded. A model that can never fit is refused at once; a load that
// fails is retried only after a back-off.
//
// MultiModelPool is the executor: every decision is PoolPolicy's (pool_policy.h); it feeds the
// policy events and runs the actions it returns. Each load, unload and rescan runs on a thread of
// its own, so two models load at once when both fit and a load waiting for room holds nothing up;
// a ticker thread expires keep-alives. acquire(), list() and status() are called from HTTP
// threads and never block on a load.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/core/clock.h"
#include "kiln/metrics/metrics.h"
#include "kiln/pool/memory.h"
#include "kiln/pool/model_loader.h"
#include "kiln/pool/model_pool.h"
#include "kiln/pool/pool_policy.h"
#include "kiln/pool/pool_status.h"
#include "kiln/pool/registry.h"

namespace kiln::pool {

struct PoolOptions;

// Loads one model, reporting progress (load_model_measured is the real one).
using ModelLoader = std::function<Result<LoadResult>(const ModelLoadOptions&, const LoadProgress&)>;
// Plans one model from its entry (plan_model is the real one).
using ModelPlanner = std::function<Plan(const ModelEntry&, const PoolOptions&, bool sole_model)>;

struct PoolOptions {
  // Engine and worker settings every model starts from (dir and served_name are ignored); a
  // model's kiln.toml settings override them.
  ModelLoadOptions defaults;
  int64_t memory_budget = 0;          // bytes; must be positive (see default_memory_budget)
  int max_loaded_models = 0;          // 0: no cap
  std::optional<Millis> keep_alive;   // idle time before unloading; nullopt or negative: never
  Millis failure_backoff{10'000};     // after a failed load; doubles with each failure in a row
  Millis max_failure_backoff{300'000};
  Millis room_wait{300'000};          // how long a load waits for busy models to go idle
  std::vector<std::string> preload;   // loaded at start, pinned
  const Clock* clock = nullptr;       // nullptr: the system clock
  metrics::Registry* metrics = nullptr;
  RegistrySource source;              // what can be served; required
  ModelLoader loader;                 // nullptr: load_model_measured
  ModelPlanner planner;               // nullptr: plan_model
};

// A model's Plan (pool_policy.h): its engine options and what loading it will take, from the
// runtime's memory plan. `sole_model`: the registry holds this model alone, so its KV cache takes
// what the budget leaves (docs/memory.md). Reads the model's config.json.
Plan plan_model(const ModelEntry& entry, const PoolOptions& options, bool sole_model = false);

class MultiModelPool final : public ModelPool {
 public:
  // Scans the registry and starts the pool thread, which starts loading the preloaded and pinned
  // models at once. Fails when the registry cannot be read or a preloaded model is unknown.
  static Result<std::unique_ptr<MultiModelPool>> create(PoolOptions options);
  ~MultiModelPool() override;
  MultiModelPool(const MultiModelPool&) = delete;
  MultiModelPool& operator=(const MultiModelPool&) = delete;

  void acquire(std::string_view model_id, const AcquireOptions& options,
               std::function<void(Result<ModelLease>)> done) override;
  std::vector<ModelInfo> list() const override;
  void shutdown() override;

  PoolStatus status() const override;
  std::optional<ModelStatus> model_status(std::string_view model_id) const override;
  std::optional<ModelRuntime> runtime(std::string_view model_id) const override;
  // Loads `model_id` (pinning or unpinning it when `pinned` is set) and calls `done` once it is
  // ready or has failed.
  void load(std::string_view model_id, std::optional<bool> pinned,
            std::function<void(Result<ModelStatus>)> done) override;
  // Unloads `model_id` once its requests in flight have finished (pinned or not); `done` runs then.
  void unload(std::string_view model_id, std::function<void(Result<ModelStatus>)> done) override;
  // Re-reads the registry on a thread of its own; `done` gets the number of servable models.
  void rescan(std::function<void(Result<int64_t>)> done) override;
  std::shared_ptr<void> watch(std::string_view model_id, std::function<void(const ModelStatus&)> fn) override;
  // Starts unloading the idle models whose keep-alive has passed and ends the loads that waited
  // too long for room. The ticker thread does this every second; tests call it after moving a
  // ManualClock.
  void expire_idle();
  // Blocks until every preloaded model has finished loading; the first failure, if any.
  Status wait_for_preloads();

  struct Core;  // multi_model_pool.cpp; leases reach it weakly

 private:
  explicit MultiModelPool(std::shared_ptr<Core> core);
  std::shared_ptr<Core> core_;
};

}  // namespace kiln::pool
