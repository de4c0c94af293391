// The pool thread: loads (single flight, after making room), unloads (evictions, keep-alive,
// admin requests) and rescans. It holds the pool's mutex except while it reads a checkpoint or
// stops a worker.
#include <algorithm>
#include <cmath>

#include "kiln/core/log.h"
#include "kiln/core/str.h"
#include "kiln/pool/model_loader.h"
#include "kiln/pool/pool_core.h"

namespace kiln::pool {

namespace {

// A failed load, as the waiting requests see it: the model and the cause. Running out of memory
// stays a 503; anything else (a corrupt or missing checkpoint, an unsupported architecture) is
// the server's problem, a 500, never the 400 or 404 the cause alone would map to.
Status load_error(const std::string& id, const Status& cause) {
  const StatusCode code =
      cause.code() == StatusCode::kResourceExhausted ? StatusCode::kResourceExhausted : StatusCode::kInternal;
  return Status(code, str_cat("The model `", id, "` could not be loaded: ", cause.message()));
}

Status with_retry(const Status& s, Millis after) {
  const int64_t secs = std::max<int64_t>(1, (after.count() + 999) / 1000);
  return Status(s.code(), str_cat(s.message(), " (retry after ", secs, " s)"));
}

void apply_sampling_defaults(const ModelSettings& st, model::GenerationConfig* g) {
  if (st.temperature) g->temperature = st.temperature;
  if (st.top_p) g->top_p = st.top_p;
  if (st.top_k) g->top_k = st.top_k;
  if (st.min_p) g->min_p = st.min_p;
  if (st.repetition_penalty) g->repetition_penalty = st.repetition_penalty;
  // A configured temperature means sampling, whatever generation_config.json's do_sample says.
  if (st.temperature) g->do_sample = *st.temperature > 0.0;
}

}  // namespace

void MultiModelPool::Core::run() {
  std::unique_lock<std::mutex> lock(mu);
  while (!stopping) {
    if (jobs.empty()) cv.wait_for(lock, std::chrono::seconds(1));
    if (stopping) break;
    expire_idle_locked(lock);
    flush(lock);
    if (stopping || jobs.empty()) continue;
    Job job = std::move(jobs.front());
    jobs.pop_front();
    switch (job.kind) {
      case Job::Kind::kLoad:
        run_load(lock, job.slot);
        break;
      case Job::Kind::kUnload: {
        Slot& s = *job.slot;
        if (s.state != ModelState::kReady || s.in_flight != 0) break;
        auto ka = keep_alive(s);
        if (s.unload_requested || !s.listed || (ka && ka->count() == 0)) {
          log_info("unloading model `", s.entry.id, "`",
                   s.unload_requested ? " (asked for)" : !s.listed ? " (no longer in the registry)" : " (keep_alive 0)");
          unload_now(lock, job.slot);
        }
        break;
      }
      case Job::Kind::kRescan: {
        lock.unlock();
        Result<std::vector<ModelEntry>> entries = options.source();
        int64_t n = 0;
        if (entries.is_ok()) {
          n = static_cast<int64_t>(entries->size());
          apply_registry(std::move(entries).value());
          log_info("model registry rescanned: ", n, " models");
        } else {
          log_error("model registry rescan failed: ", entries.status().message());
        }
        lock.lock();
        if (job.rescan_done) {
          Status st = entries.status();
          deferred.push_back([done = std::move(job.rescan_done), st, n] {
            if (st.is_ok()) done(n);
            else done(st);
          });
        }
        break;
      }
    }
    flush(lock);
  }
}

void MultiModelPool::Core::run_load(std::unique_lock<std::mutex>& lock, const std::shared_ptr<Slot>& slot) {
  Slot& s = *slot;
  if (s.state != ModelState::kLoading) return;
  const std::string id = s.entry.id;
  auto finish_preload = [&](const Status& st) {
    if (!s.preload_pending) return;
    s.preload_pending = false;
    preloads_pending -= 1;
    if (!st.is_ok() && preload_error.is_ok()) preload_error = st;
  };

  if (!s.estimate) replan(lock, s);
  if (stopping) return;
  Status refused;
  if (!s.estimate) {
    refused = load_error(id, Status(StatusCode::kInternal, s.estimate_error));
  } else {
    refused = never_fits(s);
  }
  if (!refused.is_ok()) {
    // Nothing was loaded: no back-off, but the same answer comes at once next time.
    log_warn("model `", id, "`: ", refused.message());
    s.state = s.estimate ? ModelState::kUnloaded : ModelState::kFailed;
    if (!s.estimate) {
      s.error = refused;
      s.retry_at = clock->now() + options.failure_backoff;
      refused = with_retry(refused, options.failure_backoff);
    }
    fail_waiters(s, refused, &deferred);
    finish_preload(refused);
    cv.notify_all();
    return;
  }

  const int64_t need = s.estimate->total();
  s.phase = "waiting for memory";
  Status room = make_room(lock, slot, need, /*counts_as_new=*/true, clock->now() + options.room_wait);
  if (stopping) return;
  if (!room.is_ok()) {
    log_warn("model `", id, "` not loaded: ", room.message());
    s.state = ModelState::kUnloaded;
    fail_waiters(s, room, &deferred);
    finish_preload(room);
    cv.notify_all();
    return;
  }
  s.reserved = need;
  s.phase = "loading";
  s.progress = 0.05;

  ModelLoadOptions lo = options.defaults;
  lo.dir = s.entry.dir;
  lo.served_name = id;
  lo.engine = s.engine;
  lo.owned_by = s.entry.owned_by;
  lo.description = s.entry.description;
  const ModelSettings settings = s.entry.settings;
  const int64_t created = s.entry.created;
  const ModelMemory estimate = *s.estimate;
  log_info("loading model `", id, "` from ", lo.dir.string(), " (reserved ", format_bytes(double(need)), " of ",
           format_bytes(double(options.memory_budget)), ", ", format_bytes(double(used_bytes())), " in use)");
  const auto wall_start = std::chrono::steady_clock::now();
  std::weak_ptr<Slot> weak_slot = slot;
  lock.unlock();
  Result<LoadResult> loaded = load_model_measured(lo, [this, weak_slot](std::string_view phase, double f) {
    std::lock_guard<std::mutex> g(mu);
    if (auto sl = weak_slot.lock()) {
      sl->phase = std::string(phase);
      sl->progress = 0.05 + 0.95 * f;
    }
  });
  if (loaded.is_ok()) {
    apply_sampling_defaults(settings, &loaded->model->generation);
    if (created > 0) loaded->model->created = created;
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  lock.lock();

  Status failure;
  if (!loaded.is_ok()) {
    failure = load_error(id, loaded.status());
  } else {
    const ModelMemory accounted = accounted_memory(loaded->memory, estimate);
    const int64_t extra = accounted.total() - s.reserved;
    if (extra > 0) {
      // It took more than estimated: make room for the difference without waiting, or give up.
      Status more = make_room(lock, slot, extra, /*counts_as_new=*/false, clock->now());
      if (!more.is_ok()) {
        failure = resource_exhausted(str_cat("The model `", id, "` takes ", format_bytes(double(accounted.total())),
                                             " once loaded (estimated ", format_bytes(double(s.reserved)),
                                             "), more than the memory budget leaves: ", more.message()));
      }
    }
    if (failure.is_ok()) {
      s.accounted = accounted;
      s.reserved = accounted.total();
    }
  }
  if (!failure.is_ok()) {
    std::shared_ptr<LoadedModel> dropped = loaded.is_ok() ? std::move(loaded->model) : nullptr;
    if (dropped) {
      lock.unlock();
      if (dropped->worker) dropped->worker->stop();
      dropped.reset();
      lock.lock();
    }
    s.reserved = 0;
    s.accounted = {};
    s.state = ModelState::kFailed;
    s.failures += 1;
    s.failures_in_row += 1;
    const double factor = std::pow(2.0, std::min(s.failures_in_row - 1, 20));
    const Millis backoff = std::min(
        options.max_failure_backoff, Millis(static_cast<int64_t>(static_cast<double>(options.failure_backoff.count()) * factor)));
    s.error = failure;
    s.retry_at = clock->now() + backoff;
    log_error(failure.message(), "; retrying after ", format_duration(backoff));
    if (options.metrics != nullptr) {
      options.metrics->counter("kiln_model_load_failures_total", "Model loads that failed.", {{"model", id}}).inc();
    }
    fail_waiters(s, with_retry(failure, backoff), &deferred);
    finish_preload(failure);
    cv.notify_all();
    return;
  }

  s.model = std::move(loaded->model);
  s.state = ModelState::kReady;
  s.phase.clear();
  s.progress = 1.0;
  s.error = Status::ok();
  s.failures_in_row = 0;
  s.loads += 1;
  s.load_seconds = seconds;
  s.last_used = clock->now();
  s.last_used_unix = unix_time_seconds();
  log_info("model `", id, "` ready in ", str_cat(std::llround(seconds * 1000.0)), " ms: weights ",
           format_bytes(double(s.accounted.weights)), ", KV cache ", format_bytes(double(s.accounted.kv_cache)),
           ", workspace ", format_bytes(double(s.accounted.workspace)), "; pool ", format_bytes(double(used_bytes())),
           " of ", format_bytes(double(options.memory_budget)));
  if (options.metrics != nullptr) {
    register_model_metrics(*options.metrics, s.model);
    options.metrics->counter("kiln_model_loads_total", "Models loaded.", {{"model", id}}).inc();
    options.metrics
        ->histogram("kiln_model_load_seconds", "Time to load a model.", {0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300}, {})
        .observe(seconds);
  }
  for (auto& w : s.waiters) {
    deferred.push_back([done = std::move(w.done), lease = make_lease(slot)]() mutable { done(std::move(lease)); });
  }
  s.waiters.clear();
  finish_preload(Status::ok());
  cv.notify_all();
}

Status MultiModelPool::Core::make_room(std::unique_lock<std::mutex>& lock, const std::shared_ptr<Slot>& slot,
                                       int64_t bytes, bool counts_as_new, SteadyTime deadline) {
  const std::string& id = slot->entry.id;
  while (true) {
    if (stopping) return unavailable("kiln is shutting down");
    const bool bytes_ok = used_bytes() + bytes <= options.memory_budget;
    const bool count_ok = !counts_as_new || options.max_loaded_models == 0 || loaded_count() < options.max_loaded_models;
    if (bytes_ok && count_ok) return Status::ok();

    // The least recently used idle model goes first.
    std::shared_ptr<Slot> victim;
    bool busy = false;
    for (const auto& [vid, v] : slots) {
      if (v == slot || pinned(*v)) continue;
      if (v->state == ModelState::kUnloading) busy = true;
      if (v->state != ModelState::kReady) continue;
      if (v->in_flight > 0) {
        busy = true;
        continue;
      }
      if (!victim || v->last_used < victim->last_used) victim = v;
    }
    if (victim) {
      victim->evictions += 1;
      log_info("evicting model `", victim->entry.id, "` (idle, least recently used) to make room for `", id, "`");
      if (options.metrics != nullptr) {
        options.metrics->counter("kiln_model_evictions_total", "Models unloaded to make room for another.",
                                 {{"model", victim->entry.id}})
            .inc();
      }
      unload_now(lock, victim);
      continue;
    }
    const std::string why = !bytes_ok ? str_cat(format_bytes(double(bytes)), " more than the ",
                                                format_bytes(double(options.memory_budget - used_bytes())), " free of the ",
                                                format_bytes(double(options.memory_budget)), " memory budget")
                                      : str_cat("a place among the ", options.max_loaded_models,
                                                " loaded models (--max-loaded-models)");
    if (!busy) {
      return resource_exhausted(str_cat("The model `", id, "` needs ", why,
                                        ", and every loaded model is pinned or loading."));
    }
    if (clock->now() >= deadline) {
      return unavailable(str_cat("The model `", id, "` needs ", why,
                                 ", and the models holding it are still serving requests (retry after 5 s)"));
    }
    // Eviction waits for a lease to be released (or a model to finish unloading).
    cv.wait_for(lock, std::chrono::milliseconds(100));
  }
}

void MultiModelPool::Core::unload_now(std::unique_lock<std::mutex>& lock, const std::shared_ptr<Slot>& slot) {
  Slot& s = *slot;
  s.state = ModelState::kUnloading;
  std::shared_ptr<LoadedModel> model = std::move(s.model);
  const std::string id = s.entry.id;
  lock.unlock();
  if (options.metrics != nullptr) options.metrics->remove_callbacks({{"model", id}});
  if (model && model->worker) model->worker->stop();
  // The last reference (every lease is gone): the weights and KV cache are freed here.
  model.reset();
  lock.lock();
  s.reserved = 0;
  s.accounted = {};
  s.state = ModelState::kUnloaded;
  s.unload_requested = false;
  s.request_keep_alive.reset();
  log_info("model `", id, "` unloaded; pool ", format_bytes(double(used_bytes())), " of ",
           format_bytes(double(options.memory_budget)));
  for (auto& w : s.unload_waiters) {
    deferred.push_back([w = std::move(w), st = describe(s)] { w(st); });
  }
  s.unload_waiters.clear();
  if (!s.waiters.empty() && !stopping) {
    start_load(slot);
  } else if (!s.listed) {
    slots.erase(id);
  }
  cv.notify_all();
}

void MultiModelPool::Core::expire_idle_locked(std::unique_lock<std::mutex>& lock) {
  while (!stopping) {
    const SteadyTime now = clock->now();
    std::shared_ptr<Slot> due;
    for (const auto& [id, s] : slots) {
      if (s->state != ModelState::kReady || s->in_flight != 0) continue;
      auto ka = keep_alive(*s);
      if (ka && now - s->last_used >= *ka) {
        due = s;
        break;
      }
    }
    if (!due) return;
    log_info("unloading model `", due->entry.id, "`: idle for ", format_duration(*keep_alive(*due)), " (keep_alive)");
    unload_now(lock, due);
  }
}

}  // namespace kiln::pool
