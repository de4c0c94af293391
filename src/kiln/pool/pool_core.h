// The shared state behind MultiModelPool (internal to pool/). Leases hold it weakly, so a lease
// that outlives the pool releases nothing.
//
// Locking: one mutex guards every slot and the ledger. The pool thread drops it while it reads a
// checkpoint or stops a worker; a slot in the loading or unloading state is then touched only by
// the pool thread. Callbacks (`done`) always run with the mutex released.
#pragma once

#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "kiln/pool/memory.h"
#include "kiln/pool/multi_model_pool.h"

namespace kiln::pool {

struct Waiter {
  std::function<void(Result<ModelLease>)> done;
};

struct Slot {
  ModelEntry entry;
  bool listed = true;  // false once a rescan dropped it: unloaded when idle, then forgotten
  ModelState state = ModelState::kUnloaded;
  std::string phase;
  double progress = 0;
  std::shared_ptr<LoadedModel> model;

  // What loading it will allocate (from config.json and the options), when config.json reads.
  std::optional<ModelMemory> estimate;
  runtime::EngineOptions engine;  // the options the estimate was made for
  std::string estimate_error;
  ModelMemory accounted;          // once ready: what the ledger counts
  int64_t reserved = 0;           // bytes counted against the budget now

  int64_t in_flight = 0;
  SteadyTime last_used{};
  int64_t last_used_unix = 0;
  std::optional<Millis> request_keep_alive;  // the last request's keep_alive
  std::optional<bool> admin_pin;             // from POST .../load {"pinned": ...}
  bool preload = false;          // --preload or pinned in kiln.toml: loaded at start
  bool preload_pending = false;  // counted in Core::preloads_pending until its first load ends
  bool unload_requested = false;

  std::vector<Waiter> waiters;
  std::vector<std::function<void(Result<ModelStatus>)>> unload_waiters;

  Status error;
  SteadyTime retry_at{};
  int failures_in_row = 0;
  SteadyTime load_started{};
  double load_seconds = 0;
  int64_t loads = 0, failures = 0, evictions = 0;
};

struct Job {
  enum class Kind { kLoad, kUnload, kRescan } kind = Kind::kLoad;
  std::shared_ptr<Slot> slot;
  std::function<void(Result<int64_t>)> rescan_done;
};

struct MultiModelPool::Core : std::enable_shared_from_this<MultiModelPool::Core> {
  // Callbacks to run once the mutex is released.
  using Deferred = std::vector<std::function<void()>>;

  PoolOptions options;
  const Clock* clock = nullptr;

  mutable std::mutex mu;
  std::condition_variable cv;  // jobs queued, a lease released, a load finished, stopping
  std::map<std::string, std::shared_ptr<Slot>> slots;
  std::vector<std::string> order;  // ids in registry order, for listings
  std::deque<Job> jobs;
  bool stopping = false;
  int preloads_pending = 0;
  Status preload_error;
  std::thread thread;
  Deferred deferred;  // callbacks from the pool thread's work, run by flush()


  // --- under mu ---
  bool pinned(const Slot& s) const { return s.admin_pin.value_or(s.preload || s.entry.settings.pinned); }
  std::optional<Millis> keep_alive(const Slot& s) const;  // nullopt: never unloaded for idleness
  int64_t used_bytes() const;
  int loaded_count() const;
  int64_t pinned_bytes_except(const Slot* s) const;
  ModelLease make_lease(const std::shared_ptr<Slot>& slot);
  // Starts a load of `slot` (state loading, job queued).
  void start_load(const std::shared_ptr<Slot>& slot);
  // The error a model that can never fit gets, or ok.
  Status never_fits(const Slot& s) const;
  ModelStatus describe(const Slot& s) const;
  void fail_waiters(Slot& s, const Status& error, Deferred* out);
  // Takes a registry scan (reads each model's config.json first, without the lock).
  void apply_registry(std::vector<ModelEntry> entries);
  // Re-plans a slot whose config.json could not be read before (without the lock).
  void replan(std::unique_lock<std::mutex>& lock, Slot& s);

  // --- pool thread ---
  void run();
  void run_load(std::unique_lock<std::mutex>& lock, const std::shared_ptr<Slot>& slot);
  // Unloads `slot` (ready, no requests in flight); drops and retakes the lock.
  void unload_now(std::unique_lock<std::mutex>& lock, const std::shared_ptr<Slot>& slot);
  // Evicts idle models until `bytes` more fit; waits for busy ones up to `deadline`.
  Status make_room(std::unique_lock<std::mutex>& lock, const std::shared_ptr<Slot>& slot, int64_t bytes,
                   bool counts_as_new, SteadyTime deadline);
  void expire_idle_locked(std::unique_lock<std::mutex>& lock);
  // Runs `deferred` with the lock released.
  void flush(std::unique_lock<std::mutex>& lock);
  void release(const std::shared_ptr<Slot>& slot);
  void register_pool_metrics();
};

}  // namespace kiln::pool
