// Table-driven scheduler tests: scripted arrivals, cancellations and block shortages, and the
// batch expected at every step. The harness checks the scheduler's and the block manager's
// invariants after every step.
#include "kiln/serve/scheduler.h"

#include <gtest/gtest.h>

#include "kiln/runtime/engine.h"
#include "kiln/runtime/memory_plan.h"
#include "unit/serve/scheduler_harness.h"

namespace kiln::serve {
namespace {

using testing::Arrival;
using testing::Harness;

struct StepCase {
  std::vector<Arrival> arrive;
  std::vector<std::string> cancel;
  std::string expect;  // see Harness::step
};

struct TableCase {
  std::string name;
  Harness::Config config;
  std::vector<StepCase> steps;
};

Harness::Config config(int32_t num_blocks, int32_t budget, int32_t max_seqs, int32_t chunk = 0, bool cache = true) {
  Harness::Config c;
  c.num_blocks = num_blocks;
  c.max_batched_tokens = budget;
  c.max_seqs = max_seqs;
  c.max_prefill_chunk = chunk;
  c.prefix_cache = cache;
  return c;
}

Arrival req(std::string name, int32_t prompt_len, int32_t max_tokens) {
  Arrival a;
  a.name = std::move(name);
  a.prompt_len = prompt_len;
  a.max_tokens = max_tokens;
  return a;
}

Arrival with_priority(Arrival a, int32_t p) { a.priority = p; return a; }
Arrival with_n(Arrival a, int32_t n) { a.n = n; return a; }
Arrival in_family(Arrival a, int32_t family, int32_t shared) { a.family = family; a.shared = shared; return a; }

std::vector<TableCase> table() {
  return {
      {"new requests join and finished ones leave at every step", config(64, 100, 8),
       {{{req("a", 5, 3)}, {}, "a:5s"},
        {{req("b", 3, 2)}, {}, "a:1s b:3s"},
        {{}, {}, "a:1s b:1s"},
        {{}, {}, ""}}},
      {"long prompts are prefilled in chunks inside the token budget", config(64, 8, 8),
       {{{req("a", 20, 2)}, {}, "a:8"},
        {{req("b", 3, 2)}, {}, "a:8"},
        {{}, {}, "a:4s b:3s"},
        {{}, {}, "a:1s b:1s"},
        {{}, {}, ""}}},
      {"max_prefill_chunk cuts prompts even when the budget has room", config(64, 100, 8, 3),
       {{{req("a", 7, 1), req("b", 2, 1)}, {}, "a:3 b:2s"},
        {{}, {}, "a:3"},
        {{}, {}, "a:1s"},
        {{}, {}, ""}}},
      {"the sequence cap holds later requests back", config(64, 100, 2),
       {{{req("a", 3, 2), req("b", 3, 3), req("c", 3, 1)}, {}, "a:3s b:3s"},
        {{}, {}, "a:1s b:1s"},
        {{}, {}, "b:1s c:3s"},
        {{}, {}, ""}}},
      {"lower priority values first, then arrival order", config(64, 100, 1),
       {{{req("a", 3, 1)}, {}, "a:3s"},
        {{with_priority(req("b", 3, 1), 5), with_priority(req("c", 3, 1), 1), with_priority(req("d", 3, 1), 1)}, {}, "c:3s"},
        {{}, {}, "d:3s"},
        {{}, {}, "b:3s"},
        {{}, {}, ""}}},
      // 4 blocks of 4 tokens. Each prompt takes 2 blocks; when a needs its third, b (newest) is
      // preempted by recompute. b's first block survives in the prefix cache until a needs it.
      {"the newest running sequence is preempted when blocks run out", config(4, 100, 8),
       {{{req("a", 6, 8), req("b", 6, 8)}, {}, "a:6s b:6s"},
        {{}, {}, "a:1s b:1s"},
        {{}, {}, "a:1s b:1s"},
        {{}, {}, "a:1s | preempted 1"},
        {{}, {}, "a:1s"},
        {{}, {}, "a:1s"},
        {{}, {}, "a:1s"},
        {{}, {}, "a:1s"},
        {{}, {}, "b:9s"},  // recomputes prompt + its 3 tokens, samples its 4th
        {{}, {}, "b:1s"},
        {{}, {}, "b:1s"},
        {{}, {}, "b:1s"},
        {{}, {}, "b:1s"},
        {{}, {}, ""}}},
      {"a cancelled request leaves at the next step boundary", config(64, 100, 8),
       {{{req("a", 4, 10), req("b", 4, 10)}, {}, "a:4s b:4s"},
        {{}, {"b"}, "a:1s"},
        {{req("c", 2, 1)}, {"a"}, "c:2s"},
        {{}, {}, ""}}},
      {"a cancelled waiting request never runs", config(64, 100, 1),
       {{{req("a", 4, 2), req("b", 4, 2)}, {}, "a:4s"},
        {{}, {"b"}, "a:1s"},
        {{}, {}, ""}}},
      // n = 3 with a 9-token prompt: the choices share its first 2 blocks (8 tokens) and each
      // recomputes token 8 in a block of its own. The parent reserves 3 of the 3 slots, so d
      // waits until a choice ends.
      {"choices fork after the prompt and share its full blocks", config(64, 100, 3),
       {{{with_n(req("c", 9, 2), 3), req("d", 3, 1)}, {}, "c.0:9s"},
        {{}, {}, "c.0:1s c.1:1s c.2:1s"},
        {{}, {}, "c.1:1s c.2:1s d:3s"},
        {{}, {}, ""}}},
      {"a prefix shared with a finished request is served from the cache", config(64, 100, 8),
       {{{in_family(req("a", 12, 2), 1, 12)}, {}, "a:12s"},
        {{}, {}, "a:1s"},
        {{in_family(req("b", 15, 2), 1, 12)}, {}, "b:3s"},
        // A fully cached prompt still computes its last block: 12 tokens, 8 from the cache.
        {{in_family(req("c", 12, 1), 1, 12)}, {}, "b:1s c:4s"},
        {{}, {}, ""}}},
      {"--no-prefix-cache recomputes shared prefixes", config(64, 100, 8, 0, false),
       {{{in_family(req("a", 12, 2), 1, 12)}, {}, "a:12s"},
        {{}, {}, "a:1s"},
        {{in_family(req("b", 15, 2), 1, 12)}, {}, "b:15s"},
        {{}, {}, "b:1s"},
        {{}, {}, ""}}},
      // Two identical prompts in one step both compute their blocks (neither is cached yet);
      // the first copy becomes the cached one.
      {"identical prompts admitted together", config(64, 100, 8),
       {{{in_family(req("a", 8, 1), 2, 8), in_family(req("b", 8, 1), 2, 8)}, {}, "a:8s b:8s"},
        {{in_family(req("c", 8, 1), 2, 8)}, {}, "c:4s"},
        {{}, {}, ""}}},
  };
}

TEST(Scheduler, TableOfStepByStepBatches) {
  for (const TableCase& tc : table()) {
    SCOPED_TRACE(tc.name);
    Harness h(tc.config);
    for (size_t i = 0; i < tc.steps.size(); ++i) {
      SCOPED_TRACE(str_cat("step ", i + 1));
      for (const Arrival& a : tc.steps[i].arrive) ASSERT_TRUE(h.arrive(a).is_ok());
      for (const std::string& name : tc.steps[i].cancel) h.cancel(name);
      EXPECT_EQ(h.step(), tc.steps[i].expect);
    }
    EXPECT_FALSE(h.scheduler().has_work());
    EXPECT_EQ(h.scheduler().kv().num_used(), 0);
  }
}

TEST(Scheduler, PreemptionFreesTheVictimsBlocksAndRecomputesIt) {
  Harness h(config(4, 100, 8));
  ASSERT_TRUE(h.arrive(req("a", 6, 8)).is_ok());
  ASSERT_TRUE(h.arrive(req("b", 6, 8)).is_ok());
  for (int i = 0; i < 3; ++i) h.step();
  EXPECT_EQ(h.scheduler().kv().num_used(), 4);
  EXPECT_EQ(h.step(), "a:1s | preempted 1");
  EXPECT_EQ(h.scheduler().num_running(), 1);
  ASSERT_EQ(h.scheduler().num_waiting(), 1);
  EXPECT_EQ(h.scheduler().waiting().front()->num_computed, 0);
  EXPECT_EQ(h.scheduler().stats().preemptions, 1);
  EXPECT_EQ(h.scheduler().kv().num_used(), 3);  // a's 3 blocks only
  h.run_to_completion();
  // b's tokens are what it produces alone.
  Harness alone(config(64, 100, 8));
  ASSERT_TRUE(alone.arrive(req("b", 6, 8)).is_ok());
  alone.run_to_completion();
  EXPECT_EQ(h.record("b").tokens, alone.record("b").tokens);
  EXPECT_EQ(h.record("b").usage.completion_tokens, 8);
}

TEST(Scheduler, CancelledRequestsReportCancelledAndFreeTheirBlocks) {
  Harness h(config(64, 100, 8));
  ASSERT_TRUE(h.arrive(with_n(req("a", 9, 10), 2)).is_ok());
  h.step();
  h.step();
  EXPECT_GT(h.scheduler().kv().num_used(), 0);
  h.cancel("a");
  EXPECT_EQ(h.scheduler().kv().num_used(), 0);
  EXPECT_EQ(h.scheduler().num_running(), 0);
  const auto& rec = h.record("a");
  EXPECT_TRUE(rec.done);
  EXPECT_EQ(rec.finish, (std::vector<FinishReason>{FinishReason::kCancelled, FinishReason::kCancelled}));
  EXPECT_EQ(rec.usage.completion_tokens, 3);  // 2 from choice 0, 1 from choice 1
}

TEST(Scheduler, ForkSharesBlocksByReferenceCount) {
  Harness h(config(64, 100, 8));
  ASSERT_TRUE(h.arrive(with_n(req("c", 9, 3), 3)).is_ok());
  h.step();
  const RequestState* r = h.scheduler().running().front()->request;
  ASSERT_EQ(h.scheduler().num_running(), 3);
  const int32_t shared0 = r->seqs[0].blocks[0];
  EXPECT_EQ(h.scheduler().kv().ref_count(shared0), 3);
  EXPECT_EQ(r->seqs[1].blocks, (std::vector<int32_t>{shared0, r->seqs[0].blocks[1]}));
  EXPECT_EQ(r->seqs[1].num_computed, 8);
  EXPECT_EQ(h.step(), "c.0:1s c.1:1s c.2:1s");
  ASSERT_EQ(r->seqs[1].blocks.size(), 3u);
  EXPECT_NE(r->seqs[1].blocks[2], r->seqs[0].blocks[2]);  // each has its own partial block
  EXPECT_NE(r->seqs[1].blocks[2], r->seqs[2].blocks[2]);
  h.run_to_completion();
  const auto& rec = h.record("c");
  EXPECT_EQ(rec.usage.prompt_tokens, 9);
  EXPECT_EQ(rec.usage.completion_tokens, 9);
  // Greedy choices are the same; seeded sampled choices differ from each other.
  EXPECT_EQ(rec.tokens[0], rec.tokens[1]);
  Harness s(config(64, 100, 8));
  Arrival sampled = with_n(req("s", 9, 6), 3);
  sampled.temperature = 1.0f;
  sampled.seed = 42;
  ASSERT_TRUE(s.arrive(sampled).is_ok());
  s.run_to_completion();
  EXPECT_NE(s.record("s").tokens[0], s.record("s").tokens[1]);
  EXPECT_NE(s.record("s").tokens[1], s.record("s").tokens[2]);
  // Choice 0 samples with the request's own seed: the same as a one-choice request.
  Harness one(config(64, 100, 8));
  Arrival single = req("s", 9, 6);
  single.temperature = 1.0f;
  single.seed = 42;
  ASSERT_TRUE(one.arrive(single).is_ok());
  one.run_to_completion();
  EXPECT_EQ(one.record("s").tokens[0], s.record("s").tokens[0]);
}

TEST(Scheduler, ReportsCachedPromptTokens) {
  Harness h(config(64, 100, 8));
  ASSERT_TRUE(h.arrive(in_family(req("a", 40, 1), 3, 40)).is_ok());
  h.run_to_completion();
  ASSERT_TRUE(h.arrive(in_family(req("b", 50, 1), 3, 40)).is_ok());
  EXPECT_EQ(h.step(), "b:10s");
  EXPECT_EQ(h.record("a").usage.cached_prompt_tokens, 0);
  EXPECT_EQ(h.record("b").usage.cached_prompt_tokens, 40);
  EXPECT_EQ(h.scheduler().stats().prefix_cache_hits, 40);
}

TEST(Scheduler, FinishReasons) {
  // The fake engine emits EOS (2) once the context holds 7 tokens, token 77 otherwise.
  auto script = [](std::span<const int32_t> ctx, const runtime::SamplingParams&) {
    return ctx.size() == 7 ? 2 : 77;
  };
  struct Case {
    Arrival a;
    std::vector<int32_t> want;
    FinishReason reason;
  };
  Arrival ignore = req("i", 5, 4);
  ignore.ignore_eos = true;
  Arrival stop_ids = req("s", 5, 10);
  stop_ids.ignore_eos = true;
  stop_ids.stop_token_ids = {77};
  std::vector<Case> cases = {
      {req("eos", 5, 10), {77, 77, 2}, FinishReason::kStop},
      {req("len", 5, 2), {77, 77}, FinishReason::kLength},
      {ignore, {77, 77, 2, 77}, FinishReason::kLength},
      {stop_ids, {77}, FinishReason::kStop},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.a.name);
    Harness h(config(64, 100, 8));
    h.engine().next_token = script;
    ASSERT_TRUE(h.arrive(c.a).is_ok());
    h.run_to_completion();
    EXPECT_EQ(h.record(c.a.name).tokens[0], c.want);
    EXPECT_EQ(h.record(c.a.name).finish[0], c.reason);
  }
  // The context limit: max_model_len 12 and a prompt of 9 leave room for 3 tokens.
  Harness::Config small = config(64, 100, 8);
  small.max_model_len = 12;
  Harness h(small);
  h.engine().next_token = [](std::span<const int32_t>, const runtime::SamplingParams&) { return 77; };
  Arrival a = req("ctx", 9, 100);
  ASSERT_TRUE(h.arrive(a).is_ok());
  h.run_to_completion();
  EXPECT_EQ(h.record("ctx").tokens[0].size(), 3u);
  EXPECT_EQ(h.record("ctx").finish[0], FinishReason::kLength);
}

TEST(Scheduler, RejectsImpossibleRequestsNamingTheField) {
  Harness::Config c = config(4, 100, 8);  // 16 tokens of KV: the context limit is 16
  Harness h(c);
  struct Case {
    Arrival a;
    std::string field;
  };
  Arrival bad_n = req("n", 3, 1);
  bad_n.n = 9;
  Arrival bad_temp = req("t", 3, 1);
  bad_temp.temperature = -1.0f;
  std::vector<Case> cases = {
      {req("empty", 0, 1), "prompt"},
      {req("long", 16, 1), "prompt"},
      {req("zero", 3, 0), "max_tokens"},
      {bad_n, "n"},
      {bad_temp, "temperature"},
  };
  for (const Case& k : cases) {
    Status st = h.arrive(k.a);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << k.a.name;
    EXPECT_EQ(st.param(), k.field) << st.message();
    EXPECT_TRUE(st.message().starts_with(k.field + ": ")) << st.message();
  }
  Request out_of_vocab;
  out_of_vocab.prompt = {5, 1000};
  Status st = h.scheduler().add_request(99, out_of_vocab, 0);
  EXPECT_NE(st.message().find("outside the vocabulary"), std::string::npos) << st.message();
  EXPECT_EQ(st.param(), "prompt");
  EXPECT_FALSE(h.scheduler().has_work());
  EXPECT_TRUE(h.arrive(req("fits", 15, 1)).is_ok());
  h.run_to_completion();
  EXPECT_EQ(h.record("fits").finish[0], FinishReason::kLength);
}

TEST(Scheduler, FailedStepFailsOnlyItsRequests) {
  Harness h(config(64, 4, 8));
  ASSERT_TRUE(h.arrive(req("a", 3, 3)).is_ok());
  EXPECT_EQ(h.step(), "a:3s");
  ASSERT_TRUE(h.arrive(req("b", 8, 2)).is_ok());
  int calls = 0;
  h.engine().fail_step = [&](const runtime::StepPlan&) {
    return ++calls == 1 ? internal_error("device fault") : Status::ok();
  };
  EXPECT_EQ(h.step(), "a:1s b:3");  // fails: both requests in it fail
  EXPECT_TRUE(h.record("a").done);
  EXPECT_EQ(h.record("a").error.message(), "device fault");
  EXPECT_EQ(h.record("b").finish[0], FinishReason::kError);
  EXPECT_EQ(h.scheduler().kv().num_used(), 0);
  ASSERT_TRUE(h.arrive(req("c", 3, 1)).is_ok());
  EXPECT_EQ(h.step(), "c:3s");
  EXPECT_TRUE(h.record("c").error.is_ok());
}

TEST(Scheduler, FinishingAChoiceEarlyFreesOnlyIt) {
  Harness h(config(64, 100, 8));
  ASSERT_TRUE(h.arrive(with_n(req("a", 5, 10), 2)).is_ok());
  h.step();
  h.step();
  RequestEvents ev = h.scheduler().finish_choice(h.id_of("a"), 1, FinishReason::kStop);
  EXPECT_FALSE(ev.done);
  ASSERT_EQ(ev.finished.size(), 1u);
  EXPECT_EQ(ev.finished[0], std::make_pair(1, FinishReason::kStop));
  EXPECT_EQ(h.scheduler().num_running(), 1);
  EXPECT_TRUE(h.scheduler().check_invariants().is_ok());
  ev = h.scheduler().finish_choice(h.id_of("a"), 0, FinishReason::kStop);
  EXPECT_TRUE(ev.done);
  EXPECT_EQ(ev.usage.completion_tokens, 3);
  EXPECT_EQ(h.scheduler().kv().num_used(), 0);
}

TEST(Scheduler, EarlyStopOfAnUnforkedFirstChoiceStartsTheOthers) {
  Harness h(config(64, 4, 8));
  ASSERT_TRUE(h.arrive(with_n(req("a", 10, 2), 3)).is_ok());
  EXPECT_EQ(h.step(), "a.0:4");
  h.scheduler().finish_choice(h.id_of("a"), 0, FinishReason::kStop);
  EXPECT_EQ(h.scheduler().num_waiting(), 2);
  EXPECT_EQ(h.step(), "a.1:4");
  h.run_to_completion();
  EXPECT_EQ(h.record("a").tokens[1].size(), 2u);
  EXPECT_EQ(h.record("a").tokens[2].size(), 2u);
}

// Issue 3.E: with the default limits (the engine's step budget and its device's prefill chunk, as
// the engine worker passes them), a long prompt is prefilled a chunk per step and short requests
// that arrive meanwhile get their first token in the very step they are first scheduled: the next
// one. Without the chunk, the long prompt took the whole budget of every step until it was done.
TEST(Scheduler, ShortRequestsAreNotHeldBehindALongPrefillByDefault) {
  for (const runtime::DeviceKind device : {runtime::DeviceKind::kCpu, runtime::DeviceKind::kCuda}) {
    const runtime::EngineOptions defaults;
    Harness::Config c;
    c.block_size = 16;
    c.num_blocks = 4200;
    c.max_model_len = 65536;
    c.max_batched_tokens = runtime::default_max_batched_tokens(device, defaults.max_seqs);
    c.max_seqs = defaults.max_seqs;
    c.max_prefill_chunk = std::min(runtime::default_prefill_chunk(device), c.max_batched_tokens);
    Harness h(c);
    ASSERT_TRUE(h.arrive(req("long", 60000, 2)).is_ok());
    const std::string chunk = str_cat("long:", c.max_prefill_chunk);
    EXPECT_EQ(h.step(), chunk);
    EXPECT_EQ(h.step(), chunk);
    for (const char* name : {"s1", "s2", "s3"}) ASSERT_TRUE(h.arrive(req(name, 40, 3)).is_ok());
    // The next step still prefills the long prompt and samples every short one.
    EXPECT_EQ(h.step(), chunk + " s1:40s s2:40s s3:40s");
    EXPECT_EQ(h.step(), chunk + " s1:1s s2:1s s3:1s");
    EXPECT_FALSE(h.record("long").done);
    for (const char* name : {"s1", "s2", "s3"}) EXPECT_EQ(h.record(name).tokens[0].size(), 2u) << name;
    h.run_to_completion();
    EXPECT_EQ(h.record("long").tokens[0].size(), 2u);
  }
}

// The same scene with the chunk off (the whole budget for one prompt): the short requests wait
// until the long prompt's last chunk, which is what the default avoids.
TEST(Scheduler, WithoutAChunkALongPrefillHoldsShortRequestsBack) {
  const runtime::EngineOptions defaults;
  Harness::Config c;
  c.block_size = 16;
  c.num_blocks = 4200;
  c.max_model_len = 65536;
  c.max_batched_tokens = runtime::default_max_batched_tokens(runtime::DeviceKind::kCuda, defaults.max_seqs);
  c.max_seqs = defaults.max_seqs;
  Harness h(c);
  ASSERT_TRUE(h.arrive(req("long", 60000, 2)).is_ok());
  h.step();
  for (const char* name : {"s1", "s2", "s3"}) ASSERT_TRUE(h.arrive(req(name, 40, 3)).is_ok());
  int steps = 0;
  while (h.record("s1").tokens[0].empty() && steps < 100) {
    h.step();
    ++steps;
  }
  EXPECT_EQ(steps, 60000 / c.max_batched_tokens);  // every remaining full-budget chunk
}

// Batch work runs at priority 1: when it holds every sequence slot, a client's request (priority
// 0) takes the slot of the newest batch sequence at once instead of waiting for one to finish;
// the batch sequence is recomputed later and produces what it would have alone.
TEST(Scheduler, ABetterPriorityTakesTheSlotOfALowerOne) {
  Harness h(config(64, 100, 2));
  Arrival b1 = req("b1", 4, 8), b2 = req("b2", 4, 8), client = req("c", 4, 2);
  b1.priority = b2.priority = 1;
  ASSERT_TRUE(h.arrive(b1).is_ok());
  ASSERT_TRUE(h.arrive(b2).is_ok());
  EXPECT_EQ(h.step(), "b1:4s b2:4s");
  ASSERT_TRUE(h.arrive(client).is_ok());
  EXPECT_EQ(h.step(), "c:4s");  // b1 sits out the client's prefill step (below)
  EXPECT_EQ(h.step(), "c:1s b1:1s");
  EXPECT_EQ(h.scheduler().stats().preemptions, 1);
  // Same priority: no preemption for a slot, FCFS holds.
  Arrival b3 = req("b3", 4, 2);
  b3.priority = 1;
  ASSERT_TRUE(h.arrive(b3).is_ok());
  h.run_to_completion();
  EXPECT_EQ(h.scheduler().stats().preemptions, 1);
  Harness alone(config(64, 100, 8));
  ASSERT_TRUE(alone.arrive(req("b2", 4, 8)).is_ok());
  alone.run_to_completion();
  EXPECT_EQ(h.record("b2").tokens, alone.record("b2").tokens);
}

// A client's prefill step leaves batch sequences out (they keep their blocks), so the client's
// first token comes after a step as short as on an idle server; the batch goes on in the next
// step, next to the client's decode. A long client prompt keeps the batch out for each chunk.
TEST(Scheduler, BatchSequencesSitOutAClientsPrefill) {
  Harness h(config(64, 100, 8, 4));
  Arrival b1 = with_priority(req("b1", 3, 8), 1), b2 = with_priority(req("b2", 3, 8), 1);
  ASSERT_TRUE(h.arrive(b1).is_ok());
  ASSERT_TRUE(h.arrive(b2).is_ok());
  EXPECT_EQ(h.step(), "b1:3s b2:3s");
  EXPECT_EQ(h.step(), "b1:1s b2:1s");
  ASSERT_TRUE(h.arrive(req("c", 10, 3)).is_ok());
  EXPECT_EQ(h.step(), "c:4");
  EXPECT_EQ(h.step(), "c:4");
  EXPECT_EQ(h.step(), "c:2s");
  EXPECT_EQ(h.step(), "c:1s b1:1s b2:1s");  // rank order: the client first
  EXPECT_EQ(h.scheduler().stats().yielded_steps, 3);
  EXPECT_EQ(h.scheduler().stats().preemptions, 0);
  // Batch lines among themselves and clients among themselves share steps as before.
  ASSERT_TRUE(h.arrive(with_priority(req("b3", 2, 1), 1)).is_ok());
  EXPECT_EQ(h.step(), "c:1s b1:1s b2:1s b3:2s");
  h.run_to_completion();
  EXPECT_EQ(h.scheduler().stats().yielded_steps, 3);
  // Sitting out changes no token: b1 alone produces the same.
  Harness alone(config(64, 100, 8, 4));
  ASSERT_TRUE(alone.arrive(req("b1", 3, 8)).is_ok());
  alone.run_to_completion();
  EXPECT_EQ(h.record("b1").tokens, alone.record("b1").tokens);
}

// When the client's prompt cannot get KV blocks yet, the step is not wasted: the batch runs.
TEST(Scheduler, BatchSequencesRunWhenTheClientCannotStart) {
  // 4 blocks of 4 tokens: b1 holds 2, the client's 12-token prompt needs 3.
  Harness h(config(4, 100, 8));
  ASSERT_TRUE(h.arrive(with_priority(req("b1", 6, 3), 1)).is_ok());
  EXPECT_EQ(h.step(), "b1:6s");
  ASSERT_TRUE(h.arrive(req("c", 12, 1)).is_ok());
  EXPECT_EQ(h.step(), "b1:1s");
  EXPECT_EQ(h.scheduler().stats().yielded_steps, 0);
  h.run_to_completion();
  EXPECT_TRUE(h.record("c").done);
}

}  // namespace
}  // namespace kiln::serve
