// validate_step_plan: a well-formed plan passes, and each kind of malformed plan is rejected with
// a message that says what is wrong.
#include <gtest/gtest.h>

#include <functional>

#include "kiln/runtime/step.h"

namespace kiln::runtime {
namespace {

// Two sequences: A prefills 3 tokens (positions 0..2), B decodes one token at position 5.
StepPlan good_plan() {
  StepPlan p;
  p.token_ids = {1, 2, 3, 4};
  p.positions = {0, 1, 2, 5};
  p.query_start = {0, 3, 4};
  p.kv_len = {3, 6};
  p.block_start = {0, 1, 3};
  p.block_ids = {0, 2, 3};
  p.sample_seqs = {0, 1};
  p.sampling = {SamplingParams{}, SamplingParams{}};
  return p;
}

const KvGeometry kGeom{4, 4};

void expect_rejected(const std::function<void(StepPlan&)>& mutate, const std::string& words) {
  StepPlan p = good_plan();
  mutate(p);
  const Status st = validate_step_plan(p, kGeom, 10);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << words;
  EXPECT_NE(st.message().find(words), std::string::npos) << "message: " << st.message();
}

TEST(ValidateStepPlanTest, AcceptsAWellFormedPlan) {
  EXPECT_TRUE(validate_step_plan(good_plan(), kGeom, 10).is_ok());
  StepPlan empty;
  empty.query_start = {0};
  empty.block_start = {0};
  EXPECT_TRUE(validate_step_plan(empty, kGeom, 10).is_ok());
}

TEST(ValidateStepPlanTest, RejectsEachMalformation) {
  expect_rejected([](StepPlan& p) { p.positions.pop_back(); }, "positions for");
  expect_rejected([](StepPlan& p) { p.query_start = {0, 3}; }, "query_start has");
  expect_rejected([](StepPlan& p) { p.block_start = {0, 1}; }, "block_start has");
  expect_rejected([](StepPlan& p) { p.query_start = {1, 3, 4}; }, "query_start[0]");
  expect_rejected([](StepPlan& p) { p.query_start = {0, 3, 3}; }, "query_start ends");
  expect_rejected([](StepPlan& p) { p.query_start = {0, 0, 4}; }, "no new tokens");
  expect_rejected([](StepPlan& p) { p.token_ids[1] = 10; }, "token id 10");
  expect_rejected([](StepPlan& p) { p.token_ids[1] = -1; }, "token id -1");
  expect_rejected([](StepPlan& p) { p.kv_len[0] = 2; }, "kv_len 2");
  expect_rejected([](StepPlan& p) { p.kv_len[1] = 9; p.positions[3] = 8; }, "blocks of 4 for kv_len 9");
  expect_rejected([](StepPlan& p) { p.block_ids[1] = 4; }, "block 4 outside");
  expect_rejected([](StepPlan& p) { p.block_start = {0, 1, 4}; }, "block_start ends");
  expect_rejected([](StepPlan& p) { p.positions[3] = 4; }, "expected 5");
  expect_rejected([](StepPlan& p) { p.block_ids[2] = 0; }, "writes KV slot");  // B's block 1 is A's block 0
  expect_rejected([](StepPlan& p) { p.sample_seqs = {1, 0}; }, "strictly increasing");
  expect_rejected([](StepPlan& p) { p.sample_seqs = {0, 2}; }, "sample_seqs[1] = 2");
  expect_rejected([](StepPlan& p) { p.sampling.pop_back(); }, "sampling params for");
  expect_rejected([](StepPlan& p) { p.sampling[0].top_p = 0.0f; }, "top_p");
  expect_rejected([](StepPlan& p) { p.sampling[1].repetition_penalty = 1.2f; }, "history_start has");
  expect_rejected([](StepPlan& p) {
    p.sampling[1].repetition_penalty = 1.2f;
    p.history_start = {0, 0, 2};
    p.history_tokens = {1, 2};
    p.prompt_len = {0, 3};
  }, "prompt_len[1] = 3");
  expect_rejected([](StepPlan& p) {
    p.history_start = {0, 0, 2};
    p.history_tokens = {1, 12};
    p.prompt_len = {0, 1};
  }, "history token 12");
  expect_rejected([](StepPlan& p) {
    p.history_start = {0, 1, 3};
    p.history_tokens = {1, 2};
    p.prompt_len = {0, 1};
  }, "history_start ends");
}

TEST(ValidateStepPlanTest, RejectsABadGeometry) {
  EXPECT_FALSE(validate_step_plan(good_plan(), KvGeometry{0, 16}, 10).is_ok());
}

}  // namespace
}  // namespace kiln::runtime
