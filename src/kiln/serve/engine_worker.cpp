#include "kiln/serve/engine_worker.h"

#include <algorithm>
#include <cmath>
#include <exception>
#include <random>

#include "kiln/core/log.h"
#include "kiln/core/str.h"

namespace kiln::serve {
namespace {

uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

uint64_t random_seed_base() {
  std::random_device rd;
  return (static_cast<uint64_t>(rd()) << 32) ^ rd();
}

}  // namespace

Result<std::unique_ptr<EngineWorker>> EngineWorker::start(std::unique_ptr<runtime::Engine> engine,
                                                          EngineWorkerOptions options) {
  if (!engine) return invalid_argument(str_cat("model ", options.model_name, ": no engine to serve"));
  if (options.max_queue < 0) return invalid_argument(str_cat("max_queue: must be >= 0, got ", options.max_queue));
  if (!std::isfinite(options.request_timeout_seconds) || options.request_timeout_seconds < 0.0) {
    return invalid_argument(str_cat("request_timeout: must be >= 0 seconds, got ", options.request_timeout_seconds));
  }
  SchedulerOptions so = options.scheduler;
  const runtime::EngineLimits& limits = engine->limits();
  so.max_seqs = limits.max_seqs;
  so.max_batched_tokens = limits.max_batched_tokens;
  if (so.max_prefill_chunk == 0) so.max_prefill_chunk = limits.prefill_chunk;
  so.kv = engine->kv_geometry();
  so.vocab_size = engine->config().vocab_size;
  so.max_model_len = limits.max_model_len;
  if (so.eos_token_ids.empty()) so.eos_token_ids = engine->config().eos_token_ids;
  auto scheduler = Scheduler::create(so);
  if (!scheduler.is_ok()) return scheduler.status().with_context(str_cat("model ", options.model_name));
  options.scheduler = so;
  std::unique_ptr<EngineWorker> w(new EngineWorker(std::move(engine), std::move(scheduler).value(), std::move(options)));
  w->thread_ = std::thread([p = w.get()] { p->run(); });
  return w;
}

EngineWorker::EngineWorker(std::unique_ptr<runtime::Engine> engine, std::unique_ptr<Scheduler> scheduler,
                           EngineWorkerOptions options)
    : engine_(std::move(engine)),
      scheduler_(std::move(scheduler)),
      options_(std::move(options)),
      clock_(options_.clock != nullptr ? options_.clock : &SystemClock::instance()),
      seed_base_(random_seed_base()),
      kv_total_(scheduler_->kv().num_blocks()),
      masker_(options_.mask_threads) {
  publish_counters();
}

EngineWorker::~EngineWorker() { stop(); }

void EngineWorker::stop() {
  std::call_once(stop_once_, [this] {
    stopping_.store(true);
    queue_.close();
    if (thread_.joinable()) thread_.join();
  });
}

SubmitResult EngineWorker::submit(Request request) {
  SubmitResult r;
  if (stopping_.load()) {
    r.status = unavailable(str_cat("model ", options_.model_name, " is shutting down"));
    return r;
  }
  r.status = scheduler_->validate_request(request);
  if (!r.status.is_ok()) return r;
  if (request.timeout_seconds && !(std::isfinite(*request.timeout_seconds) && *request.timeout_seconds > 0.0)) {
    r.status = invalid_argument(str_cat("timeout: must be a positive number of seconds, got ", *request.timeout_seconds))
                   .with_param("timeout");
    return r;
  }
  std::lock_guard<std::mutex> lock(submit_mu_);
  const int64_t waiting = in_submit_queue_.load() + waiting_requests_.load();
  if (options_.max_queue > 0 && waiting >= options_.max_queue) {
    ++rejected_;
    r.status = unavailable(str_cat("model ", options_.model_name, " is busy: ", waiting,
                                   " requests are waiting (max_queue ", options_.max_queue, ")"));
    r.retry_after_seconds = retry_after_seconds();
    return r;
  }
  const int32_t priority = request.priority;
  Pending p;
  p.id = next_id_++;
  p.seed = request.seed ? *request.seed : splitmix64(seed_base_ ^ p.id);
  p.stream = std::make_shared<TokenStream>(request.id, request.n, clock_->now());
  p.request = std::move(request);
  r.stream = p.stream;
  ++in_submit_queue_;
  if (!queue_.push(std::move(p))) {
    --in_submit_queue_;
    r.stream.reset();
    r.status = unavailable(str_cat("model ", options_.model_name, " is shutting down"));
    return r;
  }
  int32_t best = best_new_priority_.load();
  while (priority < best && !best_new_priority_.compare_exchange_weak(best, priority)) {
  }
  return r;
}

int32_t EngineWorker::retry_after_seconds() const {
  // Roughly how long until the queue ahead has drained through the running slots.
  const double per_request = std::max(mean_request_seconds_.load(), 0.1);
  const double queued = static_cast<double>(in_submit_queue_.load() + waiting_requests_.load());
  const double slots = static_cast<double>(std::max(options_.scheduler.max_seqs, 1));
  return static_cast<int32_t>(std::clamp(std::ceil(per_request * (queued + 1.0) / slots), 1.0, 60.0));
}

void EngineWorker::run() {
  while (true) {
    take_submissions(!scheduler_->has_work());
    if (stopping_.load()) break;
    apply_controls();
    if (scheduler_->has_work()) run_step();
    publish_counters();
  }
  fail_everything(unavailable(str_cat("model ", options_.model_name, " was unloaded before the request finished")));
  publish_counters();
}

void EngineWorker::take_submissions(bool block) {
  best_new_priority_.store(kNoPriorityLimit);
  std::optional<Pending> p = block ? queue_.pop() : queue_.try_pop();
  while (p) {
    admit(std::move(*p));
    p = queue_.try_pop();
  }
}

void EngineWorker::admit(Pending p) {
  --in_submit_queue_;
  const double timeout = p.request.timeout_seconds.value_or(options_.request_timeout_seconds);
  const int64_t prompt_tokens = static_cast<int64_t>(p.request.prompt.size());
  Status st = scheduler_->add_request(p.id, std::move(p.request), p.seed);
  if (!st.is_ok()) {
    Usage usage;
    usage.prompt_tokens = prompt_tokens;
    p.stream->complete(usage, st, clock_->now());
    return;
  }
  Live live;
  live.stream = std::move(p.stream);
  live.timeout_seconds = timeout;
  if (timeout > 0.0) {
    live.deadline = live.stream->submitted() +
                    std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::duration<double>(timeout));
  }
  live_.emplace(p.id, std::move(live));
  waiting_requests_.store(scheduler_->num_waiting_requests());
}

void EngineWorker::apply_controls() {
  const SteadyTime now = clock_->now();
  std::vector<uint64_t> ids;
  ids.reserve(live_.size());
  for (const auto& [id, live] : live_) ids.push_back(id);
  for (uint64_t id : ids) {
    auto it = live_.find(id);
    if (it == live_.end()) continue;
    Live& live = it->second;
    if (live.stream->cancel_requested()) {
      RequestEvents ev = scheduler_->abort_request(id, FinishReason::kCancelled);
      ev.error = cancelled(str_cat("request ", live.stream->request_id(), " was cancelled"));
      ++cancelled_;
      deliver(std::move(ev), false);
      continue;
    }
    if (live.deadline != SteadyTime{} && now >= live.deadline) {
      RequestEvents ev = scheduler_->abort_request(id, FinishReason::kError);
      ev.error = deadline_exceeded(str_cat("request ", live.stream->request_id(), " timed out after ",
                                           live.timeout_seconds, " s ",
                                           live.started ? "while generating" : "while waiting to start"));
      ++timed_out_;
      deliver(std::move(ev), false);
      continue;
    }
    for (const auto& [choice, reason] : live.stream->take_finish_requests()) {
      deliver(scheduler_->finish_choice(id, choice, reason), false);
      if (live_.find(id) == live_.end()) break;
    }
  }
}

namespace {
int64_t micros_between(SteadyTime a, SteadyTime b) {
  return std::chrono::duration_cast<std::chrono::microseconds>(b - a).count();
}
}  // namespace

void EngineWorker::run_step() {
  const SteadyTime t0 = clock_->now();
  SchedulerOutput out = scheduler_->schedule();
  if (out.empty()) {
    // Nothing fits this instant (it cannot stay so: a lone request always fits); wait for news
    // rather than spin.
    if (std::optional<Pending> p = queue_.pop_for(std::chrono::milliseconds(5))) admit(std::move(*p));
    return;
  }
  publish_counters();  // the batch in flight counts as running while the engine computes it
  runtime::StepPlan plan = scheduler_->build_plan(out);
  // Constrained samples' masks are filled while the forward pass runs; the engine waits for them
  // only before sampling.
  masker_.start(out, engine_->config().vocab_size, &plan);
  int64_t decode = 0;
  for (const ScheduledSequence& e : out.seqs) {
    if (e.seq->num_computed >= e.seq->prompt_len) decode += e.num_new;
  }
  int32_t step_priority = kNoPriorityLimit;
  for (const ScheduledSequence& e : out.seqs) step_priority = std::min(step_priority, e.seq->priority);
  plan.abandon = [this, step_priority] { return best_new_priority_.load(std::memory_order_relaxed) < step_priority; };
  const SteadyTime t1 = clock_->now();
  Result<runtime::StepResult> result = internal_error("engine step did not run");
  try {
    result = engine_->step(plan);
  } catch (const std::exception& e) {
    result = internal_error(str_cat("engine step threw: ", e.what()));
  }
  masker_.finish();  // also when the step failed before it waited: the constraints are ours again
  const SteadyTime t2 = clock_->now();
  std::vector<RequestEvents> events;
  if (result.is_ok() && result->abandoned) {
    // Nothing was applied: the step's sequences run again once the newcomer is scheduled.
    ++abandoned_steps_;
    decode = 0;
  } else if (result.is_ok()) {
    auto applied = scheduler_->apply_result(out, *result);
    if (applied.is_ok()) {
      events = std::move(applied).value();
    } else {
      ++failed_steps_;
      log_error("model ", options_.model_name, ": ", applied.status().to_string());
      events = scheduler_->fail_step(out, applied.status().with_context(str_cat("model ", options_.model_name)));
    }
  } else {
    ++failed_steps_;
    log_error("model ", options_.model_name, ": engine step failed: ", result.status().to_string());
    events = scheduler_->fail_step(out, result.status().with_context(str_cat("model ", options_.model_name)));
  }
  for (RequestEvents& ev : events) deliver(std::move(ev), true);
  forward_us_ += micros_between(t1, t2);
  host_us_ += micros_between(t0, t1) + micros_between(t2, clock_->now());
  decode_tokens_ += decode;
}

void EngineWorker::deliver(RequestEvents ev, bool from_step) {
  auto it = live_.find(ev.request_id);
  if (it == live_.end()) return;
  Live& live = it->second;
  TokenStream& stream = *live.stream;
  const SteadyTime now = clock_->now();
  if (from_step) stream.add_step();
  if (ev.first_scheduled) {
    live.started = true;
    stream.mark_scheduled(now);
  }
  if (!ev.tokens.empty()) {
    std::vector<StreamToken> tokens;
    tokens.reserve(ev.tokens.size());
    for (ChoiceToken& t : ev.tokens) {
      StreamToken s;
      s.choice = t.choice;
      s.token = t.sample.token;
      s.logprob = t.sample.logprob;
      s.top_logprobs = std::move(t.sample.top);
      s.is_stop_token = t.is_stop_token;
      tokens.push_back(std::move(s));
    }
    stream.push_tokens(std::move(tokens), now);
  }
  for (const auto& [choice, reason] : ev.finished) stream.push_finished(choice, reason);
  if (!ev.done) return;
  stream.complete(ev.usage, ev.error, now, std::move(ev.output));
  const double seconds = seconds_between(stream.submitted(), now);
  const double mean = mean_request_seconds_.load();
  mean_request_seconds_.store(mean == 0.0 ? seconds : 0.9 * mean + 0.1 * seconds);
  live_.erase(it);
}

void EngineWorker::fail_everything(const Status& error) {
  queue_.close();
  while (std::optional<Pending> p = queue_.try_pop()) {
    --in_submit_queue_;
    Usage usage;
    usage.prompt_tokens = static_cast<int64_t>(p->request.prompt.size());
    p->stream->complete(usage, error, clock_->now());
  }
  std::vector<uint64_t> ids;
  for (const auto& [id, live] : live_) ids.push_back(id);
  for (uint64_t id : ids) {
    RequestEvents ev = scheduler_->abort_request(id, FinishReason::kError);
    ev.error = error;
    deliver(std::move(ev), false);
  }
}

void EngineWorker::publish_counters() {
  const SchedulerStats& s = scheduler_->stats();
  running_.store(scheduler_->num_running());
  waiting_.store(scheduler_->num_waiting());
  waiting_requests_.store(scheduler_->num_waiting_requests());
  steps_.store(s.steps);
  tokens_computed_.store(s.tokens_computed);
  prefix_queries_.store(s.prefix_cache_queries);
  prefix_hits_.store(s.prefix_cache_hits);
  preemptions_.store(s.preemptions);
  yielded_steps_.store(s.yielded_steps);
  finished_.store(s.requests_finished);
  kv_used_.store(scheduler_->kv().num_used());
  kv_cached_.store(scheduler_->kv().num_cached());
}

WorkerCounters EngineWorker::counters() const {
  WorkerCounters c;
  c.running = running_.load();
  c.waiting = waiting_.load();
  c.queued_requests = in_submit_queue_.load() + waiting_requests_.load();
  c.steps = steps_.load();
  c.failed_steps = failed_steps_.load();
  c.tokens_computed = tokens_computed_.load();
  c.prefix_cache_queries = prefix_queries_.load();
  c.prefix_cache_hits = prefix_hits_.load();
  c.preemptions = preemptions_.load();
  c.forward_us = forward_us_.load();
  c.host_us = host_us_.load();
  c.decode_tokens = decode_tokens_.load();
  c.yielded_steps = yielded_steps_.load();
  c.abandoned_steps = abandoned_steps_.load();
  c.requests_finished = finished_.load();
  c.requests_rejected = rejected_.load();
  c.requests_timed_out = timed_out_.load();
  c.requests_cancelled = cancelled_.load();
  c.kv_blocks_total = kv_total_;
  c.kv_blocks_used = kv_used_.load();
  c.kv_blocks_cached = kv_cached_.load();
  return c;
}

}  // namespace kiln::serve
