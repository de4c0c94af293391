// The model pool over real tiny checkpoints on the CPU engine: single-flight loading, a budget
// that holds two of three models, LRU eviction, pinning, leases that are never cut, keep-alive
// with a manual clock, failed loads with back-off, and models that can never fit.
#include "kiln/pool/multi_model_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "unit/pool/pool_test_util.h"

namespace kiln::pool {
namespace {

using namespace std::chrono_literals;
using testing::acquire_wait;
using testing::eventually;
using testing::generate;
using testing::ModelsDir;
using testing::pool_options;
using testing::state_of;

// Three identical-shaped models ("a", "b", "c") and a budget that holds two of them.
class PoolTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    models_ = new ModelsDir();
    for (auto [id, seed] : {std::pair{"a", 1}, std::pair{"b", 2}, std::pair{"c", 3}}) models_->add(id, seed);
  }
  static void TearDownTestSuite() {
    delete models_;
    models_ = nullptr;
  }

  int64_t one_model() const { return testing::model_estimate(models_->root() / "a", pool_options(models_->root(), 1 << 30)); }
  int64_t two_models_budget() const { return one_model() * 5 / 2; }

  std::unique_ptr<MultiModelPool> make(PoolOptions o) {
    auto p = MultiModelPool::create(std::move(o));
    EXPECT_TRUE(p.is_ok()) << p.status().to_string();
    return p.is_ok() ? std::move(p).value() : nullptr;
  }

  static ModelsDir* models_;
};

ModelsDir* PoolTest::models_ = nullptr;

TEST_F(PoolTest, ListsEveryModelWithoutLoadingAny) {
  auto pool = make(pool_options(models_->root(), two_models_budget()));
  auto list = pool->list();
  ASSERT_EQ(list.size(), 3u);
  EXPECT_EQ(list[0].id, "a");
  EXPECT_EQ(list[2].id, "c");
  for (const auto& m : list) {
    EXPECT_FALSE(m.loaded);
    EXPECT_EQ(m.max_model_len, 256);
  }
  PoolStatus st = pool->status();
  EXPECT_EQ(st.used_bytes, 0);
  EXPECT_EQ(st.loaded, 0);
  for (const auto& m : st.models) {
    EXPECT_EQ(m.state, ModelState::kUnloaded);
    EXPECT_EQ(m.estimated_bytes, one_model());
  }
  auto missing = acquire_wait(*pool, "nope");
  ASSERT_FALSE(missing.is_ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  auto by_path = acquire_wait(*pool, (models_->root() / "a").string());
  EXPECT_EQ(by_path.status().code(), StatusCode::kNotFound);
}

TEST_F(PoolTest, LoadsOnFirstUseOnceForConcurrentRequests) {
  auto pool = make(pool_options(models_->root(), two_models_budget()));
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      auto lease = acquire_wait(*pool, "a");
      ASSERT_TRUE(lease.is_ok()) << lease.status().to_string();
      auto n = generate(*lease, 4);
      ASSERT_TRUE(n.is_ok()) << n.status().to_string();
      EXPECT_EQ(*n, 4);
      ok++;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 8);
  auto st = pool->model_status("a");
  ASSERT_TRUE(st);
  EXPECT_EQ(st->state, ModelState::kReady);
  EXPECT_EQ(st->loads, 1);  // single flight
  EXPECT_EQ(st->in_flight, 0);
  EXPECT_GT(st->weights_bytes, 0);
  EXPECT_GT(st->kv_cache_bytes, 0);
  EXPECT_EQ(st->memory_bytes, st->weights_bytes + st->kv_cache_bytes + st->workspace_bytes);
  EXPECT_LE(st->memory_bytes, st->estimated_bytes);
  EXPECT_TRUE(pool->list()[0].loaded);
  // Loaded now: the next acquire answers before it returns.
  bool sync = false;
  ASSERT_TRUE(acquire_wait(*pool, "a", {}, &sync).is_ok());
  EXPECT_TRUE(sync);
}

TEST_F(PoolTest, ManyClientsAlternatingStayInsideTheBudget) {
  const int64_t budget = two_models_budget();
  auto pool = make(pool_options(models_->root(), budget));
  std::atomic<bool> done{false};
  std::atomic<int64_t> max_used{0}, samples{0};
  std::thread sampler([&] {
    while (!done) {
      PoolStatus st = pool->status();
      int64_t sum = 0;
      for (const auto& m : st.models) sum += m.memory_bytes;
      EXPECT_EQ(sum, st.used_bytes);
      int64_t prev = max_used.load();
      while (sum > prev && !max_used.compare_exchange_weak(prev, sum)) {}
      EXPECT_LE(st.loaded, 2);
      samples++;
      std::this_thread::sleep_for(1ms);
    }
  });
  const char* ids[] = {"a", "b", "c"};
  std::vector<std::thread> clients;
  std::atomic<int> succeeded{0}, failed{0};
  for (int c = 0; c < 12; ++c) {
    clients.emplace_back([&, c] {
      std::mt19937 rng(static_cast<uint32_t>(c));
      for (int r = 0; r < 5; ++r) {
        const std::string id = ids[(c + r) % 3];
        auto lease = acquire_wait(*pool, id);
        if (!lease.is_ok()) {
          ADD_FAILURE() << id << ": " << lease.status().to_string();
          failed++;
          continue;
        }
        auto n = generate(*lease, 2 + static_cast<int32_t>(rng() % 4));
        if (n.is_ok()) {
          succeeded++;
        } else {
          ADD_FAILURE() << id << ": " << n.status().to_string();
          failed++;
        }
      }
    });
  }
  for (auto& t : clients) t.join();
  done = true;
  sampler.join();
  EXPECT_EQ(succeeded.load(), 60);
  EXPECT_EQ(failed.load(), 0);
  EXPECT_GT(samples.load(), 10);
  EXPECT_LE(max_used.load(), budget);
  EXPECT_GT(max_used.load(), one_model());  // two were loaded at some point
  int64_t evictions = 0;
  for (const auto& m : pool->status().models) evictions += m.evictions;
  EXPECT_GT(evictions, 0);
}

TEST_F(PoolTest, EvictsLeastRecentlyUsedFirst) {
  ManualClock clock;
  auto pool = make(pool_options(models_->root(), two_models_budget(), &clock));
  ASSERT_TRUE(acquire_wait(*pool, "a").is_ok());
  clock.advance(1s);
  ASSERT_TRUE(acquire_wait(*pool, "b").is_ok());
  clock.advance(1s);
  ASSERT_TRUE(acquire_wait(*pool, "a").is_ok());  // a is now the most recently used
  clock.advance(1s);
  ASSERT_TRUE(acquire_wait(*pool, "c").is_ok());
  EXPECT_EQ(state_of(*pool, "a"), ModelState::kReady);
  EXPECT_EQ(state_of(*pool, "b"), ModelState::kUnloaded);
  EXPECT_EQ(state_of(*pool, "c"), ModelState::kReady);
  EXPECT_EQ(pool->model_status("b")->evictions, 1);
  clock.advance(1s);
  ASSERT_TRUE(acquire_wait(*pool, "b").is_ok());  // a (used before c) goes now
  EXPECT_EQ(state_of(*pool, "a"), ModelState::kUnloaded);
  EXPECT_EQ(state_of(*pool, "c"), ModelState::kReady);
  EXPECT_EQ(pool->model_status("a")->evictions, 1);
}

TEST_F(PoolTest, MaxLoadedModelsCapsTheCount) {
  auto o = pool_options(models_->root(), one_model() * 10);
  o.max_loaded_models = 1;
  auto pool = make(std::move(o));
  ASSERT_TRUE(acquire_wait(*pool, "a").is_ok());
  ASSERT_TRUE(acquire_wait(*pool, "b").is_ok());
  EXPECT_EQ(state_of(*pool, "a"), ModelState::kUnloaded);
  EXPECT_EQ(pool->status().loaded, 1);
}

TEST_F(PoolTest, PinnedModelStays) {
  auto pool = make(pool_options(models_->root(), two_models_budget()));
  std::promise<Result<ModelStatus>> p;
  pool->load("a", /*pinned=*/true, [&](Result<ModelStatus> s) { p.set_value(std::move(s)); });
  auto loaded = p.get_future().get();
  ASSERT_TRUE(loaded.is_ok()) << loaded.status().to_string();
  EXPECT_EQ(loaded->state, ModelState::kReady);
  EXPECT_TRUE(loaded->pinned);
  for (int i = 0; i < 3; ++i) {
    for (const char* id : {"b", "c"}) {
      auto lease = acquire_wait(*pool, id);
      ASSERT_TRUE(lease.is_ok()) << lease.status().to_string();
      EXPECT_EQ(state_of(*pool, "a"), ModelState::kReady);
    }
  }
  EXPECT_EQ(pool->model_status("a")->loads, 1);
  EXPECT_EQ(pool->model_status("a")->evictions, 0);
}

TEST_F(PoolTest, PreloadedModelsLoadAtStartAndStay) {
  auto o = pool_options(models_->root(), two_models_budget());
  o.preload = {"b"};
  auto pool = make(std::move(o));
  ASSERT_TRUE(pool->wait_for_preloads().is_ok());
  EXPECT_EQ(state_of(*pool, "b"), ModelState::kReady);
  ASSERT_TRUE(acquire_wait(*pool, "a").is_ok());
  ASSERT_TRUE(acquire_wait(*pool, "c").is_ok());
  EXPECT_EQ(state_of(*pool, "b"), ModelState::kReady);
  EXPECT_EQ(state_of(*pool, "a"), ModelState::kUnloaded);

  auto bad = pool_options(models_->root(), two_models_budget());
  bad.preload = {"zzz"};
  auto refused = MultiModelPool::create(std::move(bad));
  ASSERT_FALSE(refused.is_ok());
  EXPECT_NE(refused.status().message().find("zzz"), std::string::npos);
}

TEST_F(PoolTest, InFlightRequestIsNeverCut) {
  auto pool = make(pool_options(models_->root(), two_models_budget()));
  auto a = acquire_wait(*pool, "a");
  auto b = acquire_wait(*pool, "b");
  ASSERT_TRUE(a.is_ok() && b.is_ok());
  // Requests keep running on `a` while `c` needs the room that `a` or `b` holds.
  std::atomic<bool> stop{false};
  std::atomic<int> a_runs{0}, a_failures{0};
  std::thread on_a([&] {
    while (!stop) {
      auto n = generate(*a, 16, static_cast<uint64_t>(a_runs.load()));
      if (n.is_ok() && *n == 16) a_runs++;
      else a_failures++;
    }
  });
  std::promise<Result<ModelLease>> c_promise;
  pool->acquire("c", [&](Result<ModelLease> r) { c_promise.set_value(std::move(r)); });
  auto c_future = c_promise.get_future();
  // Both are busy: `c` waits for memory rather than cutting either.
  ASSERT_TRUE(eventually([&] {
    auto st = pool->model_status("c");
    return st && st->state == ModelState::kLoading && st->loading_phase == "waiting for memory";
  }));
  EXPECT_EQ(c_future.wait_for(200ms), std::future_status::timeout);
  EXPECT_EQ(state_of(*pool, "a"), ModelState::kReady);
  EXPECT_EQ(state_of(*pool, "b"), ModelState::kReady);
  // `b`'s request ends: `b` is evicted, never `a`, whose requests are still running.
  b = Status(StatusCode::kCancelled, "released");
  ASSERT_EQ(c_future.wait_for(60s), std::future_status::ready);
  auto c = c_future.get();
  ASSERT_TRUE(c.is_ok()) << c.status().to_string();
  EXPECT_EQ(state_of(*pool, "b"), ModelState::kUnloaded);
  EXPECT_EQ(state_of(*pool, "a"), ModelState::kReady);
  const int runs_at_c = a_runs.load();
  EXPECT_TRUE(eventually([&] { return a_runs.load() > runs_at_c + 2; }));
  stop = true;
  on_a.join();
  EXPECT_EQ(a_failures.load(), 0);
  EXPECT_GT(a_runs.load(), 3);
  EXPECT_LE(pool->status().used_bytes, two_models_budget());
}

TEST_F(PoolTest, KeepAliveUnloadsOnTime) {
  ManualClock clock;
  auto o = pool_options(models_->root(), two_models_budget(), &clock);
  o.keep_alive = 30s;
  auto pool = make(std::move(o));
  {
    auto lease = acquire_wait(*pool, "a");
    ASSERT_TRUE(lease.is_ok());
    clock.advance(60s);
    pool->expire_idle();  // in use: never unloaded, whatever the clock says
    EXPECT_EQ(state_of(*pool, "a"), ModelState::kReady);
  }
  clock.advance(29s);
  pool->expire_idle();
  EXPECT_EQ(state_of(*pool, "a"), ModelState::kReady);
  auto st = pool->model_status("a");
  EXPECT_NEAR(st->idle_unload_in_seconds, 1.0, 1e-6);
  clock.advance(1s);
  pool->expire_idle();
  EXPECT_EQ(state_of(*pool, "a"), ModelState::kUnloaded);
  EXPECT_EQ(pool->status().used_bytes, 0);

  // Per request, like Ollama: this request's keep_alive replaces the server's.
  ASSERT_TRUE(acquire_wait(*pool, "b", AcquireOptions{Millis(5000)}).is_ok());
  clock.advance(5s);
  pool->expire_idle();
  EXPECT_EQ(state_of(*pool, "b"), ModelState::kUnloaded);
  // keep_alive 0: unloaded as soon as the request is over (by the pool thread).
  ASSERT_TRUE(acquire_wait(*pool, "c", AcquireOptions{Millis(0)}).is_ok());
  EXPECT_TRUE(eventually([&] { return state_of(*pool, "c") == ModelState::kUnloaded; }));
  // Negative: kept however long it idles.
  ASSERT_TRUE(acquire_wait(*pool, "a", AcquireOptions{Millis(-1)}).is_ok());
  clock.advance(100h);
  pool->expire_idle();
  EXPECT_EQ(state_of(*pool, "a"), ModelState::kReady);
}

TEST_F(PoolTest, CorruptCheckpointFailsWithBackOffWhileOthersServe) {
  ModelsDir dir;
  const auto good = dir.add("good", 5);
  dir.add_corrupt("broken", good);
  ManualClock clock;
  auto o = pool_options(dir.root(), one_model() * 3, &clock);
  o.failure_backoff = 10s;
  auto pool = make(std::move(o));
  auto r = acquire_wait(*pool, "broken");
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInternal);
  EXPECT_NE(r.status().message().find("`broken` could not be loaded"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("model.safetensors"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("(retry after 10 s)"), std::string::npos) << r.status().message();
  auto st = pool->model_status("broken");
  EXPECT_EQ(st->state, ModelState::kFailed);
  EXPECT_EQ(st->failures, 1);
  EXPECT_EQ(st->memory_bytes, 0);
  EXPECT_EQ(pool->status().used_bytes, 0);

  // Within the back-off: the same error at once, no new attempt.
  bool sync = false;
  auto again = acquire_wait(*pool, "broken", {}, &sync);
  EXPECT_TRUE(sync);
  EXPECT_FALSE(again.is_ok());
  EXPECT_EQ(pool->model_status("broken")->failures, 1);

  auto lease = acquire_wait(*pool, "good");
  ASSERT_TRUE(lease.is_ok()) << lease.status().to_string();
  EXPECT_EQ(*generate(*lease, 3), 3);

  clock.advance(11s);
  auto retried = acquire_wait(*pool, "broken");
  EXPECT_FALSE(retried.is_ok());
  EXPECT_EQ(pool->model_status("broken")->failures, 2);
  EXPECT_NE(retried.status().message().find("(retry after 20 s)"), std::string::npos) << retried.status().message();
}

TEST_F(PoolTest, UnsupportedArchitectureFailsClearly) {
  ModelsDir dir;
  const auto good = dir.add("good", 6);
  const auto odd = dir.root() / "odd";
  std::filesystem::copy(good, odd);
  auto text = read_file(odd / "config.json");
  ASSERT_TRUE(text.is_ok());
  std::string cfg = *text;
  auto pos = cfg.find("\"mistral\"");
  ASSERT_NE(pos, std::string::npos);
  cfg.replace(pos, 9, "\"gpt_neox\"");
  ASSERT_TRUE(write_file_atomic(odd / "config.json", cfg).is_ok());
  auto pool = make(pool_options(dir.root(), one_model() * 3));
  auto r = acquire_wait(*pool, "odd");
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("`odd` could not be loaded"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("gpt_neox"), std::string::npos) << r.status().message();
  EXPECT_EQ(state_of(*pool, "odd"), ModelState::kFailed);
  EXPECT_TRUE(acquire_wait(*pool, "good").is_ok());
}

TEST_F(PoolTest, ModelThatCanNeverFitIsRefusedAtOnce) {
  const int64_t budget = one_model() / 2;
  auto pool = make(pool_options(models_->root(), budget));
  bool sync = false;
  auto r = acquire_wait(*pool, "a", {}, &sync);
  ASSERT_FALSE(r.is_ok());
  EXPECT_TRUE(sync);  // no wait, no load
  EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted);
  const int64_t need = pool->model_status("a")->estimated_bytes;
  EXPECT_GT(need, budget);
  EXPECT_NE(r.status().message().find(format_bytes(double(need))), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find(format_bytes(double(budget))), std::string::npos) << r.status().message();
  EXPECT_EQ(pool->model_status("a")->loads, 0);
  EXPECT_EQ(state_of(*pool, "a"), ModelState::kUnloaded);
}

TEST_F(PoolTest, AdminUnloadWaitsForRequestsThenFrees) {
  auto pool = make(pool_options(models_->root(), two_models_budget()));
  auto lease = acquire_wait(*pool, "a");
  ASSERT_TRUE(lease.is_ok());
  std::promise<Result<ModelStatus>> p;
  auto f = p.get_future();
  pool->unload("a", [&](Result<ModelStatus> s) { p.set_value(std::move(s)); });
  EXPECT_EQ(f.wait_for(100ms), std::future_status::timeout);
  EXPECT_EQ(state_of(*pool, "a"), ModelState::kReady);
  EXPECT_EQ(*generate(*lease, 3), 3);  // still serving its request
  lease = Status(StatusCode::kCancelled, "released");
  ASSERT_EQ(f.wait_for(60s), std::future_status::ready);
  auto st = f.get();
  ASSERT_TRUE(st.is_ok());
  EXPECT_EQ(st->state, ModelState::kUnloaded);
  EXPECT_EQ(pool->status().used_bytes, 0);
  // The next request loads it again.
  ASSERT_TRUE(acquire_wait(*pool, "a").is_ok());
  EXPECT_EQ(pool->model_status("a")->loads, 2);
}

TEST_F(PoolTest, RescanFindsNewModelsAndForgetsRemovedOnes) {
  ModelsDir dir;
  dir.add("one", 7);
  auto pool = make(pool_options(dir.root(), one_model() * 3));
  ASSERT_EQ(pool->list().size(), 1u);
  ASSERT_TRUE(acquire_wait(*pool, "one").is_ok());
  dir.add("two", 8);
  std::filesystem::rename(dir.root() / "one", dir.root() / ".one-gone");
  std::promise<Result<int64_t>> p;
  pool->rescan([&](Result<int64_t> n) { p.set_value(std::move(n)); });
  auto n = p.get_future().get();
  ASSERT_TRUE(n.is_ok());
  EXPECT_EQ(*n, 1);
  auto list = pool->list();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].id, "two");
  EXPECT_EQ(acquire_wait(*pool, "one").status().code(), StatusCode::kNotFound);
  // The dropped model was idle: it is unloaded.
  EXPECT_TRUE(eventually([&] { return !pool->model_status("one").has_value(); }));
  EXPECT_EQ(pool->status().used_bytes, 0);
}

TEST_F(PoolTest, LeaseOutlivingThePoolIsHarmless) {
  Result<ModelLease> lease = Status(StatusCode::kCancelled, "none");
  {
    auto pool = make(pool_options(models_->root(), two_models_budget()));
    lease = acquire_wait(*pool, "a");
    ASSERT_TRUE(lease.is_ok());
  }
  // The worker was stopped with the pool; the lease still points at a live model.
  EXPECT_EQ(lease->id(), "a");
  EXPECT_FALSE(generate(*lease, 2).is_ok());
}

}  // namespace
}  // namespace kiln::pool
