// Prefill-only requests (RequestOutput): the plan asks for outputs instead of samples, a mean is
// summed over chunks, the request ends with its vector after its last token and keeps no KV, and
// the prefix cache neither serves nor keeps its blocks.
#include <gtest/gtest.h>

#include "kiln/serve/scheduler.h"

namespace kiln::serve {
namespace {

std::unique_ptr<Scheduler> make_scheduler(int32_t chunk) {
  SchedulerOptions o;
  o.max_batched_tokens = 64;
  o.max_seqs = 8;
  o.max_prefill_chunk = chunk;
  o.max_model_len = 256;
  o.vocab_size = 100;
  o.eos_token_ids = {1};
  o.kv = {64, 4};
  auto s = Scheduler::create(o);
  EXPECT_TRUE(s.is_ok()) << s.status().to_string();
  return std::move(s).value();
}

Request prefill_request(int32_t len, RequestOutput output) {
  Request r;
  for (int32_t i = 0; i < len; ++i) r.prompt.push_back(2 + i % 90);  // inside the vocabulary of 100
  r.output = output;
  return r;
}

// The engine's answer to a plan: each output is [first token's id of its span, span length]
// (a "sum" the test can check), each sample token 5.
runtime::StepResult fake_result(const runtime::StepPlan& plan) {
  runtime::StepResult r;
  for (int32_t j = 0; j < plan.num_samples(); ++j) r.samples.push_back({5, 0.0f, {}});
  for (int32_t j = 0; j < plan.num_outputs(); ++j) {
    const auto seq = static_cast<size_t>(plan.output_seqs[static_cast<size_t>(j)]);
    const int32_t first = plan.query_start[seq], n = plan.query_start[seq + 1] - first;
    r.outputs.push_back({static_cast<float>(plan.token_ids[static_cast<size_t>(first)]), static_cast<float>(n)});
  }
  return r;
}

std::vector<RequestEvents> run_step(Scheduler& s, runtime::StepPlan* plan_out = nullptr) {
  SchedulerOutput out = s.schedule();
  runtime::StepPlan plan = s.build_plan(out);
  auto ev = s.apply_result(out, fake_result(plan));
  EXPECT_TRUE(ev.is_ok()) << ev.status().to_string();
  EXPECT_TRUE(s.check_invariants().is_ok()) << s.check_invariants().to_string();
  if (plan_out != nullptr) *plan_out = plan;
  return ev.is_ok() ? std::move(ev).value() : std::vector<RequestEvents>{};
}

TEST(SchedulerOutputs, LastHiddenComesOnceAfterTheLastChunk) {
  auto s = make_scheduler(8);
  ASSERT_TRUE(s->add_request(1, prefill_request(20, RequestOutput::kLastHidden), 0).is_ok());
  runtime::StepPlan plan;
  for (int step = 0; step < 2; ++step) {
    auto ev = run_step(*s, &plan);
    EXPECT_TRUE(plan.sample_seqs.empty());
    EXPECT_TRUE(plan.output_seqs.empty());  // not the last chunk yet
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_FALSE(ev[0].done);
  }
  auto ev = run_step(*s, &plan);
  ASSERT_EQ(plan.output_kinds.size(), 1u);
  EXPECT_EQ(plan.output_kinds[0], runtime::StepOutputKind::kLastHidden);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_TRUE(ev[0].done);
  EXPECT_TRUE(ev[0].error.is_ok());
  EXPECT_EQ(ev[0].output, (std::vector<float>{18.0f, 4.0f}));
  EXPECT_EQ(ev[0].usage.prompt_tokens, 20);
  EXPECT_EQ(ev[0].usage.completion_tokens, 0);
  EXPECT_FALSE(s->has_work());
  EXPECT_EQ(s->kv().num_used(), 0);
  EXPECT_EQ(s->kv().num_cached(), 0);  // no KV kept: nothing offered to the prefix cache
}

TEST(SchedulerOutputs, MeanAddsEveryChunkAndDividesByThePromptLength) {
  auto s = make_scheduler(8);
  ASSERT_TRUE(s->add_request(1, prefill_request(20, RequestOutput::kMeanHidden), 0).is_ok());
  std::vector<RequestEvents> ev;
  for (int step = 0; step < 3; ++step) {
    runtime::StepPlan plan;
    ev = run_step(*s, &plan);
    ASSERT_EQ(plan.output_kinds.size(), 1u);
    EXPECT_EQ(plan.output_kinds[0], runtime::StepOutputKind::kSumHidden);
  }
  ASSERT_EQ(ev.size(), 1u);
  ASSERT_TRUE(ev[0].done);
  // Chunks start at tokens 2, 10, 18 with 8, 8 and 4 tokens.
  ASSERT_EQ(ev[0].output.size(), 2u);
  EXPECT_FLOAT_EQ(ev[0].output[0], (2.0f + 10.0f + 18.0f) / 20.0f);
  EXPECT_FLOAT_EQ(ev[0].output[1], 20.0f / 20.0f);
}

TEST(SchedulerOutputs, PrefixCacheNeitherServesNorKeepsPrefillOnlyBlocks) {
  auto s = make_scheduler(0);
  // A generating request caches the prompt's full blocks...
  Request gen = prefill_request(16, RequestOutput::kTokens);
  gen.max_tokens = 1;
  ASSERT_TRUE(s->add_request(1, gen, 0).is_ok());
  run_step(*s);
  EXPECT_GT(s->kv().num_cached(), 0);
  const int32_t cached = s->kv().num_cached();
  // ...which a logits request with the same prompt does not read: it computes all 16 tokens.
  ASSERT_TRUE(s->add_request(2, prefill_request(16, RequestOutput::kLastLogits), 0).is_ok());
  runtime::StepPlan plan;
  auto ev = run_step(*s, &plan);
  EXPECT_EQ(plan.num_tokens(), 16);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_TRUE(ev[0].done);
  EXPECT_EQ(ev[0].usage.cached_prompt_tokens, 0);
  EXPECT_EQ(s->kv().num_cached(), cached);
}

TEST(SchedulerOutputs, RefusesWhatAPrefillOnlyRequestCannotHave) {
  auto s = make_scheduler(0);
  Request r = prefill_request(10, RequestOutput::kLastHidden);
  r.n = 2;
  Status st = s->validate_request(r);
  EXPECT_FALSE(st.is_ok());
  EXPECT_EQ(st.param(), "n");
  // The whole context is allowed (nothing is generated after it), one more token is not.
  EXPECT_TRUE(s->validate_request(prefill_request(256, RequestOutput::kLastHidden)).is_ok());
  st = s->validate_request(prefill_request(257, RequestOutput::kLastHidden));
  EXPECT_FALSE(st.is_ok());
  EXPECT_EQ(st.param(), "prompt");
}

TEST(SchedulerOutputs, AResultWithTheWrongNumberOfOutputsFailsCleanly) {
  auto s = make_scheduler(0);
  ASSERT_TRUE(s->add_request(1, prefill_request(6, RequestOutput::kLastHidden), 0).is_ok());
  SchedulerOutput out = s->schedule();
  runtime::StepResult r;  // no outputs
  EXPECT_FALSE(s->apply_result(out, r).is_ok());
  auto failed = s->fail_step(out, internal_error("bad result"));
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_TRUE(failed[0].done);
  EXPECT_TRUE(s->check_invariants().is_ok());
  EXPECT_EQ(s->kv().num_used(), 0);
}

}  // namespace
}  // namespace kiln::serve
