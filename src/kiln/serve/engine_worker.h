// One loaded model's engine thread (DESIGN.md §2): it owns the runtime::Engine and the scheduler,
// takes requests from a thread-safe submit queue, runs one step after another while there is
// work, and pushes each request's output into its TokenStream.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>

#include "kiln/core/clock.h"
#include "kiln/core/queue.h"
#include "kiln/core/status.h"
#include "kiln/runtime/engine.h"
#include "kiln/serve/request.h"
#include "kiln/serve/scheduler.h"
#include "kiln/serve/step_masker.h"
#include "kiln/serve/token_stream.h"

namespace kiln::serve {

struct EngineWorkerOptions {
  std::string model_name;   // in error messages and logs
  // Scheduling options and the model's stop tokens. max_seqs, max_batched_tokens, max_model_len,
  // the KV geometry and the vocabulary size are the engine's (Engine::limits()), whatever is set
  // here; max_prefill_chunk 0 takes the engine's default chunk; eos_token_ids defaults to the
  // model config's.
  SchedulerOptions scheduler;
  int32_t max_queue = 256;  // requests waiting for their first step; past it submit refuses
  double request_timeout_seconds = 0.0;  // 0 = none; a request can override it
  const Clock* clock = nullptr;          // nullptr = the system clock
  // Threads that compute constrained requests' token masks while the forward pass runs; 0 = half
  // the hardware threads, at most 4. They start with the first constrained step.
  int mask_threads = 0;
};

// What submit answers. On a full queue the status is kUnavailable and retry_after_seconds says
// when to try again (the HTTP layer sends 503 with Retry-After).
struct SubmitResult {
  std::shared_ptr<TokenStream> stream;
  Status status;
  int32_t retry_after_seconds = 0;
  bool ok() const { return status.is_ok(); }
};

// Snapshots for /metrics and tests; each field is read without a lock, so fields may come from
// neighbouring steps.
struct WorkerCounters {
  int64_t running = 0;           // sequences
  int64_t waiting = 0;           // sequences in the scheduler's waiting queue
  int64_t queued_requests = 0;   // requests not yet started (submit queue + waiting)
  int64_t steps = 0;
  int64_t failed_steps = 0;
  int64_t tokens_computed = 0;
  int64_t prefix_cache_queries = 0;  // prompt tokens looked up
  int64_t prefix_cache_hits = 0;     // prompt tokens found
  int64_t preemptions = 0;
  // Where the engine thread's time goes: inside Engine::step (the forward pass and sampling), and
  // around it (scheduling, building the plan, applying the result, waking the streams).
  int64_t forward_us = 0;
  int64_t host_us = 0;
  int64_t decode_tokens = 0;  // of tokens_computed, those of sequences past their prompt
  int64_t yielded_steps = 0;  // steps worse priorities sat out for a better one's prefill
  int64_t abandoned_steps = 0;  // steps stopped mid-way for a better-ranked arrival (StepPlan::abandon)
  int64_t requests_finished = 0;
  int64_t requests_rejected = 0;     // refused by submit (queue full)
  int64_t requests_timed_out = 0;
  int64_t requests_cancelled = 0;
  int64_t kv_blocks_total = 0;
  int64_t kv_blocks_used = 0;
  int64_t kv_blocks_cached = 0;
};

class EngineWorker {
 public:
  // Starts the engine thread. Fails when the options do not fit the engine.
  static Result<std::unique_ptr<EngineWorker>> start(std::unique_ptr<runtime::Engine> engine,
                                                     EngineWorkerOptions options);
  ~EngineWorker();
  EngineWorker(const EngineWorker&) = delete;
  EngineWorker& operator=(const EngineWorker&) = delete;

  // Thread-safe. Validates the request (an invalid one is refused with a status naming the field)
  // and queues it; output arrives on the returned stream.
  SubmitResult submit(Request request);

  // Stops the thread: requests still queued or running end with a kUnavailable error. Idempotent.
  void stop();

  WorkerCounters counters() const;
  const std::string& model_name() const { return options_.model_name; }
  // The longest context a request may reach (prompt + generated tokens).
  int64_t max_len() const { return scheduler_->max_len(); }
  int64_t max_seqs() const { return scheduler_->options().max_seqs; }
  int64_t max_queue() const { return options_.max_queue; }
  const model::ModelConfig& model_config() const { return engine_->config(); }
  // The ids that end a sequence (the model's EOS ids, resolved at start). Any thread.
  const std::vector<int32_t>& eos_token_ids() const { return options_.scheduler.eos_token_ids; }

 private:
  struct Pending {
    uint64_t id = 0;
    Request request;
    uint64_t seed = 0;
    std::shared_ptr<TokenStream> stream;
  };
  struct Live {
    std::shared_ptr<TokenStream> stream;
    SteadyTime deadline{};  // SteadyTime{} = none
    double timeout_seconds = 0.0;
    bool started = false;   // some of its tokens have been in a step
  };

  EngineWorker(std::unique_ptr<runtime::Engine> engine, std::unique_ptr<Scheduler> scheduler,
               EngineWorkerOptions options);
  void run();
  void take_submissions(bool block);
  void admit(Pending p);
  void apply_controls();
  void run_step();
  // Forwards a request's events to its stream; `from_step` counts an engine step for it.
  void deliver(RequestEvents ev, bool from_step);
  void fail_everything(const Status& error);
  void publish_counters();
  int32_t retry_after_seconds() const;

  std::unique_ptr<runtime::Engine> engine_;
  std::unique_ptr<Scheduler> scheduler_;
  EngineWorkerOptions options_;
  const Clock* clock_;
  const uint64_t seed_base_;  // seeds of requests that bring none
  const int64_t kv_total_;
  BlockingQueue<Pending> queue_;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  std::once_flag stop_once_;

  std::mutex submit_mu_;  // makes the queue-length check and the enqueue one step
  std::atomic<uint64_t> next_id_{1};
  std::atomic<int64_t> in_submit_queue_{0};
  // The best (lowest) priority submitted since the engine thread last emptied the submit queue.
  // A step whose sequences all rank below it is abandoned (StepPlan::abandon): the newcomer waits
  // for one layer, not for the whole step. take_submissions resets it before popping, and submit
  // lowers it after pushing, so an arrival the step does not hold is never missed.
  std::atomic<int32_t> best_new_priority_{kNoPriorityLimit};

  // Engine thread only.
  std::unordered_map<uint64_t, Live> live_;
  StepMasker masker_;

  // Published by the engine thread after every step.
  std::atomic<int64_t> running_{0}, waiting_{0}, waiting_requests_{0}, steps_{0}, failed_steps_{0},
      tokens_computed_{0}, prefix_queries_{0}, prefix_hits_{0}, preemptions_{0}, forward_us_{0}, host_us_{0},
      decode_tokens_{0}, yielded_steps_{0}, abandoned_steps_{0}, finished_{0},
      rejected_{0}, timed_out_{0}, cancelled_{0}, kv_used_{0}, kv_cached_{0};
  std::atomic<double> mean_request_seconds_{0.0};
};

}  // namespace kiln::serve
