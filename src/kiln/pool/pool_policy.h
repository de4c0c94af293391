// The model pool's decisions, apart from the threads and I/O that carry them out: which models
// are listed, loading, loaded, unloading or failed; whether a model fits the memory budget and
// the cap on loaded models; which idle model to evict; keep-alive expiry; pins; the back-off of
// failed loads. It owns no thread, lock, file or model: every input is an event with the time it
// happened, every output a list of actions for the executor (MultiModelPool) to run. A request
// waiting for a model is a ticket; the executor keeps what answers it.
//
// A load goes: planning (the executor reads config.json) -> waiting for room -> loading (the
// executor runs the loader) -> ready. Loads that fit start at once, several at a time; one that
// does not fit evicts idle models least recently used first and otherwise waits, without holding
// back the loads, unloads and rescans behind it (see pump()).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/core/clock.h"
#include "kiln/core/status.h"
#include "kiln/pool/memory.h"
#include "kiln/pool/model_pool.h"
#include "kiln/pool/pool_status.h"
#include "kiln/pool/registry.h"
#include "kiln/runtime/engine.h"

namespace kiln::pool {

using Ticket = uint64_t;

struct PolicyOptions {
  int64_t memory_budget = 0;
  int max_loaded_models = 0;          // 0: no cap
  std::optional<Millis> keep_alive;   // the server's; nullopt or negative: never
  Millis failure_backoff{10'000};     // doubles with each failure in a row
  Millis max_failure_backoff{300'000};
  Millis room_wait{300'000};          // how long a load waits for busy models to go idle
};

// A model's engine options (its kiln.toml settings over the server's defaults; the KV cache sized
// here, never from "what is free", so that it does not depend on what else is loaded) and what
// loading it will take, from its config.json (plan_model in multi_model_pool.h makes it).
struct Plan {
  runtime::EngineOptions engine;
  std::optional<ModelMemory> estimate;
  std::string error;  // why config.json could not be read or the options cannot be planned
};

struct PoolAction {
  enum class Kind {
    kPlan,          // read `id`'s config.json, then report planned()
    kLoad,          // run the loader for `id` (load_request()), then report loaded() or load_failed()
    kUnload,        // stop `id`'s worker and free it, then report unloaded(); `reason` says why
    kReady,         // `id`'s loaded model is accepted: it serves from now on
    kGrant,         // `tickets` each get a lease on `id` (already counted in flight)
    kRefuse,        // `tickets` are answered with `status`
    kFailed,        // a load of `id` failed with `status` (for the log and the metrics)
    kUnloadAnswer,  // the admin unloads `tickets` of `id` are answered: its status, or `status`
    kChanged,       // `id`'s status changed (state, phase or fraction): tell its watchers
  };
  enum class Reason { kNone, kEvicted, kKeepAlive, kAsked, kDropped, kDiscarded };
  Kind kind = Kind::kChanged;
  std::string id;
  std::vector<Ticket> tickets;
  Status status;
  Reason reason = Reason::kNone;
};
using PoolActions = std::vector<PoolAction>;

class PoolPolicy {
 public:
  explicit PoolPolicy(PolicyOptions options);

  // --- the registry ---
  // A scan: every servable model with its plan, in registry order. New models appear, models
  // gone disappear (a loaded one is unloaded once idle), loaded ones keep the plan they were
  // loaded with until their next load.
  PoolActions registry_scanned(std::vector<std::pair<ModelEntry, Plan>> models, SteadyTime now);
  // --preload and `pinned = true`: loaded at start and never unloaded by the pool. The id must be listed.
  void mark_preload(std::string_view id);

  // --- requests ---
  // A request for `id` (with its keep_alive): its ticket is granted or refused now (in the
  // returned actions) or once the load it waits on ends.
  PoolActions acquire(std::string_view id, Ticket ticket, std::optional<Millis> keep_alive, SteadyTime now);
  // POST .../load: pins or unpins when `pinned` is set, skips a failed load's back-off, then acquires.
  PoolActions admin_load(std::string_view id, Ticket ticket, std::optional<bool> pinned, SteadyTime now);
  // POST .../unload: answered once the model is unloaded (its requests in flight finish first).
  PoolActions admin_unload(std::string_view id, Ticket ticket, SteadyTime now);
  PoolActions released(std::string_view id, SteadyTime now);

  // --- what the executor reports ---
  PoolActions planned(std::string_view id, Plan plan, SteadyTime now);
  PoolActions load_progress(std::string_view id, std::string_view phase, double fraction);
  // The loader's model: what the engine allocated, its context length and the load's duration.
  PoolActions loaded(std::string_view id, const runtime::MemoryUsage& measured, int64_t max_model_len,
                     double seconds, SteadyTime now, std::string device = {});
  PoolActions load_failed(std::string_view id, const Status& cause, SteadyTime now);
  PoolActions unloaded(std::string_view id, SteadyTime now);
  // Keep-alive expiry and the deadline of loads waiting for room.
  PoolActions tick(SteadyTime now);
  // Refuses every waiting ticket; from now on nothing starts.
  PoolActions shutdown();

  // --- what it reports ---
  bool knows(std::string_view id) const;
  // The entry and engine options a kLoad / kPlan is for.
  const ModelEntry* entry(std::string_view id) const;
  const runtime::EngineOptions* engine_options(std::string_view id) const;
  std::optional<ModelStatus> describe(std::string_view id, SteadyTime now, int64_t unix_now) const;
  PoolStatus status(SteadyTime now, int64_t unix_now) const;
  std::vector<ModelInfo> list() const;
  int64_t used_bytes() const;
  int loaded_count() const;
  const PolicyOptions& options() const { return options_; }

 private:
  // Where a load is; only while the state is kLoading (kPlanning... kWaitingExtra) or kUnloading.
  enum class Step { kNone, kPlanning, kWaitingRoom, kLoading, kWaitingExtra };

  struct Record {
    ModelEntry entry;
    bool listed = true;
    ModelState state = ModelState::kUnloaded;
    Step step = Step::kNone;
    std::string phase;
    double progress = 0;
    int64_t revision = 0;

    std::optional<ModelMemory> estimate;
    runtime::EngineOptions engine;
    std::string estimate_error;
    ModelMemory accounted;   // once ready: what the ledger counts
    int64_t reserved = 0;    // bytes counted against the budget now
    int64_t extra_need = 0;  // kWaitingExtra: bytes the loaded model took beyond its reservation
    int64_t max_model_len = 0;
    std::string device;  // once ready: the engine's device_name()

    int64_t in_flight = 0;
    SteadyTime last_used{};
    bool used = false;
    std::optional<Millis> request_keep_alive;
    std::optional<bool> admin_pin;
    bool preload = false;
    bool unload_requested = false;

    std::vector<Ticket> waiters;
    std::vector<Ticket> unload_waiters;
    SteadyTime room_deadline{};
    uint64_t room_order = 0;  // FIFO among loads waiting for room
    Status fail_after_unload;  // a discarded load: failed once its model is freed

    Status error;
    SteadyTime retry_at{};
    int failures_in_row = 0;
    double load_seconds = 0;
    int64_t loads = 0, failures = 0, evictions = 0;
  };

  Record* find(std::string_view id);
  const Record* find(std::string_view id) const;
  bool pinned(const Record& r) const;
  std::optional<Millis> keep_alive(const Record& r) const;
  Status never_fits(const Record& r) const;
  void changed(Record& r, PoolActions* out);
  void start_load(Record& r, SteadyTime now, PoolActions* out);
  void begin_unload(Record& r, PoolAction::Reason reason, PoolActions* out);
  void become_ready(Record& r, SteadyTime now, PoolActions* out);
  void fail_load(Record& r, const Status& failure, SteadyTime now, PoolActions* out);
  void refuse_waiters(Record& r, const Status& status, PoolActions* out);
  // After every event: unloads that are due and the loads waiting for room that may start now.
  void pump(SteadyTime now, PoolActions* out);
  void unload_if_due(Record& r, PoolActions* out);
  ModelStatus describe(const Record& r, SteadyTime now, int64_t unix_now) const;

  PolicyOptions options_;
  std::map<std::string, Record, std::less<>> records_;
  std::vector<std::string> order_;  // listed ids in registry order
  uint64_t next_room_order_ = 0;
  bool stopping_ = false;
};

}  // namespace kiln::pool
