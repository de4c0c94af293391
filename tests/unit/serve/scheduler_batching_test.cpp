// Batching must never change what a request produces: every request's tokens are the same alone
// and among 63 others arriving at random steps, with and without prefix caching, under several
// token budgets and prefill chunk sizes, and across forced preemptions (a tiny KV pool). The fake
// engine derives each token from the context it reads back through the block tables, so any
// block-table, sharing or caching mistake shows up as different tokens.
#include <gtest/gtest.h>

#include <random>

#include "unit/serve/scheduler_harness.h"

namespace kiln::serve {
namespace {

using testing::Arrival;
using testing::Harness;

struct Timed {
  Arrival a;
  int step = 0;
};

std::vector<Timed> workload(uint32_t seed) {
  std::mt19937 rng(seed);
  auto uni = [&](int lo, int hi) { return lo + static_cast<int>(rng() % static_cast<uint32_t>(hi - lo + 1)); };
  std::vector<Timed> w;
  for (int i = 0; i < 64; ++i) {
    Timed t;
    t.a.name = str_cat("r", i);
    t.a.prompt_len = uni(1, 56);
    t.a.max_tokens = uni(1, 24);
    if (uni(0, 2) > 0) {
      t.a.family = uni(0, 3);
      t.a.shared = uni(0, t.a.prompt_len);
    }
    if (uni(0, 5) == 0) t.a.n = uni(2, 3);
    if (uni(0, 3) == 0) {
      t.a.temperature = 1.0f;
      t.a.seed = rng();
    }
    if (uni(0, 4) == 0) t.a.stop_token_ids = {uni(10, 999), uni(10, 999)};
    t.step = uni(0, 60);
    w.push_back(t);
  }
  return w;
}

struct Variant {
  std::string name;
  int32_t num_blocks;
  int32_t budget;
  int32_t chunk;
  bool cache;
  bool expect_preemption;
};

TEST(SchedulerBatching, TokensAreIdenticalAloneAndInACrowd) {
  const std::vector<Timed> w = workload(20240611);
  // Reference: each request alone on a roomy pool.
  std::map<std::string, testing::Record> alone;
  for (const Timed& t : w) {
    Harness h(Harness::Config{});
    ASSERT_TRUE(h.arrive(t.a).is_ok());
    h.run_to_completion();
    alone[t.a.name] = h.record(t.a.name);
    ASSERT_TRUE(alone[t.a.name].done);
  }
  const std::vector<Variant> variants = {
      {"roomy, cache", 1024, 256, 0, true, false},
      {"roomy, no cache", 1024, 256, 0, false, false},
      {"budget 16", 1024, 16, 0, true, false},
      {"chunk 5", 1024, 64, 5, true, false},
      {"chunk 1", 1024, 64, 1, false, false},
      {"chunk 7 budget 9", 1024, 9, 7, true, false},
      {"tiny pool, cache", 24, 64, 0, true, true},
      {"tiny pool, no cache", 24, 64, 0, false, true},
      {"tiny pool, chunk 3", 24, 32, 3, true, true},
  };
  for (const Variant& v : variants) {
    SCOPED_TRACE(v.name);
    Harness::Config c;
    c.num_blocks = v.num_blocks;
    c.max_batched_tokens = v.budget;
    c.max_prefill_chunk = v.chunk;
    c.prefix_cache = v.cache;
    c.max_seqs = 32;
    Harness h(c);
    int step = 0;
    size_t arrived = 0;
    std::vector<Timed> order = w;
    std::stable_sort(order.begin(), order.end(), [](const Timed& x, const Timed& y) { return x.step < y.step; });
    while (arrived < order.size() || h.scheduler().has_work()) {
      while (arrived < order.size() && order[arrived].step <= step) {
        ASSERT_TRUE(h.arrive(order[arrived].a).is_ok());
        ++arrived;
      }
      h.step();
      ASSERT_LT(++step, 20000);
    }
    for (const Timed& t : w) {
      const testing::Record& got = h.record(t.a.name);
      const testing::Record& want = alone[t.a.name];
      ASSERT_TRUE(got.done) << t.a.name;
      EXPECT_EQ(got.tokens, want.tokens) << t.a.name;
      EXPECT_EQ(got.finish, want.finish) << t.a.name;
      EXPECT_EQ(got.usage.prompt_tokens, want.usage.prompt_tokens) << t.a.name;
      EXPECT_EQ(got.usage.completion_tokens, want.usage.completion_tokens) << t.a.name;
    }
    const SchedulerStats& st = h.scheduler().stats();
    if (v.expect_preemption) {
      EXPECT_GT(st.preemptions, 0);
    }
    if (v.cache) {
      EXPECT_GT(st.prefix_cache_hits, 0);
    } else {
      EXPECT_EQ(st.prefix_cache_hits, 0);
    }
    EXPECT_EQ(h.scheduler().kv().num_used(), 0);
  }
}

}  // namespace
}  // namespace kiln::serve
