#include "kiln/serve/scheduler.h"

#include <algorithm>
#include <cmath>
#include <span>

#include "kiln/core/str.h"
#include "kiln/runtime/ops/sample.h"

namespace kiln::serve {
namespace {

// Most logprobs a request may ask for per token (OpenAI's top_logprobs allows 20).
constexpr int32_t kMaxLogprobs = 20;

// A request refused for one field: the status names it (Status::param), so the API layer can
// name its parameter without reading the message, which still starts with "field: ".
Status rejected(const char* field, std::string detail) {
  return invalid_argument(str_cat(field, ": ", detail)).with_param(field);
}

Status check_sampling(const runtime::SamplingParams& p, int64_t vocab_size) {
  if (!std::isfinite(p.temperature) || p.temperature < 0.0f) {
    return rejected("temperature", str_cat("must be a finite number >= 0, got ", p.temperature));
  }
  if (p.top_k < 0) return rejected("top_k", str_cat("must be >= 0, got ", p.top_k));
  if (!(p.top_p > 0.0f && p.top_p <= 1.0f)) return rejected("top_p", str_cat("must be in (0, 1], got ", p.top_p));
  if (!(p.min_p >= 0.0f && p.min_p <= 1.0f)) return rejected("min_p", str_cat("must be in [0, 1], got ", p.min_p));
  if (!(p.repetition_penalty > 0.0f) || !std::isfinite(p.repetition_penalty)) {
    return rejected("repetition_penalty", str_cat("must be a finite number > 0, got ", p.repetition_penalty));
  }
  if (!std::isfinite(p.presence_penalty)) return rejected("presence_penalty", "must be finite");
  if (!std::isfinite(p.frequency_penalty)) return rejected("frequency_penalty", "must be finite");
  for (const auto& [token, bias] : p.logit_bias) {
    if (token < 0 || token >= vocab_size) {
      return rejected("logit_bias", str_cat("token id ", token, " is outside the vocabulary (size ", vocab_size, ")"));
    }
    if (!std::isfinite(bias)) return rejected("logit_bias", str_cat("the bias of token ", token, " is not finite"));
  }
  if (p.num_logprobs < -1 || p.num_logprobs > kMaxLogprobs) {
    return rejected("logprobs", str_cat("must be between 0 and ", kMaxLogprobs, ", got ", p.num_logprobs));
  }
  return Status::ok();
}

}  // namespace

Result<std::unique_ptr<Scheduler>> Scheduler::create(const SchedulerOptions& options) {
  if (options.max_batched_tokens <= 0) {
    return invalid_argument(str_cat("max_batched_tokens: must be positive, got ", options.max_batched_tokens));
  }
  if (options.max_seqs <= 0) return invalid_argument(str_cat("max_seqs: must be positive, got ", options.max_seqs));
  if (options.max_prefill_chunk < 0) {
    return invalid_argument(str_cat("max_prefill_chunk: must be >= 0, got ", options.max_prefill_chunk));
  }
  if (options.max_model_len <= 1) {
    return invalid_argument(str_cat("max_model_len: must be at least 2, got ", options.max_model_len));
  }
  if (options.vocab_size <= 0) return invalid_argument(str_cat("vocab_size: must be positive, got ", options.vocab_size));
  runtime::KvBlockManagerOptions kvo;
  kvo.num_blocks = options.kv.num_blocks;
  kvo.block_size = options.kv.block_size;
  kvo.enable_prefix_cache = options.enable_prefix_cache;
  KILN_ASSIGN_OR_RETURN(runtime::KvBlockManager kv, runtime::KvBlockManager::create(kvo));
  return std::unique_ptr<Scheduler>(new Scheduler(options, std::move(kv)));
}

Scheduler::Scheduler(const SchedulerOptions& options, runtime::KvBlockManager kv)
    : options_(options), kv_(std::move(kv)) {
  max_len_ = std::min<int64_t>(options_.max_model_len,
                               static_cast<int64_t>(kv_.num_blocks()) * kv_.block_size());
}

Status Scheduler::validate_request(const Request& request) const {
  const int64_t prompt_len = static_cast<int64_t>(request.prompt.size());
  if (prompt_len == 0) return rejected("prompt", "must hold at least one token");
  for (size_t i = 0; i < request.prompt.size(); ++i) {
    const int32_t t = request.prompt[i];
    if (t < 0 || t >= options_.vocab_size) {
      return rejected("prompt", str_cat("token id ", t, " at position ", i,
                                        " is outside the vocabulary (size ", options_.vocab_size, ")"));
    }
  }
  if (request.output != RequestOutput::kTokens) {
    if (prompt_len > max_len_) {
      return rejected("prompt", str_cat(prompt_len, " tokens exceed the context limit of ", max_len_, " tokens"));
    }
    if (request.n != 1) return rejected("n", str_cat("must be 1 for a request that generates nothing, got ", request.n));
    if (request.constraint != nullptr) return rejected("response_format", "does not apply to a request that generates nothing");
    return Status::ok();
  }
  if (prompt_len >= max_len_) {
    return rejected("prompt", str_cat(prompt_len, " tokens leave no room to generate within the context limit of ",
                                      max_len_, " tokens"));
  }
  if (request.n < 1 || request.n > options_.max_seqs) {
    return rejected("n", str_cat("must be between 1 and ", options_.max_seqs, ", got ", request.n));
  }
  if (request.max_tokens && *request.max_tokens < 1) {
    return rejected("max_tokens", str_cat("must be at least 1, got ", *request.max_tokens));
  }
  return check_sampling(request.sampling, options_.vocab_size);
}

Status Scheduler::add_request(uint64_t request_id, Request request, uint64_t seed) {
  if (requests_.count(request_id) != 0) return internal_error(str_cat("request ", request_id, " is already queued"));
  KILN_RETURN_IF_ERROR(validate_request(request));
  const int64_t prompt_len = static_cast<int64_t>(request.prompt.size());

  auto r = std::make_unique<RequestState>();
  r->id = request_id;
  if (!request.ignore_eos) r->stop_ids = options_.eos_token_ids;
  r->stop_ids.insert(r->stop_ids.end(), request.stop_token_ids.begin(), request.stop_token_ids.end());
  r->forked = request.n == 1;
  r->unfinished = request.n;
  const uint64_t arrival = next_arrival_++;
  r->seqs.resize(static_cast<size_t>(request.n));
  for (int32_t c = 0; c < request.n; ++c) {
    Sequence& s = r->seqs[static_cast<size_t>(c)];
    s.request = r.get();
    s.choice = c;
    s.priority = request.priority;
    s.arrival = arrival;
    s.tokens = request.prompt;
    s.prompt_len = static_cast<int32_t>(prompt_len);
    s.sampling = request.sampling;
    s.sampling.seed = seed_for_choice(seed, c);
    s.output = request.output;
    if (request.constraint != nullptr) s.constraint = request.constraint->make();
    s.state = c == 0 ? SequenceState::kWaiting : SequenceState::kAwaitingFork;
  }
  r->max_tokens = request.max_tokens;
  insert_waiting(&r->seqs[0]);
  requests_.emplace(request_id, std::move(r));
  ++num_waiting_requests_;
  return Status::ok();
}

void Scheduler::insert_running(Sequence* seq) {
  running_.insert(running_.begin() + static_cast<ptrdiff_t>(rank_insert_position(running_, *seq)), seq);
}

void Scheduler::insert_waiting(Sequence* seq) {
  waiting_.insert(waiting_.begin() + static_cast<ptrdiff_t>(rank_insert_position(waiting_, *seq)), seq);
}

void Scheduler::remove_from_queues(Sequence* seq) {
  auto& list = seq->state == SequenceState::kRunning ? running_ : waiting_;
  auto it = std::find(list.begin(), list.end(), seq);
  if (it != list.end()) list.erase(it);
}

void Scheduler::preempt(Sequence* seq) {
  remove_from_queues(seq);
  kv_.release(seq->blocks);
  seq->blocks.clear();
  seq->num_computed = 0;
  seq->num_registered_blocks = 0;
  seq->pooled.clear();  // recomputed from the first token
  seq->state = SequenceState::kWaiting;
  insert_waiting(seq);
  ++stats_.preemptions;
}

SchedulerOutput Scheduler::schedule() {
  const int32_t limit = step_priority_limit(running_, waiting_);
  SchedulerOutput out = schedule_within(limit);
  // The better priority could not be scheduled after all (no KV blocks for it yet): the others
  // use the step rather than leave the engine idle.
  if (limit != kNoPriorityLimit) {
    if (out.empty()) {
      out = schedule_within(kNoPriorityLimit);
    } else {
      ++stats_.yielded_steps;
    }
  }
  return out;
}

SchedulerOutput Scheduler::schedule_within(int32_t priority_limit) {
  SchedulerOutput out;
  const int32_t bs = kv_.block_size();
  int32_t budget = options_.max_batched_tokens;

  // When every sequence slot is taken, a waiting sequence of a better priority takes the slots of
  // the lowest-ranked running ones (recomputed later, like any preemption): batch lines yield to
  // clients' requests instead of holding them back until they finish.
  while (!waiting_.empty() && !running_.empty() && outranks_priority(*waiting_.front(), *running_.back()) &&
         static_cast<int32_t>(running_.size()) + reserved_fork_slots(running_) + slots_on_admission(*waiting_.front()) >
             options_.max_seqs) {
    preempt(running_.back());
  }

  // Running sequences first, in rank order; each preemption takes the back of the list, so a
  // sequence already in this batch is never the victim.
  size_t i = 0;
  while (i < running_.size() && budget > 0) {
    Sequence* s = running_[i];
    if (s->priority > priority_limit) break;  // rank order: the rest sit this step out too
    const int32_t n = tokens_this_step(*s, budget, options_.max_prefill_chunk);
    const int32_t need = blocks_for_tokens(s->num_computed + n, bs) - static_cast<int32_t>(s->blocks.size());
    bool preempted_self = false;
    while (need > 0 && !kv_.can_allocate({}, need)) {
      Sequence* victim = running_[static_cast<size_t>(preemption_victim(running_))];
      preempt(victim);
      ++out.num_preempted;
      if (victim == s) {
        preempted_self = true;
        break;
      }
    }
    if (preempted_self) break;
    if (need > 0 && !kv_.allocate(need, &s->blocks).is_ok()) break;
    out.seqs.push_back(scheduled(s, n));
    out.num_tokens += n;
    budget -= n;
    ++i;
  }

  // Then waiting ones, strictly in order: a head that does not fit holds the others back (FCFS).
  // A step that had to preempt admits nobody; the preempted go first next step.
  if (out.num_preempted == 0) {
    while (!waiting_.empty() && budget > 0 && waiting_.front()->priority <= priority_limit &&
           try_admit(waiting_.front(), budget, &out)) {
      budget = options_.max_batched_tokens - out.num_tokens;
    }
  }
  return out;
}

bool Scheduler::try_admit(Sequence* s, int32_t budget, SchedulerOutput* out) {
  const int32_t slots = slots_on_admission(*s);
  if (static_cast<int32_t>(running_.size()) + reserved_fork_slots(running_) + slots > options_.max_seqs) return false;
  const int32_t bs = kv_.block_size();
  std::vector<int32_t> hits;
  // A prefill-only sequence computes every token itself: mean pooling needs each one's hidden state.
  if (kv_.prefix_cache_enabled() && s->output == RequestOutput::kTokens) {
    kv_.extend_block_hashes(s->tokens, &s->block_hashes);
    hits = kv_.find_cached_prefix(s->block_hashes, s->tokens, max_prefix_hit_blocks(s->num_tokens(), bs));
  }
  const int32_t cached = static_cast<int32_t>(hits.size()) * bs;
  s->num_computed = cached;
  const int32_t n = tokens_this_step(*s, budget, options_.max_prefill_chunk);
  const int32_t need = blocks_for_tokens(cached + n, bs) - static_cast<int32_t>(hits.size());
  if (n <= 0 || !kv_.can_allocate(hits, need)) {
    s->num_computed = 0;
    return false;
  }
  kv_.acquire(hits);
  s->blocks = hits;
  if (!kv_.allocate(need, &s->blocks).is_ok()) {  // can_allocate said yes; keep state exact anyway
    kv_.release(s->blocks);
    s->blocks.clear();
    s->num_computed = 0;
    return false;
  }
  s->num_registered_blocks = static_cast<int32_t>(hits.size());
  if (kv_.prefix_cache_enabled()) {
    stats_.prefix_cache_queries += s->num_tokens();
    stats_.prefix_cache_hits += cached;
  }
  RequestState* r = s->request;
  if (!r->admitted) {
    r->admitted = true;
    --num_waiting_requests_;
    if (s->choice == 0) r->cached_prompt_tokens = std::min(cached, s->prompt_len);
  }
  waiting_.erase(waiting_.begin());
  s->state = SequenceState::kRunning;
  insert_running(s);
  out->seqs.push_back(scheduled(s, n));
  out->num_tokens += n;
  return true;
}

runtime::StepPlan Scheduler::build_plan(const SchedulerOutput& out) const {
  runtime::StepPlan p;
  p.token_ids.reserve(static_cast<size_t>(out.num_tokens));
  p.positions.reserve(static_cast<size_t>(out.num_tokens));
  p.query_start.push_back(0);
  p.block_start.push_back(0);
  p.history_start.push_back(0);
  int32_t index = 0;
  for (const ScheduledSequence& e : out.seqs) {
    const Sequence& s = *e.seq;
    for (int32_t t = s.num_computed; t < s.num_computed + e.num_new; ++t) {
      p.token_ids.push_back(s.tokens[static_cast<size_t>(t)]);
      p.positions.push_back(t);
    }
    p.query_start.push_back(static_cast<int32_t>(p.token_ids.size()));
    p.kv_len.push_back(s.num_computed + e.num_new);
    p.block_ids.insert(p.block_ids.end(), s.blocks.begin(), s.blocks.end());
    p.block_start.push_back(static_cast<int32_t>(p.block_ids.size()));
    if (e.output) {
      p.output_seqs.push_back(index);
      p.output_kinds.push_back(*e.output);
    }
    if (e.samples) {
      p.sample_seqs.push_back(index);
      p.sampling.push_back(s.sampling);
      // Only penalties read the history; other samples get an empty span (prompt_len 0).
      const bool history = s.sampling.needs_history();
      if (history) p.history_tokens.insert(p.history_tokens.end(), s.tokens.begin(), s.tokens.end());
      p.history_start.push_back(static_cast<int32_t>(p.history_tokens.size()));
      p.prompt_len.push_back(history ? s.prompt_len : 0);
    }
    ++index;
  }
  return p;
}

ScheduledSequence Scheduler::scheduled(Sequence* s, int32_t n) const {
  const bool last = s->num_computed + n == s->num_tokens();
  ScheduledSequence e{s, n, last && s->output == RequestOutput::kTokens, std::nullopt};
  switch (s->output) {
    case RequestOutput::kTokens: break;
    case RequestOutput::kLastHidden:
      if (last) e.output = runtime::StepOutputKind::kLastHidden;
      break;
    case RequestOutput::kMeanHidden: e.output = runtime::StepOutputKind::kSumHidden; break;
    case RequestOutput::kLastLogits:
      if (last) e.output = runtime::StepOutputKind::kLastLogits;
      break;
  }
  return e;
}

void Scheduler::register_full_blocks(Sequence* s) {
  if (!kv_.prefix_cache_enabled() || s->output != RequestOutput::kTokens) return;
  const int32_t bs = kv_.block_size();
  const int32_t full = s->num_computed / bs;
  if (full <= s->num_registered_blocks) return;
  const std::span<const int32_t> tokens(s->tokens);
  kv_.extend_block_hashes(tokens.first(static_cast<size_t>(full) * static_cast<size_t>(bs)), &s->block_hashes);
  for (int32_t j = s->num_registered_blocks; j < full; ++j) {
    kv_.cache_full_block(s->blocks[static_cast<size_t>(j)], s->block_hashes[static_cast<size_t>(j)],
                         tokens.subspan(static_cast<size_t>(j) * static_cast<size_t>(bs), static_cast<size_t>(bs)));
  }
  s->num_registered_blocks = full;
}

void Scheduler::fork_choices(RequestState* r) {
  // The choices share the prompt's full blocks up to the last one before the final prompt token;
  // each computes the rest (under one block) itself, so no block is ever written by two
  // sequences and no partial block needs copying.
  Sequence& first = r->seqs[0];
  const int32_t bs = kv_.block_size();
  const int32_t k = std::min(max_prefix_hit_blocks(first.prompt_len, bs), static_cast<int32_t>(first.blocks.size()));
  const std::span<const int32_t> shared(first.blocks.data(), static_cast<size_t>(k));
  for (size_t c = 1; c < r->seqs.size(); ++c) {
    Sequence& child = r->seqs[c];
    if (child.state != SequenceState::kAwaitingFork) continue;
    kv_.acquire(shared);
    child.blocks.assign(shared.begin(), shared.end());
    child.num_computed = k * bs;
    child.num_registered_blocks = std::min(k, first.num_registered_blocks);
    child.block_hashes.assign(first.block_hashes.begin(),
                              first.block_hashes.begin() + std::min<ptrdiff_t>(k, static_cast<ptrdiff_t>(first.block_hashes.size())));
    child.state = SequenceState::kRunning;
    insert_running(&child);
  }
  r->forked = true;
}

StopRules Scheduler::stop_rules(const RequestState& r) const {
  StopRules rules;
  rules.stop_ids = r.stop_ids;
  rules.max_tokens = r.max_tokens;
  rules.max_len = max_len_;
  return rules;
}

void Scheduler::end_sequence(Sequence* s, FinishReason reason, RequestEvents* ev) {
  if (s->state == SequenceState::kFinished) return;
  if (s->state == SequenceState::kRunning || s->state == SequenceState::kWaiting) remove_from_queues(s);
  kv_.release(s->blocks);
  s->blocks.clear();
  s->state = SequenceState::kFinished;
  s->finish = reason;
  --s->request->unfinished;
  ev->finished.emplace_back(s->choice, reason);
}

void Scheduler::apply_output(Sequence* s, const std::vector<float>* output, RequestEvents* ev) {
  const bool last = s->num_computed == s->num_tokens();
  if (s->output == RequestOutput::kMeanHidden && output != nullptr) {
    if (s->pooled.empty()) s->pooled.assign(output->size(), 0.0f);
    for (size_t d = 0; d < output->size() && d < s->pooled.size(); ++d) s->pooled[d] += (*output)[d];
  }
  if (!last) return;
  if (s->output == RequestOutput::kMeanHidden) {
    ev->output = std::move(s->pooled);
    for (float& v : ev->output) v /= static_cast<float>(s->num_tokens());
  } else if (output != nullptr) {
    ev->output = *output;
  }
  s->pooled = {};
  end_sequence(s, FinishReason::kStop, ev);
}

void Scheduler::maybe_complete(RequestState* r, RequestEvents* ev) {
  if (r->unfinished > 0) return;
  ev->done = true;
  if (!r->error.is_ok() && ev->error.is_ok()) ev->error = r->error;
  ev->usage.prompt_tokens = r->seqs[0].prompt_len;
  for (const Sequence& s : r->seqs) ev->usage.completion_tokens += std::max(s.num_generated(), 0);
  ev->usage.cached_prompt_tokens = r->cached_prompt_tokens;
  if (!r->admitted) --num_waiting_requests_;
  ++stats_.requests_finished;
  requests_.erase(r->id);
}

Result<std::vector<RequestEvents>> Scheduler::apply_result(const SchedulerOutput& out,
                                                           const runtime::StepResult& result) {
  // Check the whole result before changing anything, so a bad one can fail the step cleanly.
  size_t num_samples = 0, num_outputs = 0;
  for (const ScheduledSequence& e : out.seqs) {
    num_samples += e.samples ? 1 : 0;
    num_outputs += e.output ? 1 : 0;
  }
  if (result.samples.size() != num_samples) {
    return internal_error(str_cat("engine returned ", result.samples.size(), " samples for a step that samples ",
                                  num_samples, " sequences"));
  }
  if (result.outputs.size() != num_outputs) {
    return internal_error(str_cat("engine returned ", result.outputs.size(), " outputs for a step that asks for ",
                                  num_outputs));
  }
  size_t j = 0;
  for (const ScheduledSequence& e : out.seqs) {
    if (!e.samples) continue;
    const runtime::SampledToken& st = result.samples[j++];
    // A constrained sample may come back without a token (its mask allowed none): that
    // sequence fails below, the step stands.
    if (st.token == runtime::ops::kNoAllowedToken && e.seq->constraint != nullptr) continue;
    if (st.token < 0 || st.token >= options_.vocab_size) {
      return internal_error(str_cat("engine sampled token id ", st.token, ", outside the vocabulary (size ",
                                    options_.vocab_size, ")"));
    }
  }

  std::vector<RequestEvents> events;
  std::unordered_map<uint64_t, size_t> slot;
  size_t k = 0, o = 0;
  for (const ScheduledSequence& e : out.seqs) {
    Sequence* s = e.seq;
    RequestState* r = s->request;
    auto [it, inserted] = slot.emplace(r->id, events.size());
    if (inserted) {
      events.emplace_back();
      events.back().request_id = r->id;
      events.back().first_scheduled = r->steps == 0;
      ++r->steps;
    }
    RequestEvents& ev = events[it->second];
    const runtime::SampledToken* st = e.samples ? &result.samples[k++] : nullptr;
    const std::vector<float>* output = e.output ? &result.outputs[o++] : nullptr;
    if (s->state != SequenceState::kRunning) continue;
    s->num_computed += e.num_new;
    register_full_blocks(s);
    if (s->output != RequestOutput::kTokens) {
      apply_output(s, output, &ev);
      continue;
    }
    if (st == nullptr) continue;
    if (s->choice == 0 && !r->forked) fork_choices(r);
    if (s->constraint != nullptr &&
        (st->token == runtime::ops::kNoAllowedToken || !s->constraint->accept(st->token))) {
      if (r->error.is_ok()) {
        r->error = failed_precondition(str_cat(
            "the output of choice ", s->choice, " cannot continue under its response format after ", s->num_generated(),
            " tokens: ", st->token == runtime::ops::kNoAllowedToken
                             ? "no token of the model's vocabulary is allowed"
                             : str_cat("the sampler returned token ", st->token, ", which is not allowed")));
      }
      end_sequence(s, FinishReason::kError, &ev);
      continue;
    }
    s->tokens.push_back(st->token);
    FinishReason f = finish_after_token(*s, st->token, stop_rules(*r));
    bool stop_token = f == FinishReason::kStop;
    if (s->constraint != nullptr && s->constraint->complete() && f != FinishReason::kStop) {
      // The output is whole: it ends here whatever the length limits say. The token is text
      // unless it is an end-of-sequence id the grammar accepted as its end (with ignore_eos).
      f = FinishReason::kStop;
      stop_token = std::find(options_.eos_token_ids.begin(), options_.eos_token_ids.end(), st->token) !=
                   options_.eos_token_ids.end();
    }
    ev.tokens.push_back({s->choice, *st, stop_token});
    if (f != FinishReason::kNone) end_sequence(s, f, &ev);
  }
  for (RequestEvents& ev : events) {
    auto it = requests_.find(ev.request_id);
    if (it != requests_.end()) maybe_complete(it->second.get(), &ev);
  }
  ++stats_.steps;
  stats_.tokens_computed += out.num_tokens;
  return events;
}

std::vector<RequestEvents> Scheduler::fail_step(const SchedulerOutput& out, const Status& error) {
  std::vector<RequestEvents> events;
  for (const ScheduledSequence& e : out.seqs) {
    const uint64_t id = e.seq->request->id;
    if (!has_request(id)) continue;  // already failed through an earlier choice
    RequestEvents ev = abort_request(id, FinishReason::kError);
    ev.error = error;
    events.push_back(std::move(ev));
  }
  ++stats_.steps;
  return events;
}

RequestEvents Scheduler::abort_request(uint64_t request_id, FinishReason reason) {
  RequestEvents ev;
  ev.request_id = request_id;
  auto it = requests_.find(request_id);
  if (it == requests_.end()) return ev;
  RequestState* r = it->second.get();
  for (Sequence& s : r->seqs) end_sequence(&s, reason, &ev);
  maybe_complete(r, &ev);
  return ev;
}

RequestEvents Scheduler::finish_choice(uint64_t request_id, int32_t choice, FinishReason reason) {
  RequestEvents ev;
  ev.request_id = request_id;
  auto it = requests_.find(request_id);
  if (it == requests_.end()) return ev;
  RequestState* r = it->second.get();
  if (choice < 0 || choice >= static_cast<int32_t>(r->seqs.size())) return ev;
  if (choice == 0 && !r->forked) {
    // The other choices were to fork from this one; they start on their own instead.
    for (size_t c = 1; c < r->seqs.size(); ++c) {
      Sequence& child = r->seqs[c];
      if (child.state != SequenceState::kAwaitingFork) continue;
      child.state = SequenceState::kWaiting;
      insert_waiting(&child);
    }
    r->forked = true;
  }
  end_sequence(&r->seqs[static_cast<size_t>(choice)], reason, &ev);
  maybe_complete(r, &ev);
  return ev;
}

Status Scheduler::check_invariants() const {
  KILN_RETURN_IF_ERROR(kv_.check_invariants());
  const int32_t bs = kv_.block_size();
  std::vector<int32_t> holders(static_cast<size_t>(kv_.num_blocks()), 0);
  for (size_t i = 0; i < running_.size(); ++i) {
    const Sequence* s = running_[i];
    const std::string who = str_cat("request ", s->request->id, " choice ", s->choice);
    if (s->state != SequenceState::kRunning) return internal_error(who + ": in the running list but not running");
    if (i > 0 && ranks_before(*s, *running_[i - 1])) return internal_error(who + ": running list out of rank order");
    if (s->num_computed >= s->num_tokens()) return internal_error(who + ": running with nothing left to compute");
    if (static_cast<int32_t>(s->blocks.size()) < blocks_for_tokens(s->num_computed, bs)) {
      return internal_error(who + ": block table shorter than its computed tokens");
    }
    std::vector<int32_t> sorted = s->blocks;
    std::sort(sorted.begin(), sorted.end());
    if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end()) {
      return internal_error(who + ": holds a block twice");
    }
    for (int32_t b : s->blocks) ++holders[static_cast<size_t>(b)];
  }
  for (size_t i = 0; i < waiting_.size(); ++i) {
    const Sequence* s = waiting_[i];
    const std::string who = str_cat("request ", s->request->id, " choice ", s->choice);
    if (s->state != SequenceState::kWaiting) return internal_error(who + ": in the waiting queue but not waiting");
    if (i > 0 && ranks_before(*s, *waiting_[i - 1])) return internal_error(who + ": waiting queue out of rank order");
    if (!s->blocks.empty() || s->num_computed != 0) return internal_error(who + ": waiting but holds KV blocks");
  }
  for (int32_t b = 0; b < kv_.num_blocks(); ++b) {
    if (holders[static_cast<size_t>(b)] != kv_.ref_count(b)) {
      return internal_error(str_cat("block ", b, " is held by ", holders[static_cast<size_t>(b)],
                                    " sequences but has ref_count ", kv_.ref_count(b)));
    }
  }
  if (static_cast<int32_t>(running_.size()) > options_.max_seqs) {
    return internal_error(str_cat(running_.size(), " sequences running, more than max_seqs ", options_.max_seqs));
  }
  int32_t in_queues = 0, never_admitted = 0;
  for (const auto& [id, r] : requests_) {
    if (!r->admitted) ++never_admitted;
    for (const Sequence& s : r->seqs) {
      if (s.state == SequenceState::kRunning || s.state == SequenceState::kWaiting) ++in_queues;
    }
  }
  if (in_queues != static_cast<int32_t>(running_.size() + waiting_.size())) {
    return internal_error("a running or waiting sequence is missing from the queues");
  }
  if (never_admitted != num_waiting_requests_) return internal_error("waiting request count is off");
  return Status::ok();
}

}  // namespace kiln::serve
