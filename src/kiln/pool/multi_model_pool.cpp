// MultiModelPool, the executor: it feeds PoolPolicy the events (requests, leases released, loads
// and unloads that ended, rescans, the clock) under one mutex and runs the actions it returns.
// Loads, unloads, plans and rescans each run on a thread of their own with the mutex released;
// callbacks (`done`, watchers) always run with it released.
#include "kiln/pool/multi_model_pool.h"

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

#include "kiln/core/log.h"
#include "kiln/core/str.h"

namespace kiln::pool {

std::string_view model_state_name(ModelState s) {
  switch (s) {
    case ModelState::kUnloaded: return "unloaded";
    case ModelState::kLoading: return "loading";
    case ModelState::kReady: return "ready";
    case ModelState::kUnloading: return "unloading";
    case ModelState::kFailed: return "failed";
  }
  return "unknown";
}

Plan plan_model(const ModelEntry& e, const PoolOptions& o, bool sole_model) {
  Plan p;
  runtime::EngineOptions& eo = p.engine;
  eo = o.defaults.engine;
  const ModelSettings& st = e.settings;
  if (st.context_length) eo.max_model_len = *st.context_length;
  if (st.max_seqs) eo.max_seqs = *st.max_seqs;
  if (st.dtype) eo.weight_dtype = *st.dtype;
  auto config = model::load_model_config(e.dir);
  if (!config.is_ok()) {
    p.error = config.status().message();
    return p;
  }
  const model::ModelConfig& c = *config;
  // The KV cache gets a fixed size here, never "what is free", so that it does not depend on what
  // else is loaded (docs/memory.md): the model's own size, else its share of the budget, else the
  // server's --kv-cache-memory, else what the budget leaves after the weights and workspace (at
  // most what max_seqs sequences of the whole context can fill), capped at a quarter of the budget
  // unless the registry holds this model alone or its kv_cache_memory is "rest".
  eo.memory_budget = 0;
  if (st.kv_rest) eo.kv_cache_bytes = 0;
  if (st.kv_cache_bytes) {
    eo.kv_cache_bytes = *st.kv_cache_bytes;
  } else if (st.kv_share) {
    eo.kv_cache_bytes = static_cast<int64_t>(*st.kv_share * static_cast<double>(o.memory_budget));
  } else if (eo.kv_cache_bytes <= 0) {
    runtime::EngineOptions rest = eo;
    rest.memory_budget = o.memory_budget;
    const Result<runtime::MemoryPlan> left = runtime::plan_memory(c, rest);
    // When the budget leaves no block, one block: the model's estimate then exceeds the budget
    // and it is refused with its sizes (never_fits), not with a planning error.
    const int64_t block = runtime::kv_bytes_per_block(c, eo.device, std::max(1, eo.block_size));
    int64_t kv = left.is_ok() ? left->kv_cache_bytes : block;
    if (!sole_model && !st.kv_rest) kv = std::min(kv, o.memory_budget / 4);
    eo.kv_cache_bytes = std::max(kv, block);
  }
  const Result<runtime::MemoryPlan> plan = runtime::plan_memory(c, eo);
  if (!plan.is_ok()) {
    p.error = plan.status().message();
    return p;
  }
  // The engine runs under exactly these options: the plan it makes is this one.
  eo.max_model_len = plan->limits.max_model_len;
  p.estimate = planned_memory(*plan);
  return p;
}

namespace {

void apply_sampling_defaults(const ModelSettings& st, model::GenerationConfig* g) {
  if (st.temperature) g->temperature = st.temperature;
  if (st.top_p) g->top_p = st.top_p;
  if (st.top_k) g->top_k = st.top_k;
  if (st.min_p) g->min_p = st.min_p;
  if (st.repetition_penalty) g->repetition_penalty = st.repetition_penalty;
  // A configured temperature means sampling, whatever generation_config.json's do_sample says.
  if (st.temperature) g->do_sample = *st.temperature > 0.0;
}

std::string_view unload_reason(PoolAction::Reason r) {
  switch (r) {
    case PoolAction::Reason::kEvicted: return " (idle, least recently used: evicted to make room)";
    case PoolAction::Reason::kKeepAlive: return " (idle for its keep_alive)";
    case PoolAction::Reason::kAsked: return " (asked for)";
    case PoolAction::Reason::kDropped: return " (no longer in the registry)";
    case PoolAction::Reason::kDiscarded: return " (it took more memory than the budget leaves)";
    case PoolAction::Reason::kNone: break;
  }
  return "";
}

}  // namespace

struct MultiModelPool::Core : std::enable_shared_from_this<MultiModelPool::Core> {
  using Deferred = std::vector<std::function<void()>>;

  PoolOptions options;
  const Clock* clock = nullptr;
  ModelLoader loader;
  ModelPlanner planner;

  mutable std::mutex mu;
  std::condition_variable cv;  // a task ended, a preload ended, stopping
  std::unique_ptr<PoolPolicy> policy;
  // The models behind the policy's records: `model` once ready, `pending` between the loader's
  // return and the policy's kReady (or kUnload when it discards it).
  struct Live {
    std::shared_ptr<LoadedModel> model, pending;
  };
  std::map<std::string, Live, std::less<>> live;
  Ticket next_ticket = 1;
  std::map<Ticket, std::function<void(Result<ModelLease>)>> lease_waiters;
  std::map<Ticket, std::function<void(Result<ModelStatus>)>> unload_waiters;
  struct Watcher {
    std::string model;
    std::function<void(const ModelStatus&)> fn;
  };
  uint64_t next_watcher = 1;
  std::map<uint64_t, Watcher> watchers;
  bool stopping = false;
  int preloads_pending = 0;
  Status preload_error;

  std::vector<std::thread> tasks;          // loads, unloads, plans, rescans
  std::vector<std::thread::id> finished;   // tasks that have ended, joined by the next spawn
  std::thread ticker;
  std::mutex rescan_mu;                    // one rescan at a time, applied in order

  // Runs each callback and drops it at once, so that what it holds (a lease) goes with it.
  static void run_all(Deferred& d) {
    for (auto& fn : d) std::exchange(fn, nullptr)();
  }

  // --- under mu ---
  Deferred apply(PoolActions actions);
  void spawn(std::function<void()> fn);
  ModelStatus describe(std::string_view id) const;
  ModelLease make_lease(const std::string& id);
  // Feeds one event (under mu) and runs what it asks for (without it).
  template <typename Event>
  void feed(Event&& event) {
    Deferred d;
    {
      std::lock_guard<std::mutex> lock(mu);
      d = apply(event(*policy, clock->now()));
    }
    run_all(d);
  }

  // --- task threads ---
  void run_plan(const std::string& id);
  void run_load(const std::string& id);
  void run_unload(const std::string& id, PoolAction::Reason reason);
  void run_rescan(const std::function<void(Result<int64_t>)>& done);
  void run_ticker();
  void release(const std::string& id);
  void register_pool_metrics();
};

namespace {

// Holds a model for one request. Every copy of the ModelLease shares it; when the last goes, the
// model reference is dropped first and then the pool hears of it, so that an unload that follows
// holds the last reference and frees the model on its unload thread.
struct LeaseToken {
  std::shared_ptr<LoadedModel> model;
  std::weak_ptr<MultiModelPool::Core> core;
  std::string id;
  ~LeaseToken() {
    model.reset();
    if (auto c = core.lock()) c->release(id);
  }
};

// Ends a watch when the last copy of its handle goes.
struct WatchToken {
  std::weak_ptr<MultiModelPool::Core> core;
  uint64_t id = 0;
  ~WatchToken() {
    if (auto c = core.lock()) {
      std::lock_guard<std::mutex> lock(c->mu);
      c->watchers.erase(id);
    }
  }
};

}  // namespace

ModelStatus MultiModelPool::Core::describe(std::string_view id) const {
  auto st = policy->describe(id, clock->now(), unix_time_seconds());
  if (st) return std::move(*st);
  ModelStatus gone;  // dropped from the registry and forgotten once unloaded
  gone.id = std::string(id);
  return gone;
}

ModelLease MultiModelPool::Core::make_lease(const std::string& id) {
  auto token = std::make_shared<LeaseToken>();
  token->model = live[id].model;
  token->core = weak_from_this();
  token->id = id;
  LoadedModel* raw = token->model.get();
  return ModelLease(std::shared_ptr<LoadedModel>(std::move(token), raw));
}

void MultiModelPool::Core::spawn(std::function<void()> fn) {
  for (std::thread::id done : finished) {
    auto it = std::find_if(tasks.begin(), tasks.end(), [&](const std::thread& t) { return t.get_id() == done; });
    if (it == tasks.end()) continue;
    it->join();  // it has released mu and is returning
    tasks.erase(it);
  }
  finished.clear();
  tasks.emplace_back([this, fn = std::move(fn)] {
    fn();
    std::lock_guard<std::mutex> lock(mu);
    finished.push_back(std::this_thread::get_id());
    cv.notify_all();
  });
}

MultiModelPool::Core::Deferred MultiModelPool::Core::apply(PoolActions actions) {
  Deferred d;
  metrics::Registry* m = options.metrics;
  for (PoolAction& a : actions) {
    const std::string& id = a.id;
    switch (a.kind) {
      case PoolAction::Kind::kPlan:
        if (!stopping) spawn([this, id] { run_plan(id); });
        break;
      case PoolAction::Kind::kLoad:
        if (!stopping) spawn([this, id] { run_load(id); });
        break;
      case PoolAction::Kind::kUnload: {
        if (a.reason == PoolAction::Reason::kEvicted && m != nullptr) {
          m->counter("kiln_model_evictions_total", "Models unloaded to make room for another.", {{"model", id}}).inc();
        }
        log_info("unloading model `", id, "`", unload_reason(a.reason));
        const PoolAction::Reason reason = a.reason;
        if (!stopping) spawn([this, id, reason] { run_unload(id, reason); });
        break;
      }
      case PoolAction::Kind::kReady: {
        Live& l = live[id];
        l.model = std::move(l.pending);
        const ModelStatus st = describe(id);
        log_info("model `", id, "` ready in ", std::llround(st.load_seconds * 1000.0), " ms: weights ",
                 format_bytes(double(st.weights_bytes)), ", KV cache ", format_bytes(double(st.kv_cache_bytes)),
                 ", workspace ", format_bytes(double(st.workspace_bytes)), "; pool ",
                 format_bytes(double(policy->used_bytes())), " of ", format_bytes(double(options.memory_budget)));
        if (m != nullptr && l.model) {
          register_model_metrics(*m, l.model);
          m->counter("kiln_model_loads_total", "Models loaded.", {{"model", id}}).inc();
          m->histogram("kiln_model_load_seconds", "Time to load a model.", {0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300}, {})
              .observe(st.load_seconds);
        }
        break;
      }
      case PoolAction::Kind::kGrant:
        for (Ticket t : a.tickets) {
          auto it = lease_waiters.find(t);
          if (it == lease_waiters.end()) continue;
          d.push_back([done = std::move(it->second), lease = make_lease(id)]() mutable { done(std::move(lease)); });
          lease_waiters.erase(it);
        }
        break;
      case PoolAction::Kind::kRefuse:
        for (Ticket t : a.tickets) {
          auto it = lease_waiters.find(t);
          if (it == lease_waiters.end()) continue;
          d.push_back([done = std::move(it->second), st = a.status] { done(st); });
          lease_waiters.erase(it);
        }
        break;
      case PoolAction::Kind::kFailed:
        if (describe(id).state == ModelState::kFailed) {
          log_error(a.status.message());
          if (m != nullptr) m->counter("kiln_model_load_failures_total", "Model loads that failed.", {{"model", id}}).inc();
        } else {
          log_warn(a.status.message());
        }
        break;
      case PoolAction::Kind::kUnloadAnswer:
        for (Ticket t : a.tickets) {
          auto it = unload_waiters.find(t);
          if (it == unload_waiters.end()) continue;
          Result<ModelStatus> answer = a.status.is_ok() ? Result<ModelStatus>(describe(id)) : Result<ModelStatus>(a.status);
          d.push_back([done = std::move(it->second), answer = std::move(answer)]() mutable { done(std::move(answer)); });
          unload_waiters.erase(it);
        }
        break;
      case PoolAction::Kind::kChanged: {
        const ModelStatus st = describe(id);
        for (const auto& [wid, w] : watchers) {
          if (w.model == id) d.push_back([fn = w.fn, st] { fn(st); });
        }
        break;
      }
    }
  }
  return d;
}

void MultiModelPool::Core::run_plan(const std::string& id) {
  ModelEntry entry;
  bool sole = false;
  {
    std::lock_guard<std::mutex> lock(mu);
    const ModelEntry* e = policy->entry(id);
    if (e == nullptr) return;
    entry = *e;
    sole = policy->list().size() == 1;
  }
  Plan plan = planner(entry, options, sole);
  feed([&](PoolPolicy& p, SteadyTime now) { return p.planned(id, std::move(plan), now); });
}

void MultiModelPool::Core::run_load(const std::string& id) {
  ModelLoadOptions lo = options.defaults;
  ModelSettings settings;
  int64_t created = 0;
  {
    std::lock_guard<std::mutex> lock(mu);
    const ModelEntry* e = policy->entry(id);
    if (e == nullptr) return;
    lo.dir = e->dir;
    lo.served_name = id;
    lo.engine = *policy->engine_options(id);
    lo.owned_by = e->owned_by;
    lo.store_bodies = e->settings.store_bodies;
    lo.description = e->description;
    settings = e->settings;
    created = e->created;
    if (settings.tool_parser) lo.tool_parser = *settings.tool_parser;
    if (settings.reasoning_parser) lo.reasoning_parser = *settings.reasoning_parser;
    lo.kind = settings.kind;
    log_info("loading model `", id, "` from ", lo.dir.string(), " (", format_bytes(double(policy->used_bytes())), " of ",
             format_bytes(double(options.memory_budget)), " reserved)");
  }
  const auto wall_start = std::chrono::steady_clock::now();
  Result<LoadResult> loaded = loader(lo, [this, &id](std::string_view phase, double f) {
    feed([&](PoolPolicy& p, SteadyTime) { return p.load_progress(id, phase, f); });
  });
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  if (loaded.is_ok() && loaded->model == nullptr) loaded = internal_error("the loader returned no model");
  if (loaded.is_ok()) {
    apply_sampling_defaults(settings, &loaded->model->generation);
    if (created > 0) loaded->model->created = created;
  }
  Deferred d;
  std::shared_ptr<LoadedModel> dropped;
  {
    std::lock_guard<std::mutex> lock(mu);
    if (stopping) {
      if (loaded.is_ok()) dropped = std::move(loaded->model);
    } else if (loaded.is_ok()) {
      live[id].pending = loaded->model;
      d = apply(policy->loaded(id, loaded->memory, loaded->model->max_model_len, seconds, clock->now(),
                               loaded->model->device));
    } else {
      d = apply(policy->load_failed(id, loaded.status(), clock->now()));
    }
  }
  run_all(d);
  if (dropped && dropped->worker) dropped->worker->stop();
}

void MultiModelPool::Core::run_unload(const std::string& id, PoolAction::Reason reason) {
  std::shared_ptr<LoadedModel> model;
  {
    std::lock_guard<std::mutex> lock(mu);
    auto it = live.find(id);
    if (it != live.end()) {
      model = std::move(reason == PoolAction::Reason::kDiscarded ? it->second.pending : it->second.model);
      if (!it->second.model && !it->second.pending) live.erase(it);
    }
  }
  if (options.metrics != nullptr) options.metrics->remove_callbacks({{"model", id}});
  if (model && model->worker) model->worker->stop();
  // The last reference (every lease is gone): the weights and KV cache are freed here.
  model.reset();
  feed([&](PoolPolicy& p, SteadyTime now) { return p.unloaded(id, now); });
  std::lock_guard<std::mutex> lock(mu);
  log_info("model `", id, "` unloaded; pool ", format_bytes(double(policy->used_bytes())), " of ",
           format_bytes(double(options.memory_budget)));
}

void MultiModelPool::Core::run_rescan(const std::function<void(Result<int64_t>)>& done) {
  std::lock_guard<std::mutex> one_at_a_time(rescan_mu);
  Result<std::vector<ModelEntry>> entries = options.source();
  if (!entries.is_ok()) {
    log_error("model registry rescan failed: ", entries.status().message());
    if (done) done(entries.status());
    return;
  }
  const int64_t n = static_cast<int64_t>(entries->size());
  std::vector<std::pair<ModelEntry, Plan>> planned;
  planned.reserve(entries->size());
  for (ModelEntry& e : *entries) {
    Plan p = planner(e, options, entries->size() == 1);
    planned.emplace_back(std::move(e), std::move(p));
  }
  feed([&](PoolPolicy& p, SteadyTime now) { return p.registry_scanned(std::move(planned), now); });
  log_info("model registry rescanned: ", n, " models");
  if (done) done(n);
}

void MultiModelPool::Core::run_ticker() {
  std::unique_lock<std::mutex> lock(mu);
  while (!stopping) {
    cv.wait_for(lock, std::chrono::seconds(1));
    if (stopping) break;
    Deferred d = apply(policy->tick(clock->now()));
    lock.unlock();
    run_all(d);
    lock.lock();
  }
}

void MultiModelPool::Core::release(const std::string& id) {
  feed([&](PoolPolicy& p, SteadyTime now) { return p.released(id, now); });
}

void MultiModelPool::Core::register_pool_metrics() {
  if (options.metrics == nullptr) return;
  std::weak_ptr<Core> weak = weak_from_this();
  options.metrics->gauge_fn("kiln_pool_memory_budget_bytes", "The model pool's memory budget.", {},
                            [b = options.memory_budget] { return static_cast<double>(b); });
  options.metrics->gauge_fn("kiln_pool_memory_used_bytes", "Memory the model pool counts against its budget.", {},
                            [weak] {
                              auto c = weak.lock();
                              if (!c) return 0.0;
                              std::lock_guard<std::mutex> lock(c->mu);
                              return static_cast<double>(c->policy->used_bytes());
                            });
  options.metrics->gauge_fn("kiln_pool_loaded_models", "Models loading, loaded or unloading.", {}, [weak] {
    auto c = weak.lock();
    if (!c) return 0.0;
    std::lock_guard<std::mutex> lock(c->mu);
    return static_cast<double>(c->policy->loaded_count());
  });
}

// ---------------------------------------------------------------------------------------------
// MultiModelPool

MultiModelPool::MultiModelPool(std::shared_ptr<Core> core) : core_(std::move(core)) {}

Result<std::unique_ptr<MultiModelPool>> MultiModelPool::create(PoolOptions options) {
  if (!options.source) return invalid_argument("model pool: no registry source");
  if (options.memory_budget <= 0) return invalid_argument("model pool: the memory budget must be positive");
  if (options.max_loaded_models < 0) return invalid_argument("--max-loaded-models must be 0 (no cap) or more");
  auto core = std::make_shared<Core>();
  core->options = std::move(options);
  PoolOptions& o = core->options;
  core->clock = o.clock != nullptr ? o.clock : &SystemClock::instance();
  core->loader = o.loader ? o.loader : ModelLoader(load_model_measured);
  core->planner = o.planner ? o.planner : ModelPlanner(plan_model);
  PolicyOptions po;
  po.memory_budget = o.memory_budget;
  po.max_loaded_models = o.max_loaded_models;
  po.keep_alive = o.keep_alive;
  po.failure_backoff = o.failure_backoff;
  po.max_failure_backoff = o.max_failure_backoff;
  po.room_wait = o.room_wait;
  core->policy = std::make_unique<PoolPolicy>(po);

  KILN_ASSIGN_OR_RETURN(std::vector<ModelEntry> entries, o.source());
  std::vector<std::pair<ModelEntry, Plan>> planned;
  for (ModelEntry& e : entries) {
    Plan p = core->planner(e, o, entries.size() == 1);
    planned.emplace_back(std::move(e), std::move(p));
  }
  core->policy->registry_scanned(std::move(planned), core->clock->now());  // nothing is loaded: no actions
  const std::vector<ModelInfo> listed = core->policy->list();
  for (const std::string& id : o.preload) {
    if (!core->policy->knows(id)) {
      std::string known;
      for (const auto& k : listed) known += str_cat(known.empty() ? "" : ", ", k.id);
      return not_found(str_cat("--preload: no model `", id, "` (models: ", known.empty() ? "none" : known, ")"));
    }
    core->policy->mark_preload(id);
  }
  core->register_pool_metrics();
  core->ticker = std::thread([c = core.get()] { c->run_ticker(); });
  auto pool = std::unique_ptr<MultiModelPool>(new MultiModelPool(core));
  // Preloaded and pinned models start loading now; wait_for_preloads() waits for them.
  std::vector<std::string> preloads;
  for (const auto& m : listed) {
    auto st = core->policy->describe(m.id, core->clock->now(), 0);
    if (st && st->pinned) preloads.push_back(m.id);
  }
  for (const auto& id : preloads) core->policy->mark_preload(id);
  core->preloads_pending = static_cast<int>(preloads.size());
  std::weak_ptr<Core> weak = core;
  for (const auto& id : preloads) {
    pool->acquire(id, {}, [weak](Result<ModelLease> lease) {
      const Status st = lease.status();
      { Result<ModelLease> drop = std::move(lease); }
      auto c = weak.lock();
      if (!c) return;
      std::lock_guard<std::mutex> lock(c->mu);
      if (!st.is_ok() && c->preload_error.is_ok()) c->preload_error = st;
      c->preloads_pending -= 1;
      c->cv.notify_all();
    });
  }
  return pool;
}

MultiModelPool::~MultiModelPool() { shutdown(); }

void MultiModelPool::acquire(std::string_view model_id, const AcquireOptions& options,
                             std::function<void(Result<ModelLease>)> done) {
  Core& c = *core_;
  c.feed([&](PoolPolicy& p, SteadyTime now) {
    const Ticket t = c.next_ticket++;
    c.lease_waiters[t] = std::move(done);
    return p.acquire(model_id, t, options.keep_alive, now);
  });
}

std::vector<ModelInfo> MultiModelPool::list() const {
  std::lock_guard<std::mutex> lock(core_->mu);
  return core_->policy->list();
}

PoolStatus MultiModelPool::status() const {
  const Core& c = *core_;
  std::lock_guard<std::mutex> lock(c.mu);
  PoolStatus p = c.policy->status(c.clock->now(), unix_time_seconds());
  p.device = runtime::device_string({c.options.defaults.engine.device, c.options.defaults.engine.device_index});
  return p;
}

std::optional<ModelStatus> MultiModelPool::model_status(std::string_view model_id) const {
  const Core& c = *core_;
  std::lock_guard<std::mutex> lock(c.mu);
  return c.policy->describe(model_id, c.clock->now(), unix_time_seconds());
}

std::optional<ModelRuntime> MultiModelPool::runtime(std::string_view model_id) const {
  // Read under the lock, without copying the model's pointer: the last reference to a model must
  // stay with the pool, which frees its memory on its own threads.
  const Core& c = *core_;
  std::lock_guard<std::mutex> lock(c.mu);
  auto it = c.live.find(model_id);
  if (it == c.live.end() || it->second.model == nullptr) return std::nullopt;
  const LoadedModel& m = *it->second.model;
  ModelRuntime r;
  r.config = m.config;
  r.max_model_len = m.max_model_len;
  r.max_seqs = m.worker->max_seqs();
  r.max_queue = m.worker->max_queue();
  r.counters = m.worker->counters();  // lock-free snapshots
  return r;
}

void MultiModelPool::load(std::string_view model_id, std::optional<bool> pinned,
                          std::function<void(Result<ModelStatus>)> done) {
  Core& c = *core_;
  std::weak_ptr<Core> weak = core_;
  auto on_lease = [weak, id = std::string(model_id), done = std::move(done)](Result<ModelLease> lease) {
    if (!lease.is_ok()) return done(lease.status());
    { ModelLease drop = std::move(lease).value(); }
    auto core = weak.lock();
    if (!core) return done(unavailable("kiln is shutting down"));
    std::unique_lock<std::mutex> lock(core->mu);
    ModelStatus st = core->describe(id);
    lock.unlock();
    done(std::move(st));
  };
  c.feed([&](PoolPolicy& p, SteadyTime now) {
    const Ticket t = c.next_ticket++;
    c.lease_waiters[t] = std::move(on_lease);
    return p.admin_load(model_id, t, pinned, now);
  });
}

void MultiModelPool::unload(std::string_view model_id, std::function<void(Result<ModelStatus>)> done) {
  Core& c = *core_;
  c.feed([&](PoolPolicy& p, SteadyTime now) {
    const Ticket t = c.next_ticket++;
    c.unload_waiters[t] = std::move(done);
    return p.admin_unload(model_id, t, now);
  });
}

void MultiModelPool::rescan(std::function<void(Result<int64_t>)> done) {
  Core& c = *core_;
  {
    std::lock_guard<std::mutex> lock(c.mu);
    if (!c.stopping) {
      c.spawn([&c, done = std::move(done)] { c.run_rescan(done); });
      return;
    }
  }
  done(unavailable("kiln is shutting down"));
}

std::shared_ptr<void> MultiModelPool::watch(std::string_view model_id, std::function<void(const ModelStatus&)> fn) {
  Core& c = *core_;
  std::lock_guard<std::mutex> lock(c.mu);
  if (!c.policy->knows(model_id)) return nullptr;
  auto token = std::make_shared<WatchToken>();
  token->core = core_;
  token->id = c.next_watcher++;
  c.watchers[token->id] = Core::Watcher{std::string(model_id), std::move(fn)};
  return token;
}

void MultiModelPool::expire_idle() {
  core_->feed([](PoolPolicy& p, SteadyTime now) { return p.tick(now); });
}

Status MultiModelPool::wait_for_preloads() {
  Core& c = *core_;
  std::unique_lock<std::mutex> lock(c.mu);
  c.cv.wait(lock, [&] { return c.preloads_pending == 0 || c.stopping; });
  return c.preload_error;
}

void MultiModelPool::shutdown() {
  Core& c = *core_;
  Core::Deferred d;
  {
    std::lock_guard<std::mutex> lock(c.mu);
    if (c.stopping && c.tasks.empty() && !c.ticker.joinable()) return;
    c.stopping = true;
    d = c.apply(c.policy->shutdown());
    c.cv.notify_all();
  }
  Core::run_all(d);
  if (c.ticker.joinable()) c.ticker.join();
  // Loads still running finish (their models are then stopped and dropped); nothing new starts.
  while (true) {
    std::vector<std::thread> running;
    {
      std::lock_guard<std::mutex> lock(c.mu);
      running.swap(c.tasks);
      c.finished.clear();
    }
    if (running.empty()) break;
    for (auto& t : running) t.join();
  }
  std::vector<std::shared_ptr<LoadedModel>> models;
  {
    std::lock_guard<std::mutex> lock(c.mu);
    for (auto& [id, l] : c.live) {
      if (l.model) models.push_back(l.model);
      if (l.pending) models.push_back(l.pending);
    }
  }
  // Requests still running end with kUnavailable; the models go when their last lease does.
  for (auto& m : models) {
    if (m->worker) m->worker->stop();
  }
}

}  // namespace kiln::pool
