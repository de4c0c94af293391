// The scheduler's decisions as small pure functions of its state, so each can be tested alone
// (the split TensorRT-LLM makes between its capacity and micro-batch schedulers). Scheduler
// composes them and applies what they decide to the block manager and its queues.
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <vector>

#include "kiln/serve/sequence.h"

namespace kiln::serve {

// Blocks needed to hold `num_tokens` tokens.
int32_t blocks_for_tokens(int64_t num_tokens, int32_t block_size);

// Most leading full blocks a sequence of `num_tokens` tokens may take from the prefix cache. At
// least its last token is always computed (the step needs its logits), and a hit never covers a
// partly filled block, so the hit stops at the last block boundary before the last token.
int32_t max_prefix_hit_blocks(int32_t num_tokens, int32_t block_size);

// Tokens a sequence computes this step: all it has left, cut to the step's remaining token
// budget and, when max_chunk > 0, to max_chunk (chunked prefill). A decode step gives 1.
int32_t tokens_this_step(const Sequence& seq, int32_t budget, int32_t max_chunk);

// True when `a` is served before `b`: lower priority value, then earlier arrival, then lower
// choice index.
bool ranks_before(const Sequence& a, const Sequence& b);

// True when `waiting` may take the place of `running`: a strictly better (lower) priority. Within
// one priority, arrival order stands and nothing is preempted for a slot.
bool outranks_priority(const Sequence& waiting, const Sequence& running);

// No priority limit: every sequence may compute in the step.
inline constexpr int32_t kNoPriorityLimit = std::numeric_limits<int32_t>::max();

// The worst priority that computes in the next step, given the rank-ordered running list and
// waiting queue. While a sequence of a better priority than some running sequence has prompt
// left to compute (it waits, or it is running mid-prefill), the running sequences of worse
// priorities sit the step out, keeping their KV blocks: a step's time grows with every row in
// it (on a CPU almost linearly), so a client's prefill then runs in a step as short as on an
// idle server, and batch lines (priority 1) fill the steps clients leave instead of lengthening
// theirs. kNoPriorityLimit when nobody sits out.
int32_t step_priority_limit(std::span<Sequence* const> running, std::span<Sequence* const> waiting);

// Where a sequence joins a rank-ordered list (the running list, the waiting queue).
size_t rank_insert_position(std::span<Sequence* const> ranked, const Sequence& seq);

// The running sequence to preempt when blocks run out: the lowest ranked, i.e. the newest
// arrival of the lowest priority (the back of the rank-ordered running list). -1 when empty.
int32_t preemption_victim(std::span<Sequence* const> running);

// Sequence slots a waiting sequence takes when admitted: a request's first choice reserves one
// slot for each of its choices, since they fork from it once its prompt is computed.
int32_t slots_on_admission(const Sequence& seq);
// Slots held in reserve by running first choices whose siblings have not forked yet.
int32_t reserved_fork_slots(std::span<Sequence* const> running);

struct StopRules {
  std::span<const int32_t> stop_ids;     // EOS (unless ignore_eos) + the request's stop ids
  std::optional<int32_t> max_tokens;     // generated tokens per choice
  int64_t max_len = 0;                   // context limit: prompt + generated
};

// Why a sequence ends after `token` was appended to it (kNone: it goes on). A stop token wins
// over the length limits it may reach at the same time.
FinishReason finish_after_token(const Sequence& seq, int32_t token, const StopRules& rules);

}  // namespace kiln::serve
