// The runtime's memory plan: its figures for real model shapes (a tied lm_head counted once where
// the device shares it), its KV cache rules, and the CPU engine's allocation held to it on every
// preset (shrunk), to the byte.
#include <gtest/gtest.h>

#include "engine_test_util.h"
#include "kiln/model/make_model.h"
#include "kiln/runtime/memory_plan.h"
#include "memory_plan_test_util.h"

namespace kiln::runtime {
namespace {

model::ModelConfig preset(const std::string& name) {
  auto c = model::preset_config(name);
  EXPECT_TRUE(c.is_ok()) << c.status().to_string();
  return *c;
}

EngineOptions cuda_options(int64_t kv_bytes) {
  EngineOptions o;
  o.device = DeviceKind::kCuda;
  o.kv_cache_bytes = kv_bytes;
  o.max_model_len = 8192;
  return o;
}

TEST(MemoryPlan, TiedLmHeadIsCountedOnceOnCudaAndTwiceOnCpu) {
  const model::ModelConfig c = preset("llama-3.2-1b");
  ASSERT_TRUE(c.tie_word_embeddings);
  const int64_t rope = int64_t{8192} * c.head_dim * 4;
  auto gpu = plan_memory(c, cuda_options(int64_t{1} << 30));
  ASSERT_TRUE(gpu.is_ok()) << gpu.status().to_string();
  // bf16: two bytes a parameter, the tied table once (num_parameters counts it once).
  EXPECT_EQ(gpu->weights_bytes, c.num_parameters() * 2 + rope);
  // The CPU packs linear weights for its GEMM, so the tied lm_head is a second (f32) copy.
  EngineOptions cpu = cuda_options(int64_t{1} << 30);
  cpu.device = DeviceKind::kCpu;
  auto host = plan_memory(c, cpu);
  ASSERT_TRUE(host.is_ok()) << host.status().to_string();
  EXPECT_EQ(host->weights_bytes, (c.num_parameters() + c.vocab_size * c.hidden_size) * 4 + rope);
}

TEST(MemoryPlan, KvCacheIsWholeBlocksOfTheGivenSize) {
  const model::ModelConfig c = preset("llama-3.2-1b");
  auto p = plan_memory(c, cuda_options((int64_t{1} << 30) + 12345));
  ASSERT_TRUE(p.is_ok()) << p.status().to_string();
  // 16 layers x 2 x 16 tokens x 8 KV heads x 64 x bf16.
  EXPECT_EQ(p->kv_bytes_per_block, 16 * 2 * 16 * 8 * 64 * 2);
  EXPECT_EQ(p->kv_cache_bytes, (int64_t{1} << 30) / p->kv_bytes_per_block * p->kv_bytes_per_block);
  EXPECT_EQ(p->limits.num_kv_blocks, p->kv_cache_bytes / p->kv_bytes_per_block);
  EXPECT_EQ(p->limits.max_model_len, 8192);
  EXPECT_EQ(p->limits.max_seqs, 256);
  EXPECT_EQ(p->limits.max_batched_tokens, 8192);
  EXPECT_EQ(p->limits.block_size, 16);
  EXPECT_EQ(p->limits.prefill_chunk, default_prefill_chunk(DeviceKind::kCuda));
}

TEST(MemoryPlan, ABudgetGivesTheKvCacheWhatWeightsAndWorkspaceLeave) {
  const model::ModelConfig c = preset("llama-3.2-1b");
  EngineOptions o = cuda_options(0);
  o.memory_budget = int64_t{20} << 30;
  auto p = plan_memory(c, o);
  ASSERT_TRUE(p.is_ok()) << p.status().to_string();
  EXPECT_LE(p->total(), o.memory_budget);
  EXPECT_GT(p->total(), o.memory_budget - p->kv_bytes_per_block);
  // Never more than max_seqs sequences of the whole context can fill.
  o.max_seqs = 2;
  auto small = plan_memory(c, o);
  ASSERT_TRUE(small.is_ok()) << small.status().to_string();
  EXPECT_EQ(small->limits.num_kv_blocks, 2 * 8192 / 16);
  // A budget that holds the weights and workspace but not one block.
  o.memory_budget = small->weights_bytes + small->workspace_bytes + small->kv_bytes_per_block - 1;
  auto none = plan_memory(c, o);
  ASSERT_FALSE(none.is_ok());
  EXPECT_EQ(none.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(none.status().message().find("no room for a KV block"), std::string::npos) << none.status().message();
}

TEST(MemoryPlan, RefusesOptionsOutOfRange) {
  const model::ModelConfig c = preset("tiny-llama");
  EngineOptions o;
  o.block_size = 0;
  EXPECT_EQ(plan_memory(c, o).status().code(), StatusCode::kInvalidArgument);
  o = EngineOptions{};
  o.max_seqs = 0;
  EXPECT_EQ(plan_memory(c, o).status().code(), StatusCode::kInvalidArgument);
  o = EngineOptions{};
  o.max_model_len = int64_t{1} << 31;
  EXPECT_EQ(plan_memory(c, o).status().code(), StatusCode::kInvalidArgument);
  o = EngineOptions{};
  o.device = DeviceKind::kCuda;  // CUDA needs a size or a budget; the engine resolves the fraction
  EXPECT_EQ(plan_memory(c, o).status().code(), StatusCode::kInvalidArgument);
}

TEST(MemoryPlan, PrefillChunkNeverPassesTheStepBudget) {
  const model::ModelConfig c = preset("tiny-llama");
  EngineOptions o;
  o.kv_cache_bytes = 1 << 20;
  o.max_batched_tokens = 100;
  auto p = plan_memory(c, o);
  ASSERT_TRUE(p.is_ok()) << p.status().to_string();
  EXPECT_EQ(p->limits.prefill_chunk, 100);
}

// 0 (the default) takes the device's step budget: short steps on the CPU, where a step's time
// grows with its tokens, but never fewer tokens than sequences; an explicit budget stands.
TEST(MemoryPlan, StepBudgetDefaultsByDevice) {
  const model::ModelConfig c = preset("tiny-llama");
  EngineOptions o;
  o.kv_cache_bytes = 1 << 20;
  ASSERT_EQ(o.max_batched_tokens, 0);
  auto p = plan_memory(c, o);
  ASSERT_TRUE(p.is_ok()) << p.status().to_string();
  EXPECT_EQ(p->limits.max_batched_tokens, 512);
  EXPECT_EQ(p->limits.prefill_chunk, default_prefill_chunk(DeviceKind::kCpu));
  o.max_seqs = 1000;
  p = plan_memory(c, o);
  ASSERT_TRUE(p.is_ok()) << p.status().to_string();
  EXPECT_EQ(p->limits.max_batched_tokens, 1000);
  o.max_batched_tokens = 8192;
  p = plan_memory(c, o);
  ASSERT_TRUE(p.is_ok()) << p.status().to_string();
  EXPECT_EQ(p->limits.max_batched_tokens, 8192);
  EXPECT_EQ(default_max_batched_tokens(DeviceKind::kCuda, 256), 8192);
  o.max_batched_tokens = -1;
  EXPECT_EQ(plan_memory(c, o).status().code(), StatusCode::kInvalidArgument);
}

class CpuEngineMemoryPlan : public ::testing::TestWithParam<std::string> {};

// The CPU engine allocates exactly what its plan says, under both KV rules, and its steps stay
// inside the planned workspace (the largest step the limits allow runs first).
TEST_P(CpuEngineMemoryPlan, AllocationMatchesThePlan) {
  const auto dir = testing::shrunk_preset(GetParam(), 512);
  for (const bool budget : {false, true}) {
    EngineOptions o;
    o.num_threads = 2;
    o.block_size = 16;
    o.max_model_len = 256;
    o.max_seqs = 4;
    o.max_batched_tokens = 128;
    if (budget) {
      o.memory_budget = 24 << 20;
    } else {
      o.kv_cache_bytes = (1 << 20) + 100;
    }
    auto e = Engine::load(dir, o);
    ASSERT_TRUE(e.is_ok()) << e.status().to_string();
    Engine& engine = **e;
    const std::string what = str_cat(GetParam(), budget ? " (budget)" : " (kv size)");
    testing::expect_allocation_matches_plan(engine, 0, what);
    if (budget) {
      EXPECT_LE(engine.memory_plan().total(), o.memory_budget) << what;
    }
    testing::BlockPool pool(engine.kv_geometry().num_blocks, 3);
    std::vector<testing::Seq> seqs(4);
    StepPlan plan;
    for (int i = 0; i < 4; ++i) {
      seqs[static_cast<size_t>(i)].tokens.assign(32, 5 + i);
      testing::add_to_plan(plan, seqs[static_cast<size_t>(i)], 32, engine.kv_geometry().block_size, pool, true);
    }
    auto r = engine.step(plan);
    ASSERT_TRUE(r.is_ok()) << r.status().to_string();
    testing::expect_allocation_matches_plan(engine, 0, what + " after a full step");
  }
}

INSTANTIATE_TEST_SUITE_P(EveryPreset, CpuEngineMemoryPlan, ::testing::ValuesIn(testing::all_presets()),
                         testing::preset_test_name);

}  // namespace
}  // namespace kiln::runtime
