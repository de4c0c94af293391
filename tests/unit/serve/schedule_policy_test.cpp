// The scheduler's small decisions, each alone.
#include "kiln/serve/schedule_policy.h"

#include <gtest/gtest.h>

namespace kiln::serve {
namespace {

Sequence seq(int32_t tokens, int32_t computed, int32_t priority = 0, uint64_t arrival = 0, int32_t choice = 0) {
  Sequence s;
  s.tokens.assign(static_cast<size_t>(tokens), 1);
  s.prompt_len = tokens;
  s.num_computed = computed;
  s.priority = priority;
  s.arrival = arrival;
  s.choice = choice;
  return s;
}

TEST(SchedulePolicy, BlockCounts) {
  struct Case { int64_t tokens; int32_t bs; int32_t blocks; int32_t max_hit; };
  for (const Case& c : std::vector<Case>{{0, 16, 0, 0}, {1, 16, 1, 0}, {16, 16, 1, 0}, {17, 16, 2, 1},
                                          {32, 16, 2, 1}, {33, 16, 3, 2}, {8, 4, 2, 1}, {9, 4, 3, 2}}) {
    EXPECT_EQ(blocks_for_tokens(c.tokens, c.bs), c.blocks) << c.tokens;
    EXPECT_EQ(max_prefix_hit_blocks(static_cast<int32_t>(c.tokens), c.bs), c.max_hit) << c.tokens;
  }
}

TEST(SchedulePolicy, TokensThisStep) {
  EXPECT_EQ(tokens_this_step(seq(100, 0), 8192, 0), 100);  // whole prompt
  EXPECT_EQ(tokens_this_step(seq(100, 0), 30, 0), 30);     // budget
  EXPECT_EQ(tokens_this_step(seq(100, 90), 30, 0), 10);    // the rest
  EXPECT_EQ(tokens_this_step(seq(100, 0), 30, 8), 8);      // chunk
  EXPECT_EQ(tokens_this_step(seq(100, 99), 30, 8), 1);     // decode
  EXPECT_EQ(tokens_this_step(seq(100, 99), 0, 8), 0);      // no budget left
}

TEST(SchedulePolicy, RankOrderAndVictim) {
  Sequence a = seq(1, 0, 0, 5), b = seq(1, 0, 0, 7), c = seq(1, 0, -1, 9), d = seq(1, 0, 0, 7, 1);
  EXPECT_TRUE(ranks_before(a, b));
  EXPECT_TRUE(ranks_before(c, a));  // priority before arrival
  EXPECT_TRUE(ranks_before(b, d));  // then choice
  EXPECT_FALSE(ranks_before(a, a));
  std::vector<Sequence*> ranked = {&c, &a, &b};
  EXPECT_EQ(rank_insert_position(ranked, d), 3u);
  Sequence e = seq(1, 0, 0, 6);
  EXPECT_EQ(rank_insert_position(ranked, e), 2u);
  Sequence f = seq(1, 0, -2, 100);
  EXPECT_EQ(rank_insert_position(ranked, f), 0u);
  EXPECT_EQ(preemption_victim(ranked), 2);
  EXPECT_EQ(preemption_victim({}), -1);
}

TEST(SchedulePolicy, StepPriorityLimit) {
  // Running: a client decoding, two batch lines decoding.
  Sequence c = seq(10, 9, 0, 1), b1 = seq(10, 9, 1, 2), b2 = seq(10, 9, 1, 3);
  std::vector<Sequence*> running = {&c, &b1, &b2};
  EXPECT_EQ(step_priority_limit(running, {}), kNoPriorityLimit);  // nobody prefills
  Sequence c2 = seq(50, 0, 0, 4);                                 // a client arrives
  std::vector<Sequence*> waiting = {&c2};
  EXPECT_EQ(step_priority_limit(running, waiting), 0);
  Sequence b3 = seq(50, 0, 1, 5);  // a batch line arrives: same priority as the worst running
  std::vector<Sequence*> batch_waiting = {&b3};
  EXPECT_EQ(step_priority_limit(running, batch_waiting), kNoPriorityLimit);
  c.num_computed = 4;  // the client is mid-prefill
  EXPECT_EQ(step_priority_limit(running, batch_waiting), 0);
  std::vector<Sequence*> clients = {&c};  // only clients run
  EXPECT_EQ(step_priority_limit(clients, waiting), kNoPriorityLimit);
  EXPECT_EQ(step_priority_limit({}, waiting), kNoPriorityLimit);
  Sequence urgent = seq(5, 0, -1, 6);  // three priorities: the best one prefilling sets the limit
  std::vector<Sequence*> urgent_waiting = {&urgent};
  EXPECT_EQ(step_priority_limit(running, urgent_waiting), -1);
}

TEST(SchedulePolicy, ForkSlots) {
  RequestState r;
  r.seqs.resize(3);
  for (int i = 0; i < 3; ++i) {
    r.seqs[static_cast<size_t>(i)].request = &r;
    r.seqs[static_cast<size_t>(i)].choice = i;
  }
  EXPECT_EQ(slots_on_admission(r.seqs[0]), 3);
  EXPECT_EQ(slots_on_admission(r.seqs[1]), 1);
  std::vector<Sequence*> running = {&r.seqs[0]};
  EXPECT_EQ(reserved_fork_slots(running), 2);
  r.forked = true;
  EXPECT_EQ(slots_on_admission(r.seqs[0]), 1);
  EXPECT_EQ(reserved_fork_slots(running), 0);
}

TEST(SchedulePolicy, FinishAfterToken) {
  const std::vector<int32_t> stops = {2, 9};
  StopRules rules;
  rules.stop_ids = stops;
  rules.max_tokens = 3;
  rules.max_len = 20;
  Sequence s = seq(10, 9);
  s.prompt_len = 8;  // 2 generated
  EXPECT_EQ(finish_after_token(s, 5, rules), FinishReason::kNone);
  EXPECT_EQ(finish_after_token(s, 9, rules), FinishReason::kStop);
  s.tokens.push_back(5);  // 3 generated
  EXPECT_EQ(finish_after_token(s, 5, rules), FinishReason::kLength);
  EXPECT_EQ(finish_after_token(s, 2, rules), FinishReason::kStop);  // a stop token wins
  rules.max_tokens.reset();
  EXPECT_EQ(finish_after_token(s, 5, rules), FinishReason::kNone);
  rules.max_len = 11;  // the context is full
  EXPECT_EQ(finish_after_token(s, 5, rules), FinishReason::kLength);
}

}  // namespace
}  // namespace kiln::serve
