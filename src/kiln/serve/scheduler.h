// Continuous batching (DESIGN.md §3). Each step: running sequences first (their remaining prompt
// chunk or one decode token), then waiting ones, within a token budget and a sequence cap; when KV
// blocks run out, the lowest ranked running sequence is preempted by recompute. The scheduler
// turns its decisions into a runtime::StepPlan and applies the engine's StepResult back.
//
// Not thread-safe: the engine worker's thread owns it. It never runs the engine itself, so every
// decision can be tested without a model.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <unordered_map>
#include <vector>

#include "kiln/core/status.h"
#include "kiln/runtime/kv_block_manager.h"
#include "kiln/runtime/step.h"
#include "kiln/serve/request.h"
#include "kiln/serve/schedule_policy.h"
#include "kiln/serve/sequence.h"

namespace kiln::serve {

struct SchedulerOptions {
  int32_t max_batched_tokens = 8192;  // tokens in one step
  int32_t max_seqs = 256;             // sequences running at once
  // Most tokens of one sequence per step; 0 = the budget. The engine worker fills 0 with the
  // engine's default chunk (EngineLimits::prefill_chunk), so that a long prompt leaves room in
  // every step for the other requests.
  int32_t max_prefill_chunk = 0;
  bool enable_prefix_cache = true;
  std::vector<int32_t> eos_token_ids;
  int64_t max_model_len = 0;          // the engine's context limit
  int64_t vocab_size = 0;             // token ids in a prompt must be below it
  runtime::KvGeometry kv;             // the engine's pool of blocks
};

struct ScheduledSequence {
  Sequence* seq = nullptr;
  int32_t num_new = 0;   // tokens computed this step: tokens[num_computed .. num_computed + num_new)
  bool samples = false;  // its last new token is the sequence's last token: sample the next one
  // A prefill-only sequence (RequestOutput): this step returns its output kind for it.
  std::optional<runtime::StepOutputKind> output;
};

struct SchedulerOutput {
  std::vector<ScheduledSequence> seqs;  // the step's batch, in plan order
  int32_t num_tokens = 0;
  int32_t num_preempted = 0;            // sequences preempted while building this batch
  bool empty() const { return seqs.empty(); }
};

struct ChoiceToken {
  int32_t choice = 0;
  runtime::SampledToken sample;
  bool is_stop_token = false;  // it ended the choice as a stop/EOS token (not text to show)
};

// What happened to one request in a step (or on abort): the worker forwards it to its stream.
struct RequestEvents {
  uint64_t request_id = 0;
  bool first_scheduled = false;  // its first tokens went into this step
  std::vector<ChoiceToken> tokens;
  std::vector<std::pair<int32_t, FinishReason>> finished;  // choices that ended
  bool done = false;   // every choice ended; the request is gone from the scheduler
  Status error;        // the request failed (the engine step failed)
  Usage usage;         // final counts, when done
  std::vector<float> output;  // a prefill-only request's vector (RequestOutput), when done
};

struct SchedulerStats {
  int64_t steps = 0;
  int64_t tokens_computed = 0;       // tokens in all plans
  int64_t prefix_cache_queries = 0;  // prompt tokens looked up in the prefix cache on admission
  int64_t prefix_cache_hits = 0;     // of those, tokens whose KV was found
  int64_t preemptions = 0;
  // Steps in which running sequences of a worse priority sat out for a better one's prefill.
  int64_t yielded_steps = 0;
  int64_t requests_finished = 0;
};

class Scheduler {
 public:
  static Result<std::unique_ptr<Scheduler>> create(const SchedulerOptions& options);

  // Checks a request against the model and the scheduler's limits; the message names the field.
  // Reads only what is fixed at creation, so any thread may call it while the engine thread runs.
  Status validate_request(const Request& request) const;

  // Validates the request and queues it. `seed` is the request's resolved seed; choice i samples with
  // seed_for_choice(seed, i).
  Status add_request(uint64_t request_id, Request request, uint64_t seed);

  // Ends a request at once (cancel, timeout): its sequences leave the queues and their blocks
  // are freed. Unfinished choices end with `reason`. No effect on an unknown id.
  RequestEvents abort_request(uint64_t request_id, FinishReason reason);
  // Ends one choice now with `reason` (a stop string matched on the HTTP side).
  RequestEvents finish_choice(uint64_t request_id, int32_t choice, FinishReason reason);

  // Decides the next step's batch; allocates the blocks it needs (and preempts to get them).
  SchedulerOutput schedule();
  // The StepPlan of a batch, flattened exactly as runtime/step.h describes.
  runtime::StepPlan build_plan(const SchedulerOutput& out) const;
  // Applies the engine's result: advances computed counts, caches newly full blocks, appends
  // sampled tokens, ends sequences that stop.
  Result<std::vector<RequestEvents>> apply_result(const SchedulerOutput& out,
                                                  const runtime::StepResult& result);
  // The engine failed the step: every request with a sequence in it fails with `error`.
  std::vector<RequestEvents> fail_step(const SchedulerOutput& out, const Status& error);

  bool has_work() const { return !running_.empty() || !waiting_.empty(); }
  bool has_request(uint64_t request_id) const { return requests_.count(request_id) != 0; }
  int32_t num_running() const { return static_cast<int32_t>(running_.size()); }
  int32_t num_waiting() const { return static_cast<int32_t>(waiting_.size()); }
  int32_t num_requests() const { return static_cast<int32_t>(requests_.size()); }
  // Requests none of whose sequences has been scheduled yet (what --max-queue bounds).
  int32_t num_waiting_requests() const { return num_waiting_requests_; }
  const std::vector<Sequence*>& running() const { return running_; }
  const std::vector<Sequence*>& waiting() const { return waiting_; }
  const runtime::KvBlockManager& kv() const { return kv_; }
  const SchedulerOptions& options() const { return options_; }
  const SchedulerStats& stats() const { return stats_; }
  // The longest context a request may reach: the model's limit, or the whole KV pool if smaller.
  int64_t max_len() const { return max_len_; }

  // Checks the block manager and that every block's reference count equals the number of
  // sequences holding it, that no sequence holds a block twice, and that waiting sequences
  // hold none.
  Status check_invariants() const;

 private:
  Scheduler(const SchedulerOptions& options, runtime::KvBlockManager kv);

  void preempt(Sequence* seq);
  // One step's batch in which only sequences of priority <= priority_limit compute.
  SchedulerOutput schedule_within(int32_t priority_limit);
  bool try_admit(Sequence* seq, int32_t budget, SchedulerOutput* out);
  void fork_choices(RequestState* r);
  void insert_running(Sequence* seq);
  void insert_waiting(Sequence* seq);
  void remove_from_queues(Sequence* seq);
  void register_full_blocks(Sequence* seq);
  // The batch entry of `seq` computing `n` tokens: whether it samples or returns an output.
  ScheduledSequence scheduled(Sequence* seq, int32_t n) const;
  // A prefill-only sequence's step: adds up a mean's chunks; after its last token, hands the
  // vector to `ev` and ends the sequence.
  void apply_output(Sequence* seq, const std::vector<float>* output, RequestEvents* ev);
  // Ends one sequence: frees its blocks; records the finish in `ev`.
  void end_sequence(Sequence* seq, FinishReason reason, RequestEvents* ev);
  // Fills the usage and removes the request once its last choice ended.
  void maybe_complete(RequestState* r, RequestEvents* ev);
  StopRules stop_rules(const RequestState& r) const;

  SchedulerOptions options_;
  runtime::KvBlockManager kv_;
  int64_t max_len_ = 0;
  uint64_t next_arrival_ = 0;
  std::unordered_map<uint64_t, std::unique_ptr<RequestState>> requests_;
  std::vector<Sequence*> running_;  // rank order: the back is the first to be preempted
  // Rank order too. Under FCFS a preempted sequence ranks before every request that has never
  // run, so it goes back to the head.
  std::vector<Sequence*> waiting_;
  int32_t num_waiting_requests_ = 0;
  SchedulerStats stats_;
};

}  // namespace kiln::serve
