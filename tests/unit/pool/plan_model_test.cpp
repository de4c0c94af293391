// plan_model: each model's KV cache size under kiln serve (docs/memory.md) and its estimate, which
// is the runtime's memory plan for the options the engine will get.
#include <gtest/gtest.h>

#include "kiln/core/str.h"
#include "kiln/pool/multi_model_pool.h"
#include "kiln/runtime/memory_plan.h"
#include "unit/pool/pool_test_util.h"

namespace kiln::pool {
namespace {

namespace fs = std::filesystem;

class PlanModelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / str_cat("kiln-plan-model-test-", getpid());
    testing::make_tiny_model(dir_ / "m", 3);
    options_.defaults.engine.block_size = 16;
    options_.defaults.engine.max_model_len = 512;
    options_.defaults.engine.max_seqs = 256;  // enough sequences that the budget bounds the KV cache
    options_.defaults.engine.max_batched_tokens = 256;
    options_.memory_budget = int64_t{32} << 20;
    entry_.id = "m";
    entry_.dir = dir_ / "m";
    auto c = model::load_model_config(entry_.dir);
    ASSERT_TRUE(c.is_ok()) << c.status().to_string();
    config_ = *c;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // The plan, checked to be the runtime's plan for the engine options it hands the engine.
  Plan plan(bool sole) {
    Plan p = plan_model(entry_, options_, sole);
    EXPECT_TRUE(p.estimate.has_value()) << p.error;
    EXPECT_GT(p.engine.kv_cache_bytes, 0);  // a fixed size: the engine never looks at free memory
    auto rt = runtime::plan_memory(config_, p.engine);
    EXPECT_TRUE(rt.is_ok()) << rt.status().to_string();
    if (rt.is_ok() && p.estimate) {
      EXPECT_EQ(p.estimate->weights, rt->weights_bytes);
      EXPECT_EQ(p.estimate->kv_cache, rt->kv_cache_bytes);
      EXPECT_EQ(p.estimate->workspace, rt->workspace_bytes);
    }
    return p;
  }
  int64_t block() const { return runtime::kv_bytes_per_block(config_, runtime::DeviceKind::kCpu, 16); }

  fs::path dir_;
  PoolOptions options_;
  ModelEntry entry_;
  model::ModelConfig config_;
};

TEST_F(PlanModelTest, AModelServedAloneTakesWhatTheBudgetLeaves) {
  const Plan p = plan(true);
  EXPECT_LE(p.estimate->total(), options_.memory_budget);
  EXPECT_GT(p.estimate->total(), options_.memory_budget - block());
}

TEST_F(PlanModelTest, WithSeveralModelsEachKvCacheIsAtMostAQuarter) {
  const Plan p = plan(false);
  EXPECT_LE(p.estimate->kv_cache, options_.memory_budget / 4);
  EXPECT_GT(p.estimate->kv_cache, options_.memory_budget / 4 - block());
}

TEST_F(PlanModelTest, KvCacheMemoryRestTakesTheRestAmongSeveral) {
  entry_.settings.kv_rest = true;
  const Plan p = plan(false);
  EXPECT_GT(p.estimate->total(), options_.memory_budget - block());
  EXPECT_LE(p.estimate->total(), options_.memory_budget);
}

TEST_F(PlanModelTest, ExplicitSizesComeFirst) {
  entry_.settings.kv_share = 0.125;
  EXPECT_EQ(plan(true).estimate->kv_cache, (options_.memory_budget / 8) / block() * block());
  entry_.settings.kv_share.reset();
  options_.defaults.engine.kv_cache_bytes = 10 * block() + 1;
  EXPECT_EQ(plan(true).estimate->kv_cache, 10 * block());
  entry_.settings.kv_cache_bytes = 3 * block();
  EXPECT_EQ(plan(true).estimate->kv_cache, 3 * block());
}

TEST_F(PlanModelTest, NoRoomLeftGivesAnEstimateThatNeverFits) {
  // The weights and the workspace alone fill the budget: one block, so the pool refuses the model
  // naming its sizes instead of failing to plan it.
  options_.memory_budget = plan(true).estimate->weights;
  const Plan p = plan(true);
  EXPECT_EQ(p.estimate->kv_cache, block());
  EXPECT_GT(p.estimate->total(), options_.memory_budget);
}

TEST(PlanModelSettings, KvCacheMemoryRestIsASetting) {
  auto one = [](const std::string& key, const std::string& value) {
    std::map<std::string, SettingValue> v;
    v["models.a.path"] = SettingValue{{"x"}, false, 1};
    v[key] = SettingValue{{value}, false, 2};
    return parse_model_tables(v, "kiln.toml", "/");
  };
  auto rest = one("models.a.kv_cache_memory", "rest");
  ASSERT_TRUE(rest.is_ok()) << rest.status().to_string();
  EXPECT_TRUE((*rest)[0].settings.kv_rest);
  EXPECT_FALSE((*rest)[0].settings.kv_cache_bytes.has_value());
  auto bad = one("models.a.kv_cache_memory", "most");
  ASSERT_FALSE(bad.is_ok());
  EXPECT_NE(bad.status().message().find("or \"rest\""), std::string::npos) << bad.status().message();
}

}  // namespace
}  // namespace kiln::pool
