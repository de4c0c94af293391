// What the model pool reports about itself: each model's state for the admin API and /health, and
// the per-request options of acquire.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/pool/registry.h"

namespace kiln::pool {

// unloaded -> loading -> ready -> unloading -> unloaded; a load that fails ends in failed, which
// turns back into loading on the first request after its back-off.
enum class ModelState { kUnloaded, kLoading, kReady, kUnloading, kFailed };
std::string_view model_state_name(ModelState s);  // "unloaded", "loading", "ready", "unloading", "failed"

struct AcquireOptions {
  // Ollama's keep_alive: how long the model stays loaded once idle after this request
  // (negative: until evicted or unloaded by hand; zero: unload as soon as it is idle).
  std::optional<Millis> keep_alive;
};

struct ModelStatus {
  std::string id;
  std::string dir;
  std::string source;           // model_source_name
  ModelState state = ModelState::kUnloaded;
  std::string loading_phase;    // while loading: "waiting for memory", "tokenizer", "weights", "worker"
  double loading_progress = 0;  // 0..1 while loading
  int64_t memory_bytes = 0;     // counted against the budget (reserved while loading)
  int64_t weights_bytes = 0;    // measured once ready
  int64_t kv_cache_bytes = 0;
  int64_t workspace_bytes = 0;
  int64_t estimated_bytes = 0;  // the estimate a load reserves; 0 when unknown
  int64_t in_flight = 0;        // leases held: requests using the model
  int64_t last_used = 0;        // unix seconds; 0 = never
  double load_seconds = 0;      // of the last successful load
  bool pinned = false;
  std::optional<Millis> keep_alive;  // the idle time that applies now; nullopt = forever
  double idle_unload_in_seconds = -1;  // when ready, idle and keep-alive applies; -1 otherwise
  std::string error;            // failed: why
  double retry_in_seconds = 0;  // failed: back-off left
  int64_t loads = 0, failures = 0, evictions = 0;
  // Grows with every change of state, phase or fraction: a watcher that gets statuses from
  // several threads keeps the newest and drops older ones.
  int64_t revision = 0;
};

struct PoolStatus {
  int64_t budget_bytes = 0;
  int64_t used_bytes = 0;
  int max_loaded_models = 0;  // 0: no limit
  int loaded = 0;             // loading, ready or unloading
  std::string device;
  std::vector<ModelStatus> models;
};

}  // namespace kiln::pool
