// The CPU engine's batch invariance: a sequence's logits are bitwise identical whether its prompt
// is prefilled at once, token by token or in chunks, and whether it runs alone or in a batch.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>

#include "engine_test_util.h"

namespace kiln::runtime {
namespace {

using testing::add_to_plan;
using testing::BlockPool;
using testing::load_engine;
using testing::logits_in_chunks;
using testing::Seq;
using testing::tiny_model;

std::vector<int32_t> prompt(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<int32_t> t(n);
  for (auto& x : t) x = static_cast<int32_t>(rng() % 2048);
  return t;
}

bool bitwise_equal(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

class EngineInvarianceTest : public ::testing::TestWithParam<std::string> {};

TEST_P(EngineInvarianceTest, WholePromptTokenByTokenAndChunksAreBitwiseEqual) {
  auto engine = load_engine(tiny_model(GetParam(), 7));
  ASSERT_TRUE(engine);
  const auto tokens = prompt(45, 1);  // longer than tiny-mistral's window of 32
  const auto whole = logits_in_chunks(*engine, tokens, {45}, 1);
  ASSERT_EQ(whole.size(), tokens.size());
  for (const auto& row : whole) {  // real logits: finite and not all alike
    ASSERT_TRUE(std::all_of(row.begin(), row.end(), [](float x) { return std::isfinite(x); }));
    ASSERT_NE(*std::min_element(row.begin(), row.end()), *std::max_element(row.begin(), row.end()));
  }
  const std::vector<std::vector<int32_t>> splits = {{1}, {3, 7, 13}, {16}, {5, 1, 30}, {44, 1}};
  for (size_t i = 0; i < splits.size(); ++i) {
    const auto got = logits_in_chunks(*engine, tokens, splits[i], static_cast<uint32_t>(10 + i));
    ASSERT_EQ(got.size(), whole.size());
    for (size_t p = 0; p < whole.size(); ++p)
      ASSERT_TRUE(bitwise_equal(got[p], whole[p])) << GetParam() << " split " << i << " position " << p;
  }
}

TEST_P(EngineInvarianceTest, SequenceAloneOrInABatchIsBitwiseEqual) {
  auto engine = load_engine(tiny_model(GetParam(), 7), 3);
  ASSERT_TRUE(engine);
  const int32_t bs = engine->kv_geometry().block_size;
  const auto a_tokens = prompt(30, 2);
  const auto alone = logits_in_chunks(*engine, a_tokens, {20, 1}, 3);

  // A again, with B (prefilling in chunks) and C (decoding) around it in every step.
  BlockPool pool(engine->kv_geometry().num_blocks, 4);
  Seq a, b, c;
  a.tokens = a_tokens;
  b.tokens = prompt(60, 5);
  c.tokens = prompt(40, 6);
  {
    StepPlan warm;  // C's prompt first, so that C decodes later
    add_to_plan(warm, c, 30, bs, pool, true);
    ASSERT_TRUE(engine->step(warm).is_ok());
  }
  std::vector<std::vector<float>> batched;
  while (a.computed < static_cast<int32_t>(a.tokens.size())) {
    StepPlan plan;
    plan.return_all_logits = true;
    const int32_t nb = std::min<int32_t>(7, static_cast<int32_t>(b.tokens.size()) - b.computed);
    if (nb > 0) add_to_plan(plan, b, nb, bs, pool, nb == 7);
    const int32_t row0 = plan.num_tokens();
    const int32_t na = a.computed == 0 ? 20 : 1;
    add_to_plan(plan, a, na, bs, pool, true);
    if (c.computed < static_cast<int32_t>(c.tokens.size())) add_to_plan(plan, c, 1, bs, pool, true);
    auto r = engine->step(plan);
    ASSERT_TRUE(r.is_ok()) << r.status().to_string();
    const size_t v = static_cast<size_t>(r->vocab_size);
    for (int32_t i = 0; i < na; ++i)
      batched.emplace_back(r->logits.begin() + (row0 + i) * v, r->logits.begin() + (row0 + i + 1) * v);
  }
  ASSERT_EQ(batched.size(), alone.size());
  for (size_t p = 0; p < alone.size(); ++p) ASSERT_TRUE(bitwise_equal(batched[p], alone[p])) << GetParam() << " position " << p;
}

INSTANTIATE_TEST_SUITE_P(Presets, EngineInvarianceTest,
                         ::testing::Values("tiny-llama", "tiny-mistral", "tiny-qwen2", "tiny-qwen3", "tiny-qwen3-moe",
                                           "tiny-mixtral", "tiny-gemma3"));

TEST(EngineTest, SampledTokensDoNotDependOnTheBatchOrReturnAllLogits) {
  auto engine = load_engine(tiny_model("tiny-qwen3", 7));
  ASSERT_TRUE(engine);
  const int32_t bs = engine->kv_geometry().block_size;
  auto run = [&](bool with_other, bool all_logits) {
    BlockPool pool(engine->kv_geometry().num_blocks, with_other ? 8 : 9);
    Seq a, other;
    a.tokens = prompt(12, 10);
    a.params.temperature = 0.8f;
    a.params.top_p = 0.9f;
    a.params.seed = 42;
    other.tokens = prompt(12, 11);
    other.params.seed = 7;
    std::vector<int32_t> out;
    for (int step = 0; step < 8; ++step) {
      StepPlan plan;
      plan.return_all_logits = all_logits;
      if (with_other) add_to_plan(plan, other, step == 0 ? 12 : 1, bs, pool, true);
      add_to_plan(plan, a, step == 0 ? 12 : 1, bs, pool, true);
      auto r = engine->step(plan);
      EXPECT_TRUE(r.is_ok()) << r.status().to_string();
      if (!r.is_ok()) return out;
      const int32_t tok = r->samples.back().token;
      out.push_back(tok);
      a.tokens.push_back(tok);
      if (with_other) other.tokens.push_back(r->samples.front().token);
    }
    return out;
  };
  const auto alone = run(false, false);
  EXPECT_EQ(run(true, false), alone);
  EXPECT_EQ(run(true, true), alone);
}

TEST(EngineTest, AnAbandonedStepLeavesNothingItsRerunWouldSee) {
  auto engine = load_engine(tiny_model("tiny-llama", 7));  // two layers
  ASSERT_TRUE(engine);
  const int32_t bs = engine->kv_geometry().block_size;
  const auto tokens = prompt(40, 3);
  const auto reference = logits_in_chunks(*engine, tokens, {40}, 1);
  // Stopped before layer 0, before layer 1 (layer 0's K/V written), before the output head.
  for (int stop_at = 1; stop_at <= 3; ++stop_at) {
    BlockPool pool(engine->kv_geometry().num_blocks, 20 + static_cast<uint32_t>(stop_at));
    Seq s;
    s.tokens = tokens;
    std::vector<std::vector<float>> rows;
    auto run = [&](int32_t n, std::function<bool()> abandon) {
      StepPlan plan;
      plan.return_all_logits = true;
      add_to_plan(plan, s, n, bs, pool, true);
      plan.abandon = std::move(abandon);
      auto r = engine->step(plan);
      EXPECT_TRUE(r.is_ok()) << r.status().to_string();
      if (!r.is_ok() || r->abandoned) return r.is_ok() && r->abandoned;
      const size_t v = static_cast<size_t>(r->vocab_size);
      for (int32_t i = 0; i < n; ++i) rows.emplace_back(r->logits.begin() + i * v, r->logits.begin() + (i + 1) * v);
      return false;
    };
    EXPECT_FALSE(run(16, [] { return false; }));
    int calls = 0;
    ASSERT_TRUE(run(24, [&] { return ++calls == stop_at; })) << "stop_at " << stop_at;
    EXPECT_EQ(calls, stop_at);
    s.computed = 16;  // as the scheduler: nothing of the abandoned step was applied
    // Run again in other chunks: each writes its own positions again before reading them, and
    // what the abandoned step left past a chunk is never read.
    EXPECT_FALSE(run(5, nullptr));
    EXPECT_FALSE(run(19, nullptr));
    ASSERT_EQ(rows.size(), reference.size());
    for (size_t p = 0; p < rows.size(); ++p)
      ASSERT_TRUE(bitwise_equal(rows[p], reference[p])) << "stop_at " << stop_at << " position " << p;
  }
}

TEST(EngineTest, BadPlanFailsTheStepAndTheEngineKeepsWorking) {
  auto engine = load_engine(tiny_model("tiny-llama", 7));
  ASSERT_TRUE(engine);
  StepPlan bad;
  bad.token_ids = {1, 2};
  bad.positions = {0, 1};
  bad.query_start = {0, 2};
  bad.kv_len = {2};
  bad.block_start = {0, 1};
  bad.block_ids = {engine->kv_geometry().num_blocks};  // out of range
  auto r = engine->step(bad);
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("block"), std::string::npos) << r.status().message();
  bad.block_ids = {0};
  bad.kv_len = {600};  // beyond max_model_len 512 (and the block table)
  EXPECT_FALSE(engine->step(bad).is_ok());
  bad.kv_len = {2};
  bad.sample_seqs = {0};
  bad.sampling = {SamplingParams{}};
  bad.sampling[0].temperature = 0;
  r = engine->step(bad);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->samples.size(), 1u);
  EXPECT_GT(engine->memory_usage().weights_bytes, 0);
  EXPECT_EQ(engine->config().num_layers, 2);
}

TEST(EngineTest, LoadReportsAMissingModel) {
  EngineOptions o;
  auto e = Engine::load("/nonexistent/kiln-model", o);
  ASSERT_FALSE(e.is_ok());
  EXPECT_NE(e.status().message().find("config.json"), std::string::npos) << e.status().message();
}

}  // namespace
}  // namespace kiln::runtime
