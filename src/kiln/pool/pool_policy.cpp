#include "kiln/pool/pool_policy.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <set>

#include "kiln/core/str.h"

namespace kiln::pool {

namespace {

// A failed load, as the waiting requests see it: the model and the cause. Running out of memory
// stays a 503; anything else (a corrupt or missing checkpoint, an unsupported architecture) is
// the server's problem, a 500, never the 400 or 404 the cause alone would map to.
Status load_error(std::string_view id, const Status& cause) {
  const StatusCode code =
      cause.code() == StatusCode::kResourceExhausted ? StatusCode::kResourceExhausted : StatusCode::kInternal;
  return Status(code, str_cat("The model `", id, "` could not be loaded: ", cause.message()));
}

Status with_retry(const Status& s, Millis after) {
  const int64_t secs = std::max<int64_t>(1, (after.count() + 999) / 1000);
  return Status(s.code(), str_cat(s.message(), " (retry after ", secs, " s)"));
}

PoolAction action(PoolAction::Kind kind, std::string_view id) {
  PoolAction a;
  a.kind = kind;
  a.id = std::string(id);
  return a;
}

}  // namespace

PoolPolicy::PoolPolicy(PolicyOptions options) : options_(std::move(options)) {}

PoolPolicy::Record* PoolPolicy::find(std::string_view id) {
  auto it = records_.find(id);
  return it == records_.end() ? nullptr : &it->second;
}

const PoolPolicy::Record* PoolPolicy::find(std::string_view id) const {
  auto it = records_.find(id);
  return it == records_.end() ? nullptr : &it->second;
}

bool PoolPolicy::knows(std::string_view id) const { return find(id) != nullptr; }

const ModelEntry* PoolPolicy::entry(std::string_view id) const {
  const Record* r = find(id);
  return r ? &r->entry : nullptr;
}

const runtime::EngineOptions* PoolPolicy::engine_options(std::string_view id) const {
  const Record* r = find(id);
  return r ? &r->engine : nullptr;
}

bool PoolPolicy::pinned(const Record& r) const { return r.admin_pin.value_or(r.preload || r.entry.settings.pinned); }

std::optional<Millis> PoolPolicy::keep_alive(const Record& r) const {
  if (!r.listed) return Millis(0);
  if (pinned(r)) return std::nullopt;
  std::optional<Millis> ka = r.request_keep_alive       ? r.request_keep_alive
                             : r.entry.settings.keep_alive ? r.entry.settings.keep_alive
                                                           : options_.keep_alive;
  if (!ka || ka->count() < 0) return std::nullopt;
  return ka;
}

int64_t PoolPolicy::used_bytes() const {
  int64_t used = 0;
  for (const auto& [id, r] : records_) used += r.reserved;
  return used;
}

int PoolPolicy::loaded_count() const {
  int n = 0;
  for (const auto& [id, r] : records_) {
    if (r.state == ModelState::kReady || r.state == ModelState::kUnloading ||
        (r.state == ModelState::kLoading && r.reserved > 0)) {
      ++n;
    }
  }
  return n;
}

Status PoolPolicy::never_fits(const Record& r) const {
  if (!r.estimate) return Status::ok();
  const int64_t need = r.estimate->total();
  const int64_t budget = options_.memory_budget;
  const std::string parts = str_cat("weights ", format_bytes(double(r.estimate->weights)), ", KV cache ",
                                    format_bytes(double(r.estimate->kv_cache)), ", workspace ",
                                    format_bytes(double(r.estimate->workspace)));
  if (need > budget) {
    return resource_exhausted(str_cat("The model `", r.entry.id, "` needs ", format_bytes(double(need)), " (", parts,
                                      ") but the memory budget is ", format_bytes(double(budget)),
                                      ", so it can never be loaded. Raise --memory-budget, or lower its "
                                      "context_length or kv_cache_memory."));
  }
  int64_t pinned_bytes = 0;
  int pinned_loaded = 0;
  for (const auto& [id, o] : records_) {
    if (&o == &r || !pinned(o)) continue;
    pinned_bytes += o.reserved;
    if (o.reserved > 0) ++pinned_loaded;
  }
  if (need > budget - pinned_bytes) {
    return resource_exhausted(str_cat("The model `", r.entry.id, "` needs ", format_bytes(double(need)), " (", parts,
                                      ") but only ", format_bytes(double(budget - pinned_bytes)), " of the ",
                                      format_bytes(double(budget)), " memory budget is not held by pinned models."));
  }
  if (options_.max_loaded_models > 0 && pinned_loaded >= options_.max_loaded_models) {
    return resource_exhausted(str_cat("The model `", r.entry.id, "` cannot be loaded: all ", options_.max_loaded_models,
                                      " places (--max-loaded-models) hold pinned models."));
  }
  return Status::ok();
}

void PoolPolicy::changed(Record& r, PoolActions* out) {
  r.revision += 1;
  // One notice per model per event is enough: watchers read the status as it is afterwards.
  for (const auto& a : *out) {
    if (a.kind == PoolAction::Kind::kChanged && a.id == r.entry.id) return;
  }
  out->push_back(action(PoolAction::Kind::kChanged, r.entry.id));
}

void PoolPolicy::refuse_waiters(Record& r, const Status& status, PoolActions* out) {
  if (r.waiters.empty()) return;
  PoolAction a = action(PoolAction::Kind::kRefuse, r.entry.id);
  a.tickets = std::move(r.waiters);
  a.status = status;
  r.waiters.clear();
  out->push_back(std::move(a));
}

void PoolPolicy::start_load(Record& r, SteadyTime now, PoolActions* out) {
  r.state = ModelState::kLoading;
  r.progress = 0;
  if (!r.estimate) {
    // config.json could not be read before: read it again first.
    r.step = Step::kPlanning;
    r.phase = "queued";
    out->push_back(action(PoolAction::Kind::kPlan, r.entry.id));
  } else {
    r.step = Step::kWaitingRoom;
    r.phase = "waiting for memory";
    r.room_deadline = now + options_.room_wait;
    r.room_order = next_room_order_++;
  }
  changed(r, out);
}

void PoolPolicy::begin_unload(Record& r, PoolAction::Reason reason, PoolActions* out) {
  r.state = ModelState::kUnloading;
  r.step = Step::kNone;
  PoolAction a = action(PoolAction::Kind::kUnload, r.entry.id);
  a.reason = reason;
  out->push_back(std::move(a));
  changed(r, out);
}

void PoolPolicy::become_ready(Record& r, SteadyTime now, PoolActions* out) {
  r.state = ModelState::kReady;
  r.step = Step::kNone;
  r.phase.clear();
  r.progress = 1.0;
  r.error = Status::ok();
  r.failures_in_row = 0;
  r.loads += 1;
  r.last_used = now;
  r.used = true;
  out->push_back(action(PoolAction::Kind::kReady, r.entry.id));
  if (!r.waiters.empty()) {
    PoolAction g = action(PoolAction::Kind::kGrant, r.entry.id);
    r.in_flight += static_cast<int64_t>(r.waiters.size());
    g.tickets = std::move(r.waiters);
    r.waiters.clear();
    out->push_back(std::move(g));
  }
  changed(r, out);
}

void PoolPolicy::fail_load(Record& r, const Status& failure, SteadyTime now, PoolActions* out) {
  r.state = ModelState::kFailed;
  r.step = Step::kNone;
  r.reserved = 0;
  r.accounted = {};
  r.max_model_len = 0;
  r.failures += 1;
  r.failures_in_row += 1;
  const double factor = std::pow(2.0, std::min(r.failures_in_row - 1, 20));
  const Millis backoff =
      std::min(options_.max_failure_backoff,
               Millis(static_cast<int64_t>(static_cast<double>(options_.failure_backoff.count()) * factor)));
  r.error = failure;
  r.retry_at = now + backoff;
  PoolAction f = action(PoolAction::Kind::kFailed, r.entry.id);
  f.status = failure;
  out->push_back(std::move(f));
  refuse_waiters(r, with_retry(failure, backoff), out);
  changed(r, out);
}

void PoolPolicy::unload_if_due(Record& r, PoolActions* out) {
  if (r.state != ModelState::kReady || r.in_flight != 0 || stopping_) return;
  const auto ka = keep_alive(r);
  if (r.unload_requested) {
    begin_unload(r, PoolAction::Reason::kAsked, out);
  } else if (!r.listed) {
    begin_unload(r, PoolAction::Reason::kDropped, out);
  } else if (ka && ka->count() == 0) {
    begin_unload(r, PoolAction::Reason::kKeepAlive, out);
  }
}

// Loads waiting for room, oldest first (a loaded model that took more than its reservation before
// them: it already holds memory). Each starts when it fits. The oldest one that does not fit
// evicts idle models, least recently used first, until the unloads in progress will cover it, and
// claims what they free; when even that is not enough it waits for busy models (requests in
// flight, loads running) until its room_wait deadline, and the loads behind it may still start in
// what is free now. Only the oldest evicts, so two waiting loads never empty the pool for each other.
void PoolPolicy::pump(SteadyTime now, PoolActions* out) {
  if (stopping_) return;
  std::vector<Record*> waiting;
  int64_t unloading_bytes = 0;
  int unloading_places = 0;
  for (auto& [id, r] : records_) {
    if (r.state == ModelState::kLoading && (r.step == Step::kWaitingRoom || r.step == Step::kWaitingExtra)) {
      waiting.push_back(&r);
    }
    if (r.state == ModelState::kUnloading) {
      unloading_bytes += r.reserved;
      unloading_places += 1;
    }
  }
  std::sort(waiting.begin(), waiting.end(), [](const Record* a, const Record* b) {
    const bool ea = a->step == Step::kWaitingExtra, eb = b->step == Step::kWaitingExtra;
    if (ea != eb) return ea;
    return a->room_order < b->room_order;
  });
  const int64_t budget = options_.memory_budget;
  int64_t free = budget - used_bytes();
  int free_places = options_.max_loaded_models > 0 ? options_.max_loaded_models - loaded_count() : INT_MAX / 2;
  bool head_seen = false;
  for (Record* rp : waiting) {
    Record& r = *rp;
    const bool extra = r.step == Step::kWaitingExtra;
    const int64_t need = extra ? r.extra_need : r.estimate->total();
    const int place = extra ? 0 : 1;
    if (need <= free && place <= free_places) {
      free -= need;
      free_places -= place;
      r.reserved += need;
      if (extra) {
        become_ready(r, now, out);
      } else {
        r.step = Step::kLoading;
        r.phase = "loading";
        r.progress = 0.05;
        out->push_back(action(PoolAction::Kind::kLoad, r.entry.id));
        changed(r, out);
      }
      continue;
    }
    auto refuse_load = [&](const Status& refused) {
      r.state = ModelState::kUnloaded;
      r.step = Step::kNone;
      r.phase.clear();
      refuse_waiters(r, refused, out);
      PoolAction f = action(PoolAction::Kind::kFailed, r.entry.id);
      f.status = refused;
      out->push_back(std::move(f));
      changed(r, out);
    };
    const std::string why_place =
        str_cat("a place among the ", options_.max_loaded_models, " loaded models (--max-loaded-models)");
    if (head_seen) {
      if (!extra && now >= r.room_deadline) {
        refuse_load(unavailable(str_cat("The model `", r.entry.id, "` waited ", format_duration(options_.room_wait),
                                        " for room in the memory budget (retry after 5 s)")));
      }
      continue;
    }
    head_seen = true;
    auto short_bytes = [&] { return need - free - unloading_bytes; };
    auto short_places = [&] { return place > free_places + unloading_places; };
    while (short_bytes() > 0 || short_places()) {
      Record* victim = nullptr;
      for (auto& [vid, v] : records_) {
        if (&v == &r || pinned(v) || v.state != ModelState::kReady || v.in_flight > 0) continue;
        if (!victim || v.last_used < victim->last_used) victim = &v;
      }
      if (victim == nullptr) break;
      victim->evictions += 1;
      unloading_bytes += victim->reserved;
      unloading_places += 1;
      begin_unload(*victim, PoolAction::Reason::kEvicted, out);
    }
    if (short_bytes() <= 0 && !short_places()) {
      // The unloads in progress will make room for it: what they free is its own.
      free = std::max<int64_t>(0, std::min(free, free + unloading_bytes - need));
      free_places = std::max(0, std::min(free_places, free_places + unloading_places - place));
      continue;
    }
    const std::string why =
        short_bytes() > 0
            ? str_cat(format_bytes(double(need)), " more than the ", format_bytes(double(std::max<int64_t>(0, free))),
                      " free of the ", format_bytes(double(budget)), " memory budget")
            : why_place;
    if (extra) {
      // A model that took more than its estimate does not wait for busy models: it gives up.
      r.fail_after_unload = resource_exhausted(
          str_cat("The model `", r.entry.id, "` takes ", format_bytes(double(r.reserved + r.extra_need)),
                  " once loaded (estimated ", format_bytes(double(r.reserved)),
                  "), more than the memory budget leaves: it needs ", why));
      begin_unload(r, PoolAction::Reason::kDiscarded, out);
      continue;
    }
    bool busy = unloading_places > 0;
    for (const auto& [oid, o] : records_) {
      if (&o == &r || pinned(o)) continue;
      if ((o.state == ModelState::kReady && o.in_flight > 0) || (o.state == ModelState::kLoading && o.reserved > 0)) {
        busy = true;
      }
    }
    if (!busy) {
      refuse_load(resource_exhausted(
          str_cat("The model `", r.entry.id, "` needs ", why, ", and every loaded model is pinned or loading.")));
      head_seen = false;  // the next waiting load may evict in its turn
    } else if (now >= r.room_deadline) {
      refuse_load(unavailable(str_cat("The model `", r.entry.id, "` needs ", why,
                                      ", and the models holding it are still serving requests (retry after 5 s)")));
      head_seen = false;
    }
  }
}

PoolActions PoolPolicy::registry_scanned(std::vector<std::pair<ModelEntry, Plan>> models, SteadyTime now) {
  PoolActions out;
  std::set<std::string, std::less<>> seen;
  order_.clear();
  for (auto& [e, plan] : models) {
    const std::string id = e.id;
    if (!seen.insert(id).second) continue;
    order_.push_back(id);
    Record& r = records_[id];
    r.entry = std::move(e);
    r.listed = true;
    // A loaded model keeps the options it was loaded with; the new ones apply to its next load.
    if (r.state == ModelState::kUnloaded || r.state == ModelState::kFailed) {
      r.engine = plan.engine;
      r.estimate = plan.estimate;
      r.estimate_error = plan.error;
    }
  }
  for (auto it = records_.begin(); it != records_.end();) {
    Record& r = it->second;
    if (seen.count(it->first) != 0) {
      ++it;
      continue;
    }
    r.listed = false;
    if ((r.state == ModelState::kUnloaded || r.state == ModelState::kFailed) && r.waiters.empty() &&
        r.unload_waiters.empty()) {
      it = records_.erase(it);
      continue;
    }
    unload_if_due(r, &out);
    ++it;
  }
  pump(now, &out);
  return out;
}

void PoolPolicy::mark_preload(std::string_view id) {
  if (Record* r = find(id)) r->preload = true;
}

PoolActions PoolPolicy::acquire(std::string_view id, Ticket ticket, std::optional<Millis> ka, SteadyTime now) {
  PoolActions out;
  auto refuse = [&](Status s) {
    PoolAction a = action(PoolAction::Kind::kRefuse, id);
    a.tickets = {ticket};
    a.status = std::move(s);
    out.push_back(std::move(a));
  };
  Record* rp = find(id);
  if (stopping_) {
    refuse(unavailable("kiln is shutting down"));
    return out;
  }
  if (rp == nullptr || !rp->listed) {
    refuse(model_not_found(id));
    return out;
  }
  Record& r = *rp;
  if (ka) r.request_keep_alive = ka;
  switch (r.state) {
    case ModelState::kReady:
      if (!r.unload_requested) {
        r.in_flight += 1;
        r.last_used = now;
        r.used = true;
        PoolAction g = action(PoolAction::Kind::kGrant, id);
        g.tickets = {ticket};
        out.push_back(std::move(g));
        return out;
      }
      r.waiters.push_back(ticket);  // loaded again once the asked-for unload is done
      return out;
    case ModelState::kLoading:
    case ModelState::kUnloading:
      r.waiters.push_back(ticket);
      return out;
    case ModelState::kFailed:
      if (now < r.retry_at) {
        const double left = seconds_between(now, r.retry_at);
        refuse(Status(r.error.code(), str_cat(r.error.message(), " (retry after ",
                                              static_cast<int64_t>(left + 0.999), " s)")));
        return out;
      }
      [[fallthrough]];
    case ModelState::kUnloaded: {
      Status never = never_fits(r);
      if (!never.is_ok()) {
        refuse(std::move(never));
        return out;
      }
      r.waiters.push_back(ticket);
      start_load(r, now, &out);
      pump(now, &out);
      return out;
    }
  }
  return out;
}

PoolActions PoolPolicy::admin_load(std::string_view id, Ticket ticket, std::optional<bool> pin, SteadyTime now) {
  Record* r = find(id);
  PoolActions out;
  if (r != nullptr && r->listed) {
    if (pin && r->admin_pin != pin) {
      r->admin_pin = pin;
      changed(*r, &out);
    }
    // An explicit load does not wait out the back-off of a failed one.
    if (r->state == ModelState::kFailed) r->retry_at = now;
  }
  PoolActions more = acquire(id, ticket, std::nullopt, now);
  out.insert(out.end(), std::make_move_iterator(more.begin()), std::make_move_iterator(more.end()));
  return out;
}

PoolActions PoolPolicy::admin_unload(std::string_view id, Ticket ticket, SteadyTime now) {
  PoolActions out;
  PoolAction answer = action(PoolAction::Kind::kUnloadAnswer, id);
  answer.tickets = {ticket};
  Record* rp = find(id);
  if (rp == nullptr) {
    answer.status = model_not_found(id);
    out.push_back(std::move(answer));
    return out;
  }
  Record& r = *rp;
  switch (r.state) {
    case ModelState::kUnloaded:
    case ModelState::kFailed:
      out.push_back(std::move(answer));
      return out;
    case ModelState::kLoading:
      answer.status = failed_precondition(str_cat("The model `", r.entry.id, "` is loading; unload it once it is ready."));
      out.push_back(std::move(answer));
      return out;
    case ModelState::kReady:
      r.unload_requested = true;
      r.unload_waiters.push_back(ticket);
      unload_if_due(r, &out);
      break;
    case ModelState::kUnloading:
      r.unload_waiters.push_back(ticket);
      break;
  }
  pump(now, &out);
  return out;
}

PoolActions PoolPolicy::released(std::string_view id, SteadyTime now) {
  PoolActions out;
  Record* r = find(id);
  if (r == nullptr || r->in_flight <= 0) return out;
  r->in_flight -= 1;
  r->last_used = now;
  unload_if_due(*r, &out);
  pump(now, &out);
  return out;
}

PoolActions PoolPolicy::planned(std::string_view id, Plan plan, SteadyTime now) {
  PoolActions out;
  Record* rp = find(id);
  if (rp == nullptr || rp->state != ModelState::kLoading || rp->step != Step::kPlanning) return out;
  Record& r = *rp;
  r.engine = std::move(plan.engine);
  r.estimate = plan.estimate;
  r.estimate_error = std::move(plan.error);
  if (!r.estimate) {
    // Nothing was loaded: the short back-off, not a failure in a row.
    const Status failure = load_error(r.entry.id, Status(StatusCode::kInternal, r.estimate_error));
    r.state = ModelState::kFailed;
    r.step = Step::kNone;
    r.error = failure;
    r.retry_at = now + options_.failure_backoff;
    PoolAction f = action(PoolAction::Kind::kFailed, id);
    f.status = failure;
    out.push_back(std::move(f));
    refuse_waiters(r, with_retry(failure, options_.failure_backoff), &out);
    changed(r, &out);
    return out;
  }
  Status never = never_fits(r);
  if (!never.is_ok()) {
    r.state = ModelState::kUnloaded;
    r.step = Step::kNone;
    r.phase.clear();
    refuse_waiters(r, never, &out);
    changed(r, &out);
    return out;
  }
  start_load(r, now, &out);
  pump(now, &out);
  return out;
}

PoolActions PoolPolicy::load_progress(std::string_view id, std::string_view phase, double fraction) {
  PoolActions out;
  Record* r = find(id);
  if (r == nullptr || r->state != ModelState::kLoading || r->step != Step::kLoading) return out;
  r->phase = std::string(phase);
  r->progress = 0.05 + 0.95 * std::clamp(fraction, 0.0, 1.0);
  changed(*r, &out);
  return out;
}

PoolActions PoolPolicy::loaded(std::string_view id, const runtime::MemoryUsage& measured, int64_t max_model_len,
                               double seconds, SteadyTime now, std::string device) {
  PoolActions out;
  Record* rp = find(id);
  if (rp == nullptr || rp->state != ModelState::kLoading || rp->step != Step::kLoading) return out;
  Record& r = *rp;
  r.accounted = accounted_memory(measured, *r.estimate);
  r.max_model_len = max_model_len;
  r.load_seconds = seconds;
  r.device = std::move(device);
  const int64_t extra = r.accounted.total() - r.reserved;
  if (extra <= 0) {
    r.reserved = r.accounted.total();
    become_ready(r, now, &out);
  } else {
    // It took more than estimated: it becomes ready once the difference fits.
    r.step = Step::kWaitingExtra;
    r.extra_need = extra;
    r.phase = "waiting for memory";
    changed(r, &out);
  }
  pump(now, &out);
  return out;
}

PoolActions PoolPolicy::load_failed(std::string_view id, const Status& cause, SteadyTime now) {
  PoolActions out;
  Record* r = find(id);
  if (r == nullptr || r->state != ModelState::kLoading || r->step != Step::kLoading) return out;
  fail_load(*r, load_error(r->entry.id, cause), now, &out);
  pump(now, &out);
  return out;
}

PoolActions PoolPolicy::unloaded(std::string_view id, SteadyTime now) {
  PoolActions out;
  Record* rp = find(id);
  if (rp == nullptr || rp->state != ModelState::kUnloading) return out;
  Record& r = *rp;
  r.reserved = 0;
  r.accounted = {};
  r.max_model_len = 0;
  r.state = ModelState::kUnloaded;
  r.unload_requested = false;
  r.request_keep_alive.reset();
  if (!r.unload_waiters.empty()) {
    PoolAction a = action(PoolAction::Kind::kUnloadAnswer, id);
    a.tickets = std::move(r.unload_waiters);
    r.unload_waiters.clear();
    out.push_back(std::move(a));
  }
  if (!r.fail_after_unload.is_ok()) {
    const Status failure = std::exchange(r.fail_after_unload, Status::ok());
    fail_load(r, failure, now, &out);
  } else if (!r.waiters.empty() && !stopping_) {
    start_load(r, now, &out);
  } else {
    changed(r, &out);
  }
  if (!r.listed && r.waiters.empty() && r.state != ModelState::kLoading) {
    records_.erase(records_.find(id));
  }
  pump(now, &out);
  return out;
}

PoolActions PoolPolicy::tick(SteadyTime now) {
  PoolActions out;
  if (stopping_) return out;
  for (auto& [id, r] : records_) {
    if (r.state != ModelState::kReady || r.in_flight != 0) continue;
    const auto ka = keep_alive(r);
    if (ka && now - r.last_used >= *ka) begin_unload(r, PoolAction::Reason::kKeepAlive, &out);
  }
  pump(now, &out);
  return out;
}

PoolActions PoolPolicy::shutdown() {
  PoolActions out;
  stopping_ = true;
  const Status down = unavailable("kiln is shutting down");
  for (auto& [id, r] : records_) {
    refuse_waiters(r, down, &out);
    if (!r.unload_waiters.empty()) {
      PoolAction a = action(PoolAction::Kind::kUnloadAnswer, id);
      a.tickets = std::move(r.unload_waiters);
      a.status = down;
      r.unload_waiters.clear();
      out.push_back(std::move(a));
    }
  }
  return out;
}

ModelStatus PoolPolicy::describe(const Record& r, SteadyTime now, int64_t unix_now) const {
  ModelStatus m;
  m.id = r.entry.id;
  m.dir = r.entry.dir.string();
  m.source = std::string(model_source_name(r.entry.source));
  m.state = r.state;
  m.revision = r.revision;
  if (r.state == ModelState::kLoading) {
    m.loading_phase = r.phase;
    m.loading_progress = r.progress;
  }
  m.memory_bytes = r.reserved;
  m.weights_bytes = r.accounted.weights;
  m.kv_cache_bytes = r.accounted.kv_cache;
  m.workspace_bytes = r.accounted.workspace;
  m.estimated_bytes = r.estimate ? r.estimate->total() : 0;
  m.in_flight = r.in_flight;
  if (r.used) m.last_used = unix_now - static_cast<int64_t>(std::llround(seconds_between(r.last_used, now)));
  m.load_seconds = r.load_seconds;
  m.pinned = pinned(r);
  m.keep_alive = keep_alive(r);
  if (r.state == ModelState::kReady && r.in_flight == 0 && m.keep_alive) {
    m.idle_unload_in_seconds = std::max(0.0, seconds_between(now, r.last_used + *m.keep_alive));
  }
  if (r.state == ModelState::kFailed) {
    m.error = r.error.message();
    m.retry_in_seconds = std::max(0.0, seconds_between(now, r.retry_at));
  } else if (r.state == ModelState::kUnloaded && !r.estimate_error.empty()) {
    m.error = r.estimate_error;
  }
  m.loads = r.loads;
  m.failures = r.failures;
  m.evictions = r.evictions;
  return m;
}

std::optional<ModelStatus> PoolPolicy::describe(std::string_view id, SteadyTime now, int64_t unix_now) const {
  const Record* r = find(id);
  if (r == nullptr) return std::nullopt;
  return describe(*r, now, unix_now);
}

PoolStatus PoolPolicy::status(SteadyTime now, int64_t unix_now) const {
  PoolStatus p;
  p.budget_bytes = options_.memory_budget;
  p.used_bytes = used_bytes();
  p.max_loaded_models = options_.max_loaded_models;
  p.loaded = loaded_count();
  for (const auto& id : order_) {
    if (const Record* r = find(id)) p.models.push_back(describe(*r, now, unix_now));
  }
  // Models a rescan dropped that are still loaded come last.
  for (const auto& [id, r] : records_) {
    if (!r.listed) p.models.push_back(describe(r, now, unix_now));
  }
  return p;
}

std::vector<ModelInfo> PoolPolicy::list() const {
  std::vector<ModelInfo> out;
  for (const auto& id : order_) {
    const Record* r = find(id);
    if (r == nullptr || !r->listed) continue;
    ModelInfo i;
    i.id = r->entry.id;
    i.created = r->entry.created;
    i.owned_by = r->entry.owned_by;
    i.description = r->entry.description;
    i.max_model_len = r->max_model_len > 0 ? r->max_model_len : r->engine.max_model_len;
    i.loaded = r->state == ModelState::kReady;
    i.kind = r->entry.kind;
    if (i.loaded) i.device = r->device;
    out.push_back(std::move(i));
  }
  return out;
}

}  // namespace kiln::pool
