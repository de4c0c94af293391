// The per-request channel between the engine worker and whoever consumes the output (the HTTP
// layer, `kiln generate`, tests). Thread-safe. The worker pushes tokens, finishes and the final
// usage; the consumer takes them when woken through its notify callback (the HTTP side posts to
// its own executor from it), and asks for cancellation or an early finish, which the worker
// applies at its next step boundary (DESIGN.md §2).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "kiln/core/clock.h"
#include "kiln/core/status.h"
#include "kiln/runtime/sampling.h"
#include "kiln/serve/request.h"

namespace kiln::serve {

struct StreamToken {
  int32_t choice = 0;
  int32_t token = 0;
  float logprob = 0.0f;                           // when the request asked for logprobs
  std::vector<runtime::TokenLogprob> top_logprobs;
  bool is_stop_token = false;  // an EOS/stop token that ended its choice: not text to show
};

// Everything that arrived since the previous take().
struct StreamChunk {
  std::vector<StreamToken> tokens;
  std::vector<std::pair<int32_t, FinishReason>> finished;  // choices that ended
  bool done = false;  // the request is over; nothing more will arrive
  Status error;       // why it failed, when done with an error (cancelled, timed out, engine)
  Usage usage;        // final counts, when done
  RequestTiming timing;  // final, when done
  std::vector<float> output;  // a prefill-only request's vector (RequestOutput), when done
};

class TokenStream {
 public:
  TokenStream(std::string request_id, int32_t num_choices, SteadyTime submitted);
  TokenStream(const TokenStream&) = delete;
  TokenStream& operator=(const TokenStream&) = delete;

  const std::string& request_id() const { return request_id_; }
  int32_t num_choices() const { return num_choices_; }
  SteadyTime submitted() const { return submitted_; }

  // --- Consumer side.
  // `notify` runs on the worker's thread whenever new output is ready (and at once if some is
  // already waiting). Keep it short: post to your own executor and return.
  void set_notify(std::function<void()> notify);
  StreamChunk take();
  // Blocks until output is ready or the request is done, or `timeout` passes (for callers
  // without an event loop: the CLI and tests).
  StreamChunk wait_take(std::chrono::milliseconds timeout);
  bool done() const;
  // Ends the request at the worker's next step boundary (client gone, its own timeout); the
  // stream then finishes with a kCancelled error. Its KV blocks are freed in that step.
  void cancel();
  // Ends one choice at the next step boundary with `reason` (a stop string matched). Tokens of
  // that choice that arrive meanwhile are dropped, and it finishes with `reason`.
  void finish_choice(int32_t choice, FinishReason reason);

  // --- Worker side.
  bool cancel_requested() const { return cancel_requested_.load(std::memory_order_acquire); }
  // The consumer's early finishes not yet applied.
  std::vector<std::pair<int32_t, FinishReason>> take_finish_requests();
  void mark_scheduled(SteadyTime now);
  void push_tokens(std::vector<StreamToken> tokens, SteadyTime now);
  void push_finished(int32_t choice, FinishReason reason);
  // Ends the stream. `usage` comes from the scheduler; completion_tokens is replaced by what was
  // actually delivered (tokens dropped after an early finish do not count).
  void complete(Usage usage, Status error, SteadyTime now, std::vector<float> output = {});
  void add_step() { ++steps_; }

 private:
  void notify_if_ready(std::unique_lock<std::mutex>& lock);

  const std::string request_id_;
  const int32_t num_choices_;
  const SteadyTime submitted_;
  std::atomic<bool> cancel_requested_{false};
  std::atomic<int64_t> steps_{0};

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::function<void()> notify_;
  StreamChunk pending_;
  bool done_ = false;
  std::vector<FinishReason> early_finish_;   // [num_choices]: asked by the consumer
  std::vector<bool> early_finish_applied_;   // [num_choices]: handed to the worker
  std::vector<bool> ended_;                  // [num_choices]: finished event pushed
  std::vector<int64_t> delivered_;           // [num_choices]
  RequestTiming timing_;
};

}  // namespace kiln::serve
