#include "kiln/serve/schedule_policy.h"

#include <algorithm>

namespace kiln::serve {

int32_t blocks_for_tokens(int64_t num_tokens, int32_t block_size) {
  if (num_tokens <= 0) return 0;
  return static_cast<int32_t>((num_tokens + block_size - 1) / block_size);
}

int32_t max_prefix_hit_blocks(int32_t num_tokens, int32_t block_size) {
  if (num_tokens <= 1) return 0;
  return (num_tokens - 1) / block_size;
}

int32_t tokens_this_step(const Sequence& seq, int32_t budget, int32_t max_chunk) {
  int32_t n = std::min(seq.num_tokens() - seq.num_computed, budget);
  if (max_chunk > 0) n = std::min(n, max_chunk);
  return std::max(n, 0);
}

bool ranks_before(const Sequence& a, const Sequence& b) {
  if (a.priority != b.priority) return a.priority < b.priority;
  if (a.arrival != b.arrival) return a.arrival < b.arrival;
  return a.choice < b.choice;
}

size_t rank_insert_position(std::span<Sequence* const> ranked, const Sequence& seq) {
  auto it = std::upper_bound(ranked.begin(), ranked.end(), &seq,
                             [](const Sequence* x, const Sequence* y) { return ranks_before(*x, *y); });
  return static_cast<size_t>(it - ranked.begin());
}

bool outranks_priority(const Sequence& waiting, const Sequence& running) { return waiting.priority < running.priority; }

int32_t step_priority_limit(std::span<Sequence* const> running, std::span<Sequence* const> waiting) {
  if (running.empty()) return kNoPriorityLimit;
  int32_t best = waiting.empty() ? kNoPriorityLimit : waiting.front()->priority;  // the queue's best rank
  for (const Sequence* s : running) {
    if (s->priority >= best) break;  // rank order: the rest are no better
    if (s->num_tokens() - s->num_computed > 1) best = s->priority;  // mid-prefill
  }
  return best < running.back()->priority ? best : kNoPriorityLimit;
}

int32_t preemption_victim(std::span<Sequence* const> running) {
  return static_cast<int32_t>(running.size()) - 1;
}

int32_t slots_on_admission(const Sequence& seq) {
  const RequestState* r = seq.request;
  if (seq.choice == 0 && r != nullptr && !r->forked) return static_cast<int32_t>(r->seqs.size());
  return 1;
}

int32_t reserved_fork_slots(std::span<Sequence* const> running) {
  int32_t reserved = 0;
  for (const Sequence* s : running) {
    if (s->choice == 0 && s->request != nullptr && !s->request->forked) {
      reserved += static_cast<int32_t>(s->request->seqs.size()) - 1;
    }
  }
  return reserved;
}

FinishReason finish_after_token(const Sequence& seq, int32_t token, const StopRules& rules) {
  if (std::find(rules.stop_ids.begin(), rules.stop_ids.end(), token) != rules.stop_ids.end()) {
    return FinishReason::kStop;
  }
  if (rules.max_tokens && seq.num_generated() >= *rules.max_tokens) return FinishReason::kLength;
  if (rules.max_len > 0 && seq.num_tokens() >= rules.max_len) return FinishReason::kLength;
  return FinishReason::kNone;
}

}  // namespace kiln::serve
