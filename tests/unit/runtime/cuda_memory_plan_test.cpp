// The CUDA engine's allocation held to the runtime's memory plan on every preset (shrunk to a
// small shape with its architecture's flags): weights (a tied lm_head once) and KV cache to the
// byte, the workspace measured at load at most the plan and within a stated tolerance of the part
// the load allocates; and with a
// budget instead of a KV size, the whole plan inside the budget. Skips without a GPU.
#include <gtest/gtest.h>

#include "engine_test_util.h"
#include "kiln/runtime/backend/cuda/device.h"
#include "kiln/runtime/engine.h"
#include "memory_plan_test_util.h"

namespace kiln::runtime {
namespace {

// The stated tolerance under the plan for what the load allocates (besides what the plan says is
// allocated on first use): the step metadata is planned for block tables of the whole context,
// while the load sizes it for the tables it has seen.
constexpr int64_t kScratchAllowance = int64_t{8} << 20;

class CudaEngineMemoryPlan : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device";
  }
};

TEST_P(CudaEngineMemoryPlan, AllocationMatchesThePlan) {
  const auto dir = testing::shrunk_preset(GetParam(), 4096);
  for (const bool budget : {false, true}) {
    EngineOptions o;
    o.device = DeviceKind::kCuda;
    o.block_size = 16;
    o.max_model_len = 512;
    o.max_seqs = 16;
    o.max_batched_tokens = 1024;
    if (budget) {
      o.memory_budget = int64_t{512} << 20;
    } else {
      o.kv_cache_bytes = (int64_t{16} << 20) + 100;
    }
    auto e = Engine::load(dir, o);
    ASSERT_TRUE(e.is_ok()) << e.status().to_string();
    const std::string what = str_cat(GetParam(), budget ? " (budget)" : " (kv size)");
    testing::expect_allocation_matches_plan(**e, kScratchAllowance, what);
    if (budget) {
      EXPECT_LE((*e)->memory_plan().total(), o.memory_budget) << what;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(EveryPreset, CudaEngineMemoryPlan, ::testing::ValuesIn(testing::all_presets()),
                         testing::preset_test_name);

// Without a KV size or a budget, gpu_memory_fraction of the device less what is in use bounds the
// whole engine, read once before the load: here a fraction that leaves this engine 600 MiB.
TEST_F(CudaEngineMemoryPlan, GpuMemoryFractionBoundsTheEngine) {
  const auto dir = testing::shrunk_preset("tiny-llama", 4096);
  int64_t free_bytes = 0, total = 0;
  ASSERT_TRUE(device_memory_info(DeviceKind::kCuda, 0, &free_bytes, &total).is_ok());
  const int64_t budget = int64_t{600} << 20;
  EngineOptions o;
  o.device = DeviceKind::kCuda;
  o.max_model_len = 512;
  o.max_seqs = 2048;  // sequences enough to fill 512 MiB: the budget bounds the KV cache
  o.max_batched_tokens = 1024;
  o.gpu_memory_fraction = static_cast<double>(total - free_bytes + budget) / static_cast<double>(total);
  auto e = Engine::load(dir, o);
  ASSERT_TRUE(e.is_ok()) << e.status().to_string();
  const MemoryPlan& plan = (*e)->memory_plan();
  const int64_t slack = int64_t{64} << 20;  // what other processes on the device may move meanwhile
  EXPECT_LE(plan.total(), budget + slack);
  EXPECT_GT(plan.total(), budget - plan.kv_bytes_per_block - slack);
  testing::expect_allocation_matches_plan(**e, kScratchAllowance, "tiny-llama (gpu_memory_fraction)");
}

}  // namespace
}  // namespace kiln::runtime
