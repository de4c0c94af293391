// MultiModelPool: the calls HTTP threads make (acquire, list, status, admin requests) and the
// bookkeeping they share with the pool thread (pool_thread.cpp).
#include "kiln/pool/multi_model_pool.h"

#include <algorithm>
#include <set>

#include "kiln/core/log.h"
#include "kiln/core/str.h"
#include "kiln/pool/pool_core.h"

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

namespace {

// Holds a model for one request. Every copy of the ModelLease shares it; when the last goes, the
// model reference is dropped first and then the pool hears of it, so that an unload that follows
// holds the last reference and frees the model on the pool thread.
struct LeaseToken {
  std::shared_ptr<LoadedModel> model;
  std::weak_ptr<MultiModelPool::Core> core;
  std::shared_ptr<Slot> slot;
  ~LeaseToken() {
    model.reset();
    if (auto c = core.lock()) c->release(slot);
  }
};

}  // namespace

Plan plan_model(const ModelEntry& e, const PoolOptions& o, bool sole_model) {
  Plan p;
  runtime::EngineOptions& eo = p.engine;
  eo = o.defaults.engine;
  const ModelSettings& st = e.settings;
  if (st.context_length) eo.max_model_len = *st.context_length;
  if (st.max_seqs) eo.max_seqs = *st.max_seqs;
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

// ---------------------------------------------------------------------------------------------
// Core: shared bookkeeping (under mu)

std::optional<Millis> MultiModelPool::Core::keep_alive(const Slot& s) const {
  if (!s.listed) return Millis(0);
  if (pinned(s)) return std::nullopt;
  std::optional<Millis> ka = s.request_keep_alive ? s.request_keep_alive
                             : s.entry.settings.keep_alive ? s.entry.settings.keep_alive
                                                            : options.keep_alive;
  if (!ka || ka->count() < 0) return std::nullopt;
  return ka;
}

int64_t MultiModelPool::Core::used_bytes() const {
  int64_t used = 0;
  for (const auto& [id, s] : slots) used += s->reserved;
  return used;
}

int MultiModelPool::Core::loaded_count() const {
  int n = 0;
  for (const auto& [id, s] : slots) {
    if (s->state == ModelState::kReady || s->state == ModelState::kUnloading ||
        (s->state == ModelState::kLoading && s->reserved > 0)) {
      ++n;
    }
  }
  return n;
}

int64_t MultiModelPool::Core::pinned_bytes_except(const Slot* except) const {
  int64_t b = 0;
  for (const auto& [id, s] : slots) {
    if (s.get() != except && pinned(*s)) b += s->reserved;
  }
  return b;
}

Status MultiModelPool::Core::never_fits(const Slot& s) const {
  if (!s.estimate) return Status::ok();
  const int64_t need = s.estimate->total();
  const int64_t budget = options.memory_budget;
  const std::string parts = str_cat("weights ", format_bytes(double(s.estimate->weights)), ", KV cache ",
                                    format_bytes(double(s.estimate->kv_cache)), ", workspace ",
                                    format_bytes(double(s.estimate->workspace)));
  if (need > budget) {
    return resource_exhausted(str_cat("The model `", s.entry.id, "` needs ", format_bytes(double(need)), " (", parts,
                                      ") but the memory budget is ", format_bytes(double(budget)),
                                      ", so it can never be loaded. Raise --memory-budget, or lower its "
                                      "context_length or kv_cache_memory."));
  }
  const int64_t pinned_bytes = pinned_bytes_except(&s);
  if (need > budget - pinned_bytes) {
    return resource_exhausted(str_cat("The model `", s.entry.id, "` needs ", format_bytes(double(need)), " (", parts,
                                      ") but only ", format_bytes(double(budget - pinned_bytes)), " of the ",
                                      format_bytes(double(budget)), " memory budget is not held by pinned models."));
  }
  if (options.max_loaded_models > 0) {
    int pinned_loaded = 0;
    for (const auto& [id, o] : slots) {
      if (o.get() != &s && pinned(*o) && o->reserved > 0) ++pinned_loaded;
    }
    if (pinned_loaded >= options.max_loaded_models) {
      return resource_exhausted(str_cat("The model `", s.entry.id, "` cannot be loaded: all ",
                                        options.max_loaded_models, " places (--max-loaded-models) hold pinned models."));
    }
  }
  return Status::ok();
}

ModelLease MultiModelPool::Core::make_lease(const std::shared_ptr<Slot>& slot) {
  slot->in_flight += 1;
  slot->last_used = clock->now();
  slot->last_used_unix = unix_time_seconds();
  auto token = std::make_shared<LeaseToken>();
  token->model = slot->model;
  token->core = weak_from_this();
  token->slot = slot;
  LoadedModel* raw = token->model.get();
  return ModelLease(std::shared_ptr<LoadedModel>(std::move(token), raw));
}

void MultiModelPool::Core::start_load(const std::shared_ptr<Slot>& slot) {
  slot->state = ModelState::kLoading;
  slot->phase = "queued";
  slot->progress = 0;
  slot->load_started = clock->now();
  jobs.push_back({Job::Kind::kLoad, slot, nullptr});
  cv.notify_all();
}

void MultiModelPool::Core::fail_waiters(Slot& s, const Status& error, Deferred* out) {
  for (auto& w : s.waiters) out->push_back([done = std::move(w.done), error] { done(error); });
  s.waiters.clear();
}

ModelStatus MultiModelPool::Core::describe(const Slot& s) const {
  ModelStatus m;
  m.id = s.entry.id;
  m.dir = s.entry.dir.string();
  m.source = std::string(model_source_name(s.entry.source));
  m.state = s.state;
  const SteadyTime now = clock->now();
  if (s.state == ModelState::kLoading) {
    m.loading_phase = s.phase;
    m.loading_progress = s.progress;
  }
  m.memory_bytes = s.reserved;
  m.weights_bytes = s.accounted.weights;
  m.kv_cache_bytes = s.accounted.kv_cache;
  m.workspace_bytes = s.accounted.workspace;
  m.estimated_bytes = s.estimate ? s.estimate->total() : 0;
  m.in_flight = s.in_flight;
  m.last_used = s.last_used_unix;
  m.load_seconds = s.load_seconds;
  m.pinned = pinned(s);
  m.keep_alive = keep_alive(s);
  if (s.state == ModelState::kReady && s.in_flight == 0 && m.keep_alive) {
    m.idle_unload_in_seconds = std::max(0.0, seconds_between(now, s.last_used + *m.keep_alive));
  }
  if (s.state == ModelState::kFailed) {
    m.error = s.error.message();
    m.retry_in_seconds = std::max(0.0, seconds_between(now, s.retry_at));
  } else if (s.state == ModelState::kUnloaded && !s.estimate_error.empty()) {
    m.error = s.estimate_error;
  }
  m.loads = s.loads;
  m.failures = s.failures;
  m.evictions = s.evictions;
  return m;
}

void MultiModelPool::Core::apply_registry(std::vector<ModelEntry> entries) {
  std::vector<Plan> plans;
  plans.reserve(entries.size());
  for (const auto& e : entries) plans.push_back(plan_model(e, options, entries.size() == 1));
  std::lock_guard<std::mutex> lock(mu);
  std::set<std::string> seen;
  order.clear();
  for (size_t i = 0; i < entries.size(); ++i) {
    const std::string id = entries[i].id;
    seen.insert(id);
    order.push_back(id);
    auto& slot = slots[id];
    if (!slot) slot = std::make_shared<Slot>();
    slot->entry = std::move(entries[i]);
    slot->listed = true;
    // A loaded model keeps the options it was loaded with; the new ones apply to its next load.
    if (slot->state == ModelState::kUnloaded || slot->state == ModelState::kFailed) {
      slot->engine = plans[i].engine;
      slot->estimate = plans[i].estimate;
      slot->estimate_error = plans[i].error;
    }
  }
  for (auto it = slots.begin(); it != slots.end();) {
    Slot& s = *it->second;
    if (seen.count(it->first) != 0) {
      ++it;
      continue;
    }
    s.listed = false;
    if ((s.state == ModelState::kUnloaded || s.state == ModelState::kFailed) && s.waiters.empty()) {
      it = slots.erase(it);
      continue;
    }
    if (s.state == ModelState::kReady && s.in_flight == 0) jobs.push_back({Job::Kind::kUnload, it->second, nullptr});
    ++it;
  }
  cv.notify_all();
}

void MultiModelPool::Core::replan(std::unique_lock<std::mutex>& lock, Slot& s) {
  const ModelEntry entry = s.entry;
  const bool sole = order.size() == 1;
  lock.unlock();
  Plan p = plan_model(entry, options, sole);
  lock.lock();
  s.engine = p.engine;
  s.estimate = p.estimate;
  s.estimate_error = p.error;
}

void MultiModelPool::Core::flush(std::unique_lock<std::mutex>& lock) {
  if (deferred.empty()) return;
  Deferred run_now;
  run_now.swap(deferred);
  lock.unlock();
  for (auto& fn : run_now) fn();
  run_now.clear();
  lock.lock();
}

void MultiModelPool::Core::release(const std::shared_ptr<Slot>& slot) {
  std::lock_guard<std::mutex> lock(mu);
  slot->in_flight -= 1;
  slot->last_used = clock->now();
  slot->last_used_unix = unix_time_seconds();
  if (slot->in_flight == 0 && slot->state == ModelState::kReady) {
    auto ka = keep_alive(*slot);
    if (slot->unload_requested || (ka && ka->count() == 0)) jobs.push_back({Job::Kind::kUnload, slot, nullptr});
  }
  cv.notify_all();
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
                              return static_cast<double>(c->used_bytes());
                            });
  options.metrics->gauge_fn("kiln_pool_loaded_models", "Models loading, loaded or unloading.", {}, [weak] {
    auto c = weak.lock();
    if (!c) return 0.0;
    std::lock_guard<std::mutex> lock(c->mu);
    return static_cast<double>(c->loaded_count());
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
  core->clock = core->options.clock != nullptr ? core->options.clock : &SystemClock::instance();
  KILN_ASSIGN_OR_RETURN(std::vector<ModelEntry> entries, core->options.source());
  core->apply_registry(std::move(entries));
  {
    std::lock_guard<std::mutex> lock(core->mu);
    for (const std::string& id : core->options.preload) {
      auto it = core->slots.find(id);
      if (it == core->slots.end()) {
        std::string known;
        for (const auto& k : core->order) known += str_cat(known.empty() ? "" : ", ", k);
        return not_found(str_cat("--preload: no model `", id, "` (models: ", known.empty() ? "none" : known, ")"));
      }
      it->second->preload = true;
    }
    for (const auto& id : core->order) {
      auto& slot = core->slots[id];
      if (!slot->preload && !slot->entry.settings.pinned) continue;
      slot->preload = true;
      slot->preload_pending = true;
      core->preloads_pending += 1;
      core->start_load(slot);
    }
  }
  core->register_pool_metrics();
  core->thread = std::thread([c = core.get()] { c->run(); });
  return std::unique_ptr<MultiModelPool>(new MultiModelPool(std::move(core)));
}

MultiModelPool::~MultiModelPool() { shutdown(); }

void MultiModelPool::acquire(std::string_view model_id, std::function<void(Result<ModelLease>)> done) {
  acquire(model_id, AcquireOptions{}, std::move(done));
}

void MultiModelPool::acquire(std::string_view model_id, const AcquireOptions& options,
                             std::function<void(Result<ModelLease>)> done) {
  Core& c = *core_;
  Result<ModelLease> now_result = model_not_found(model_id);
  {
    std::lock_guard<std::mutex> lock(c.mu);
    auto it = c.slots.find(std::string(model_id));
    if (c.stopping) {
      now_result = unavailable("kiln is shutting down");
    } else if (it != c.slots.end() && it->second->listed) {
      const std::shared_ptr<Slot>& slot = it->second;
      Slot& s = *slot;
      if (options.keep_alive) s.request_keep_alive = options.keep_alive;
      switch (s.state) {
        case ModelState::kReady:
          if (!s.unload_requested) {
            now_result = c.make_lease(slot);
            break;
          }
          s.waiters.push_back({std::move(done)});
          return;
        case ModelState::kLoading:
        case ModelState::kUnloading:
          s.waiters.push_back({std::move(done)});
          return;
        case ModelState::kFailed:
          if (c.clock->now() < s.retry_at) {
            const double left = seconds_between(c.clock->now(), s.retry_at);
            now_result = Status(s.error.code(), str_cat(s.error.message(), " (retry after ",
                                                        static_cast<int64_t>(left + 0.999), " s)"));
            break;
          }
          [[fallthrough]];
        case ModelState::kUnloaded: {
          Status never = c.never_fits(s);
          if (!never.is_ok()) {
            now_result = never;
            break;
          }
          s.waiters.push_back({std::move(done)});
          c.start_load(slot);
          return;
        }
      }
    }
  }
  done(std::move(now_result));
}

std::vector<ModelInfo> MultiModelPool::list() const {
  const Core& c = *core_;
  std::lock_guard<std::mutex> lock(c.mu);
  std::vector<ModelInfo> out;
  for (const auto& id : c.order) {
    auto it = c.slots.find(id);
    if (it == c.slots.end() || !it->second->listed) continue;
    const Slot& s = *it->second;
    ModelInfo i;
    i.id = s.entry.id;
    i.created = s.entry.created;
    i.owned_by = s.entry.owned_by;
    i.description = s.entry.description;
    i.max_model_len = s.model ? s.model->max_model_len : s.engine.max_model_len;
    i.loaded = s.state == ModelState::kReady;
    out.push_back(std::move(i));
  }
  return out;
}

PoolStatus MultiModelPool::status() const {
  const Core& c = *core_;
  std::lock_guard<std::mutex> lock(c.mu);
  PoolStatus p;
  p.budget_bytes = c.options.memory_budget;
  p.used_bytes = c.used_bytes();
  p.max_loaded_models = c.options.max_loaded_models;
  p.loaded = c.loaded_count();
  p.device = runtime::device_string({c.options.defaults.engine.device, c.options.defaults.engine.device_index});
  for (const auto& id : c.order) {
    auto it = c.slots.find(id);
    if (it != c.slots.end()) p.models.push_back(c.describe(*it->second));
  }
  // Models a rescan dropped that are still loaded come last.
  for (const auto& [id, s] : c.slots) {
    if (!s->listed) p.models.push_back(c.describe(*s));
  }
  return p;
}

std::optional<ModelStatus> MultiModelPool::model_status(std::string_view model_id) const {
  const Core& c = *core_;
  std::lock_guard<std::mutex> lock(c.mu);
  auto it = c.slots.find(std::string(model_id));
  if (it == c.slots.end()) return std::nullopt;
  return c.describe(*it->second);
}

void MultiModelPool::load(std::string_view model_id, std::optional<bool> pinned,
                          std::function<void(Result<ModelStatus>)> done) {
  Core& c = *core_;
  const std::string id(model_id);
  {
    std::lock_guard<std::mutex> lock(c.mu);
    auto it = c.slots.find(id);
    if (it != c.slots.end() && it->second->listed) {
      Slot& s = *it->second;
      if (pinned) s.admin_pin = *pinned;
      // An explicit load does not wait out the back-off of a failed one.
      if (s.state == ModelState::kFailed) s.retry_at = c.clock->now();
    }
  }
  std::weak_ptr<Core> weak = core_;
  acquire(id, [weak, id, done = std::move(done)](Result<ModelLease> lease) {
    if (!lease.is_ok()) return done(lease.status());
    { ModelLease drop = std::move(lease).value(); }
    auto core = weak.lock();
    if (!core) return done(unavailable("kiln is shutting down"));
    std::unique_lock<std::mutex> lock(core->mu);
    auto it = core->slots.find(id);
    if (it == core->slots.end()) return done(model_not_found(id));
    ModelStatus st = core->describe(*it->second);
    lock.unlock();
    done(std::move(st));
  });
}

void MultiModelPool::unload(std::string_view model_id, std::function<void(Result<ModelStatus>)> done) {
  Core& c = *core_;
  Result<ModelStatus> now_result = model_not_found(model_id);
  {
    std::lock_guard<std::mutex> lock(c.mu);
    auto it = c.slots.find(std::string(model_id));
    if (it != c.slots.end()) {
      Slot& s = *it->second;
      switch (s.state) {
        case ModelState::kUnloaded:
        case ModelState::kFailed:
          now_result = c.describe(s);
          break;
        case ModelState::kLoading:
          now_result = failed_precondition(str_cat("The model `", s.entry.id,
                                                   "` is loading; unload it once it is ready."));
          break;
        case ModelState::kReady:
          s.unload_requested = true;
          if (s.in_flight == 0) c.jobs.push_back({Job::Kind::kUnload, it->second, nullptr});
          c.cv.notify_all();
          [[fallthrough]];
        case ModelState::kUnloading:
          s.unload_waiters.push_back(std::move(done));
          return;
      }
    }
  }
  done(std::move(now_result));
}

void MultiModelPool::rescan(std::function<void(Result<int64_t>)> done) {
  Core& c = *core_;
  {
    std::lock_guard<std::mutex> lock(c.mu);
    if (!c.stopping) {
      c.jobs.push_back({Job::Kind::kRescan, nullptr, std::move(done)});
      c.cv.notify_all();
      return;
    }
  }
  done(unavailable("kiln is shutting down"));
}

void MultiModelPool::expire_idle() {
  Core& c = *core_;
  std::unique_lock<std::mutex> lock(c.mu);
  c.expire_idle_locked(lock);
  c.flush(lock);
}

Status MultiModelPool::wait_for_preloads() {
  Core& c = *core_;
  std::unique_lock<std::mutex> lock(c.mu);
  c.cv.wait(lock, [&] { return c.preloads_pending == 0 || c.stopping; });
  return c.preload_error;
}

void MultiModelPool::shutdown() {
  Core& c = *core_;
  Core::Deferred deferred;
  {
    std::lock_guard<std::mutex> lock(c.mu);
    if (c.stopping && !c.thread.joinable()) return;
    c.stopping = true;
    for (auto& [id, s] : c.slots) {
      c.fail_waiters(*s, unavailable("kiln is shutting down"), &deferred);
      for (auto& w : s->unload_waiters) deferred.push_back([w = std::move(w)] { w(unavailable("kiln is shutting down")); });
      s->unload_waiters.clear();
    }
    c.cv.notify_all();
  }
  if (c.thread.joinable()) c.thread.join();
  for (auto& fn : deferred) fn();
  std::vector<std::shared_ptr<LoadedModel>> models;
  {
    std::lock_guard<std::mutex> lock(c.mu);
    for (auto& [id, s] : c.slots) {
      if (s->model) models.push_back(s->model);
    }
  }
  // Requests still running end with kUnavailable; the models go when their last lease does.
  for (auto& m : models) {
    if (m->worker) m->worker->stop();
  }
}

}  // namespace kiln::pool
