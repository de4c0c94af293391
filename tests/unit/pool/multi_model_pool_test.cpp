// The pool's executor (MultiModelPool) with a loader the test holds: every load stops at a gate
// until the test opens it, so what runs at once, what waits and what each caller hears is decided
// by the test, never by timing. The policy's decisions are tested in pool_policy_test.cpp; here:
// single flight across threads, loads that run concurrently, a load waiting for room that holds up
// neither other loads, unloads nor rescans, progress watches, back-off, keep-alive, preloads and
// shutdown. No checkpoint is read: plans and models are made from sizes.
#include "kiln/pool/multi_model_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <future>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "kiln/core/str.h"

namespace kiln::pool {
namespace {

using namespace std::chrono_literals;

constexpr auto kWait = 30s;  // only ever reached when a test fails

// The loader the tests hold. A load reports "tokenizer", stops at its model's gate, and then
// reports "weights" and "worker" and returns a model of the size the gate was opened with (or fails).
class GatedLoader {
 public:
  ModelLoader loader() {
    return [this](const ModelLoadOptions& o, const LoadProgress& progress) -> Result<LoadResult> {
      const std::string id = o.served_name;
      progress("tokenizer", 0.0);
      {
        std::lock_guard<std::mutex> lock(mu_);
        started_[id] += 1;
        running_ += 1;
        max_running_ = std::max(max_running_, running_);
      }
      cv_.notify_all();
      Result<int64_t> outcome = internal_error("the test never opened the gate");
      {
        std::unique_lock<std::mutex> lock(mu_);
        if (cv_.wait_for(lock, kWait, [&] { return !gates_[id].empty(); })) {
          outcome = gates_[id].front();
          gates_[id].pop_front();
        }
        running_ -= 1;
      }
      if (!outcome.is_ok()) return outcome.status();
      progress("weights", 0.5);
      progress("worker", 1.0);
      LoadResult r;
      r.model = std::make_shared<LoadedModel>();
      r.model->id = id;
      r.model->dir = o.dir;
      r.model->max_model_len = o.engine.max_model_len;
      r.model->description = o.description;
      r.memory.weights_bytes = *outcome;
      return r;
    };
  }

  // Lets the next load of `id` finish with a model of `bytes` (or fail with the status).
  void open(const std::string& id, Result<int64_t> outcome = int64_t{100}) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      gates_[id].push_back(std::move(outcome));
    }
    cv_.notify_all();
  }
  // Waits until `n` loads of `id` have reported "tokenizer" and wait at the gate (or are past it).
  bool wait_started(const std::string& id, int n = 1) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, kWait, [&] { return started_[id] >= n; });
  }
  int started(const std::string& id) {
    std::lock_guard<std::mutex> lock(mu_);
    return started_[id];
  }
  int max_running() {
    std::lock_guard<std::mutex> lock(mu_);
    return max_running_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, std::deque<Result<int64_t>>> gates_;
  std::map<std::string, int> started_;
  int running_ = 0, max_running_ = 0;
};

// A registry of models given by size (bytes each model's plan estimates); tests change it before a rescan.
struct Registry {
  std::mutex mu;
  std::vector<std::pair<std::string, int64_t>> models;
};

PoolOptions options(GatedLoader& loader, const std::shared_ptr<Registry>& reg, int64_t budget,
                    const Clock* clock = nullptr) {
  PoolOptions o;
  o.memory_budget = budget;
  o.clock = clock;
  o.loader = loader.loader();
  o.source = [reg]() -> Result<std::vector<ModelEntry>> {
    std::lock_guard<std::mutex> lock(reg->mu);
    std::vector<ModelEntry> out;
    for (const auto& [id, bytes] : reg->models) {
      ModelEntry e;
      e.id = id;
      e.dir = "/models/" + id;
      e.description = str_cat(bytes);
      out.push_back(e);
    }
    return out;
  };
  o.planner = [](const ModelEntry& e, const PoolOptions&, bool) {
    Plan p;
    p.engine.max_model_len = 256;
    p.estimate = ModelMemory{std::stoll(e.description), 0, 0};
    return p;
  };
  return o;
}

std::shared_ptr<Registry> registry(std::vector<std::pair<std::string, int64_t>> models) {
  auto r = std::make_shared<Registry>();
  r->models = std::move(models);
  return r;
}

// An acquire whose answer the test waits for.
struct Pending {
  std::shared_ptr<std::promise<Result<ModelLease>>> promise = std::make_shared<std::promise<Result<ModelLease>>>();
  std::shared_future<Result<ModelLease>> future = promise->get_future().share();
  bool answered() const { return future.wait_for(0s) == std::future_status::ready; }
  Result<ModelLease> get() const {
    if (future.wait_for(kWait) != std::future_status::ready) return deadline_exceeded("no answer");
    return future.get();
  }
};

Pending acquire(MultiModelPool& pool, const std::string& id, AcquireOptions ao = {}) {
  Pending p;
  pool.acquire(id, ao, [promise = p.promise](Result<ModelLease> r) { promise->set_value(std::move(r)); });
  return p;
}

template <typename T>
Result<T> wait_answer(std::function<void(std::function<void(Result<T>)>)> call) {
  auto promise = std::make_shared<std::promise<Result<T>>>();
  auto future = promise->get_future();
  call([promise](Result<T> r) { promise->set_value(std::move(r)); });
  if (future.wait_for(kWait) != std::future_status::ready) return deadline_exceeded("no answer");
  return future.get();
}

template <typename Pred>
bool eventually(Pred pred) {
  const auto deadline = std::chrono::steady_clock::now() + kWait;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(1ms);
  }
  return pred();
}

// Every lease on `id` released. A lease lives in the promise that answered it until the pool's
// thread has dropped that callback, just after the answer arrives.
bool idle(const MultiModelPool& pool, const std::string& id) {
  return eventually([&] { return pool.model_status(id)->in_flight == 0; });
}

ModelState state_of(const MultiModelPool& pool, const std::string& id) {
  auto s = pool.model_status(id);
  return s ? s->state : ModelState::kUnloaded;
}

std::unique_ptr<MultiModelPool> make(PoolOptions o) {
  auto p = MultiModelPool::create(std::move(o));
  EXPECT_TRUE(p.is_ok()) << p.status().to_string();
  return p.is_ok() ? std::move(p).value() : nullptr;
}

TEST(MultiModelPool, ConcurrentRequestsShareOneLoad) {
  GatedLoader loader;
  auto pool = make(options(loader, registry({{"a", 100}, {"b", 100}}), 250));
  std::vector<Pending> waits;
  std::vector<std::thread> threads;
  std::mutex mu;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      Pending p = acquire(*pool, "a");
      std::lock_guard<std::mutex> lock(mu);
      waits.push_back(p);
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_TRUE(loader.wait_started("a"));
  for (const auto& w : waits) EXPECT_FALSE(w.answered());
  EXPECT_EQ(state_of(*pool, "a"), ModelState::kLoading);
  EXPECT_EQ(pool->model_status("a")->loading_phase, "tokenizer");
  loader.open("a", 90);
  for (const auto& w : waits) {
    auto lease = w.get();
    ASSERT_TRUE(lease.is_ok()) << lease.status().to_string();
    EXPECT_EQ(lease->id(), "a");
    EXPECT_EQ(lease->max_model_len(), 256);
  }
  EXPECT_EQ(loader.started("a"), 1);
  auto st = pool->model_status("a");
  EXPECT_EQ(st->state, ModelState::kReady);
  EXPECT_EQ(st->loads, 1);
  EXPECT_EQ(st->memory_bytes, 90);
  EXPECT_EQ(st->in_flight, 8);
  waits.clear();
  EXPECT_TRUE(idle(*pool, "a"));
  EXPECT_TRUE(pool->list()[0].loaded);
  // Loaded now: the answer comes before acquire returns.
  Pending now = acquire(*pool, "a");
  EXPECT_TRUE(now.answered());
  EXPECT_EQ(acquire(*pool, "nope").get().status().code(), StatusCode::kNotFound);
}

TEST(MultiModelPool, TwoModelsThatFitLoadAtOnce) {
  GatedLoader loader;
  auto pool = make(options(loader, registry({{"a", 100}, {"b", 100}}), 250));
  Pending a = acquire(*pool, "a");
  Pending b = acquire(*pool, "b");
  // Both loads are inside the loader before either may finish.
  ASSERT_TRUE(loader.wait_started("a"));
  ASSERT_TRUE(loader.wait_started("b"));
  EXPECT_EQ(loader.max_running(), 2);
  EXPECT_EQ(pool->status().used_bytes, 200);
  loader.open("b");
  ASSERT_TRUE(b.get().is_ok());
  EXPECT_FALSE(a.answered());
  loader.open("a");
  ASSERT_TRUE(a.get().is_ok());
}

TEST(MultiModelPool, LoadWaitingForRoomHoldsUpNoLoadUnloadOrRescan) {
  GatedLoader loader;
  auto reg = registry({{"a", 100}, {"b", 100}, {"c", 100}, {"d", 50}});
  auto pool = make(options(loader, reg, 250));
  loader.open("a");
  loader.open("b");
  auto a = acquire(*pool, "a").get();
  auto b = acquire(*pool, "b").get();
  ASSERT_TRUE(a.is_ok() && b.is_ok());
  // Both are in use: c waits for room.
  Pending c = acquire(*pool, "c");
  EXPECT_EQ(pool->model_status("c")->loading_phase, "waiting for memory");
  // Meanwhile d fits in what is free, loads and is unloaded; a rescan goes through.
  loader.open("d", 50);
  auto d = acquire(*pool, "d").get();
  ASSERT_TRUE(d.is_ok()) << d.status().to_string();
  auto unloaded = std::make_shared<std::promise<Result<ModelStatus>>>();
  pool->unload("d", [unloaded](Result<ModelStatus> s) { unloaded->set_value(std::move(s)); });
  d = Status(StatusCode::kCancelled, "released");
  auto unload_answer = unloaded->get_future();
  ASSERT_EQ(unload_answer.wait_for(kWait), std::future_status::ready);
  EXPECT_EQ(unload_answer.get()->state, ModelState::kUnloaded);
  {
    std::lock_guard<std::mutex> lock(reg->mu);
    reg->models.push_back({"e", 100});
  }
  auto n = wait_answer<int64_t>([&](auto done) { pool->rescan(done); });
  ASSERT_TRUE(n.is_ok());
  EXPECT_EQ(*n, 5);
  EXPECT_FALSE(c.answered());
  EXPECT_EQ(loader.started("c"), 0);
  // b's request ends: b is evicted, never a, and c loads.
  b = Status(StatusCode::kCancelled, "released");
  ASSERT_TRUE(loader.wait_started("c"));
  EXPECT_EQ(state_of(*pool, "b"), ModelState::kUnloaded);
  EXPECT_EQ(state_of(*pool, "a"), ModelState::kReady);
  EXPECT_EQ(pool->model_status("b")->evictions, 1);
  loader.open("c");
  ASSERT_TRUE(c.get().is_ok());
  EXPECT_LE(pool->status().used_bytes, 250);
}

TEST(MultiModelPool, AdminUnloadAnsweredOnceTheRequestEnds) {
  GatedLoader loader;
  auto pool = make(options(loader, registry({{"a", 100}}), 250));
  loader.open("a");
  auto a = acquire(*pool, "a").get();
  ASSERT_TRUE(a.is_ok());
  auto promise = std::make_shared<std::promise<Result<ModelStatus>>>();
  auto future = promise->get_future();
  pool->unload("a", [promise](Result<ModelStatus> s) { promise->set_value(std::move(s)); });
  EXPECT_EQ(future.wait_for(0s), std::future_status::timeout);
  EXPECT_EQ(state_of(*pool, "a"), ModelState::kReady);
  a = Status(StatusCode::kCancelled, "released");
  ASSERT_EQ(future.wait_for(kWait), std::future_status::ready);
  auto st = future.get();
  ASSERT_TRUE(st.is_ok());
  EXPECT_EQ(st->state, ModelState::kUnloaded);
  EXPECT_EQ(pool->status().used_bytes, 0);
}

TEST(MultiModelPool, WatchSeesEveryPhaseInOrderUntilReady) {
  GatedLoader loader;
  auto pool = make(options(loader, registry({{"a", 100}}), 250));
  EXPECT_EQ(pool->watch("nope", [](const ModelStatus&) {}), nullptr);
  std::mutex mu;
  std::vector<ModelStatus> seen;
  auto handle = pool->watch("a", [&](const ModelStatus& m) {
    std::lock_guard<std::mutex> lock(mu);
    seen.push_back(m);
  });
  ASSERT_NE(handle, nullptr);
  Pending a = acquire(*pool, "a");
  ASSERT_TRUE(loader.wait_started("a"));
  loader.open("a");
  ASSERT_TRUE(a.get().is_ok());
  // The last notice may still be on its way when the lease arrives (both run after the pool's lock).
  ASSERT_TRUE(eventually([&] {
    std::lock_guard<std::mutex> lock(mu);
    return std::any_of(seen.begin(), seen.end(), [](const auto& m) { return m.state == ModelState::kReady; });
  }));
  std::vector<ModelStatus> events;
  {
    std::lock_guard<std::mutex> lock(mu);
    events = seen;
  }
  std::sort(events.begin(), events.end(), [](const auto& x, const auto& y) { return x.revision < y.revision; });
  std::vector<std::string> phases;
  double fraction = 0;
  for (size_t i = 0; i < events.size(); ++i) {
    if (i > 0) {
      EXPECT_GT(events[i].revision, events[i - 1].revision);
    }
    if (events[i].state != ModelState::kLoading) continue;
    phases.push_back(events[i].loading_phase);
    EXPECT_GE(events[i].loading_progress, fraction);
    fraction = events[i].loading_progress;
  }
  EXPECT_EQ(phases, (std::vector<std::string>{"loading", "tokenizer", "weights", "worker"}));
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().state, ModelState::kReady);
  // A dropped handle hears nothing more.
  handle.reset();
  a = Pending{};  // the request is over
  const size_t before = events.size();
  ASSERT_TRUE(wait_answer<ModelStatus>([&](auto done) { pool->unload("a", done); }).is_ok());
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_EQ(seen.size(), before);
}

TEST(MultiModelPool, FailedLoadAnswersWithTheCauseAndBacksOff) {
  GatedLoader loader;
  ManualClock clock;
  auto o = options(loader, registry({{"a", 100}, {"b", 100}}), 250, &clock);
  o.failure_backoff = 10s;
  auto pool = make(std::move(o));
  loader.open("a", data_loss("model.safetensors: header length 64 beyond the file's 10 bytes"));
  auto r = acquire(*pool, "a").get();
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInternal);
  EXPECT_EQ(r.status().message(),
            "The model `a` could not be loaded: model.safetensors: header length 64 beyond the file's 10 bytes "
            "(retry after 10 s)");
  auto st = pool->model_status("a");
  EXPECT_EQ(st->state, ModelState::kFailed);
  EXPECT_EQ(st->memory_bytes, 0);
  // Within the back-off: the same error at once, no new attempt; other models load.
  Pending again = acquire(*pool, "a");
  EXPECT_TRUE(again.answered());
  EXPECT_FALSE(again.get().is_ok());
  EXPECT_EQ(loader.started("a"), 1);
  loader.open("b");
  EXPECT_TRUE(acquire(*pool, "b").get().is_ok());
  clock.advance(10s);
  loader.open("a", data_loss("still broken"));
  auto retried = acquire(*pool, "a").get();
  EXPECT_EQ(loader.started("a"), 2);
  EXPECT_NE(retried.status().message().find("(retry after 20 s)"), std::string::npos) << retried.status().message();
  // An admin load tries again at once.
  loader.open("a");
  auto loaded = wait_answer<ModelStatus>([&](auto done) { pool->load("a", std::nullopt, done); });
  ASSERT_TRUE(loaded.is_ok()) << loaded.status().to_string();
  EXPECT_EQ(loaded->state, ModelState::kReady);
  EXPECT_EQ(loaded->failures, 2);
}

TEST(MultiModelPool, KeepAliveUnloadsAnIdleModelOnTime) {
  GatedLoader loader;
  ManualClock clock;
  auto o = options(loader, registry({{"a", 100}}), 250, &clock);
  o.keep_alive = 30s;
  auto pool = make(std::move(o));
  loader.open("a");
  {
    auto lease = acquire(*pool, "a").get();
    ASSERT_TRUE(lease.is_ok());
    clock.advance(60s);
    pool->expire_idle();  // in use: never unloaded, whatever the clock says
  }
  ASSERT_TRUE(idle(*pool, "a"));
  clock.advance(29s);
  pool->expire_idle();
  EXPECT_EQ(state_of(*pool, "a"), ModelState::kReady);
  EXPECT_DOUBLE_EQ(pool->model_status("a")->idle_unload_in_seconds, 1.0);
  clock.advance(1s);
  pool->expire_idle();
  EXPECT_TRUE(eventually([&] { return state_of(*pool, "a") == ModelState::kUnloaded; }));
  EXPECT_EQ(pool->status().used_bytes, 0);
}

TEST(MultiModelPool, PreloadedModelsLoadAtStartPinned) {
  GatedLoader loader;
  auto o = options(loader, registry({{"a", 100}, {"b", 100}}), 150);
  o.preload = {"b"};
  loader.open("b");
  auto pool = make(std::move(o));
  ASSERT_TRUE(pool->wait_for_preloads().is_ok());
  auto b = pool->model_status("b");
  EXPECT_EQ(b->state, ModelState::kReady);
  EXPECT_TRUE(b->pinned);
  // b is pinned: a, which would need b's room, can never fit.
  auto a = acquire(*pool, "a").get();
  EXPECT_EQ(a.status().code(), StatusCode::kResourceExhausted);

  auto bad = options(loader, registry({{"a", 100}}), 150);
  bad.preload = {"zzz"};
  auto refused = MultiModelPool::create(std::move(bad));
  ASSERT_FALSE(refused.is_ok());
  EXPECT_EQ(refused.status().message(), "--preload: no model `zzz` (models: a)");
}

TEST(MultiModelPool, ShutdownAnswersWaitersAndWaitsForRunningLoads) {
  GatedLoader loader;
  auto pool = make(options(loader, registry({{"a", 100}, {"b", 200}}), 250));
  Pending a = acquire(*pool, "a");
  ASSERT_TRUE(loader.wait_started("a"));
  Pending b = acquire(*pool, "b");  // waits for a's room
  std::thread stopper([&] { pool->shutdown(); });
  EXPECT_EQ(a.get().status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(b.get().status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(acquire(*pool, "a").get().status().code(), StatusCode::kUnavailable);
  loader.open("a");  // the running load ends; shutdown drops its model
  stopper.join();
  EXPECT_EQ(wait_answer<int64_t>([&](auto done) { pool->rescan(done); }).status().code(), StatusCode::kUnavailable);
}

TEST(MultiModelPool, LeaseOutlivingThePoolIsHarmless) {
  GatedLoader loader;
  Result<ModelLease> lease = Status(StatusCode::kCancelled, "none");
  {
    auto pool = make(options(loader, registry({{"a", 100}}), 250));
    loader.open("a");
    lease = acquire(*pool, "a").get();
    ASSERT_TRUE(lease.is_ok());
  }
  EXPECT_EQ(lease->id(), "a");
  lease = Status(StatusCode::kCancelled, "released");  // releases into nothing
}

}  // namespace
}  // namespace kiln::pool
