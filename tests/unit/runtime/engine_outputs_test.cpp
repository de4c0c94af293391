// Outputs instead of samples (StepOutputKind): the hidden states an embedding request pools and
// the logits a reranker scores, checked against the engine's own full-logits path and against a
// host computation of the tied lm_head over the returned hidden state.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "engine_test_util.h"
#include "kiln/model/checkpoint.h"

namespace kiln::runtime {
namespace {

using testing::add_to_plan;
using testing::BlockPool;
using testing::load_engine;
using testing::outputs_in_chunks;
using testing::Seq;
using testing::tiny_model;

std::vector<int32_t> prompt(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<int32_t> t(n);
  for (auto& x : t) x = static_cast<int32_t>(rng() % 2000);
  return t;
}

TEST(EngineOutputsTest, LastHiddenTimesTheTiedHeadIsTheLogits) {
  // The embedding preset's tensors carry no "model." prefix, as Qwen3-Embedding's do.
  const auto dir = tiny_model("tiny-qwen3-embedding", 7);
  auto engine = load_engine(dir);
  ASSERT_TRUE(engine);
  const auto tokens = prompt(21, 3);
  const auto hidden = outputs_in_chunks(*engine, tokens, 64, StepOutputKind::kLastHidden, 1).at(0);
  const auto logits = testing::logits_in_chunks(*engine, tokens, {64}, 2).back();
  const int64_t h = engine->config().hidden_size, v = engine->config().vocab_size;
  ASSERT_EQ(static_cast<int64_t>(hidden.size()), h);
  auto ck = model::Checkpoint::open(dir);
  ASSERT_TRUE(ck.is_ok()) << ck.status().to_string();
  auto table = (*ck)->get("embed_tokens.weight", {v, h});
  ASSERT_TRUE(table.is_ok()) << table.status().to_string();
  ASSERT_EQ((*table)->dtype, DType::kF32);
  std::vector<float> e(static_cast<size_t>(v * h));
  std::memcpy(e.data(), (*table)->data, e.size() * sizeof(float));
  double worst = 0.0;
  for (int64_t t = 0; t < v; ++t) {
    double dot = 0.0;
    for (int64_t d = 0; d < h; ++d) dot += static_cast<double>(e[static_cast<size_t>(t * h + d)]) * hidden[static_cast<size_t>(d)];
    worst = std::max(worst, std::fabs(dot - logits[static_cast<size_t>(t)]));
  }
  EXPECT_LT(worst, 1e-4);
}

TEST(EngineOutputsTest, LastLogitsEqualTheFullLogitsPath) {
  auto engine = load_engine(tiny_model("tiny-qwen3-reranker", 7));
  ASSERT_TRUE(engine);
  const auto tokens = prompt(30, 4);
  const auto out = outputs_in_chunks(*engine, tokens, 64, StepOutputKind::kLastLogits, 1).at(0);
  const auto all = testing::logits_in_chunks(*engine, tokens, {64}, 2).back();
  EXPECT_EQ(out, all);
}

TEST(EngineOutputsTest, ChunkedSumsAddUpToTheWholePromptsSum) {
  auto engine = load_engine(tiny_model("tiny-qwen3-embedding", 7));
  ASSERT_TRUE(engine);
  const auto tokens = prompt(37, 5);
  const auto whole = outputs_in_chunks(*engine, tokens, 64, StepOutputKind::kSumHidden, 1);
  const auto chunks = outputs_in_chunks(*engine, tokens, 8, StepOutputKind::kSumHidden, 2);
  ASSERT_EQ(whole.size(), 1u);
  ASSERT_EQ(chunks.size(), 5u);
  for (size_t d = 0; d < whole[0].size(); ++d) {
    double sum = 0.0;
    for (const auto& c : chunks) sum += c[d];
    EXPECT_NEAR(sum, whole[0][d], 1e-4 * (1.0 + std::fabs(whole[0][d])));
  }
  // And the sum's last term is the last token's hidden state: a one-token chunk's sum is it.
  const auto last = outputs_in_chunks(*engine, tokens, 64, StepOutputKind::kLastHidden, 3).at(0);
  const auto ones = outputs_in_chunks(*engine, tokens, 1, StepOutputKind::kSumHidden, 4);
  for (size_t d = 0; d < last.size(); ++d) EXPECT_NEAR(ones.back()[d], last[d], 1e-5);
}

TEST(EngineOutputsTest, OutputsBesideSamplesLeaveTheSamplesAlone) {
  auto engine = load_engine(tiny_model("tiny-qwen3-embedding", 7));
  ASSERT_TRUE(engine);
  const int32_t bs = engine->kv_geometry().block_size;
  auto run = [&](bool with_output) {
    BlockPool pool(engine->kv_geometry().num_blocks, 9);
    Seq a, e;
    a.tokens = prompt(12, 6);
    a.params.seed = 3;
    e.tokens = prompt(9, 7);
    StepPlan plan;
    if (with_output) add_to_plan(plan, e, 9, bs, pool, false);
    add_to_plan(plan, a, 12, bs, pool, true);
    if (with_output) {
      plan.output_seqs = {0};
      plan.output_kinds = {StepOutputKind::kLastHidden};
    }
    auto r = engine->step(plan);
    EXPECT_TRUE(r.is_ok()) << r.status().to_string();
    EXPECT_EQ(r->outputs.size(), with_output ? 1u : 0u);
    return r->samples.at(0).token;
  };
  EXPECT_EQ(run(true), run(false));
}

TEST(EngineOutputsTest, PlansThatMisuseOutputsAreRefused) {
  auto engine = load_engine(tiny_model("tiny-qwen3-embedding", 7));
  ASSERT_TRUE(engine);
  BlockPool pool(engine->kv_geometry().num_blocks, 1);
  Seq s;
  s.tokens = prompt(5, 8);
  StepPlan plan;
  add_to_plan(plan, s, 5, engine->kv_geometry().block_size, pool, true);
  plan.output_seqs = {0};
  plan.output_kinds = {StepOutputKind::kLastHidden};
  EXPECT_FALSE(engine->step(plan).is_ok());  // samples and returns an output
  plan.sample_seqs.clear();
  plan.sampling.clear();
  plan.output_kinds.clear();
  EXPECT_FALSE(engine->step(plan).is_ok());  // no kind for the output
  plan.output_seqs = {1};
  plan.output_kinds = {StepOutputKind::kLastHidden};
  EXPECT_FALSE(engine->step(plan).is_ok());  // no such sequence
}

}  // namespace
}  // namespace kiln::runtime
