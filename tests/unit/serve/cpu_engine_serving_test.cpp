// The scheduler and the engine worker over the real CPU engine (a tiny seeded llama checkpoint).
// The CPU engine is batch invariant, so a request's tokens must not depend on what else runs:
// alone or among 63 others arriving at random steps, with and without prefix caching, prefilled
// whole or in chunks of any size, and across preemptions.
#include <gtest/gtest.h>

#include <cstdio>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "kiln/serve/engine_worker.h"
#include "kiln/serve/scheduler.h"
#include "unit/runtime/engine_test_util.h"
#include "unit/serve/scheduler_harness.h"

namespace kiln::serve {
namespace {

using testing::Arrival;

struct Timed {
  Arrival a;
  int step = 0;
};

struct Outcome {
  std::vector<std::vector<int32_t>> tokens;  // per choice
  std::vector<FinishReason> finish;
  Usage usage;
  bool done = false;
};

struct RunConfig {
  std::string name;
  int32_t num_blocks = 0;  // 0: the engine's whole pool
  int32_t budget = 8192;
  int32_t chunk = 0;
  bool cache = true;
  bool expect_preemption = false;
};

runtime::Engine& shared_engine() {
  static std::unique_ptr<runtime::Engine> engine =
      runtime::testing::load_engine(runtime::testing::tiny_model("tiny-llama", 11), 2, 2048);
  return *engine;
}

// Steps a scheduler over `engine` until the workload is done, the way the engine worker does.
std::map<std::string, Outcome> run(runtime::Engine& engine, const RunConfig& rc, const std::vector<Timed>& work,
                                   SchedulerStats* stats = nullptr) {
  SchedulerOptions o;
  o.max_batched_tokens = rc.budget;
  o.max_prefill_chunk = rc.chunk;
  o.max_seqs = 64;
  o.enable_prefix_cache = rc.cache;
  o.vocab_size = engine.config().vocab_size;
  o.max_model_len = engine.max_model_len();
  o.kv = engine.kv_geometry();
  if (rc.num_blocks > 0) o.kv.num_blocks = rc.num_blocks;  // a smaller pool inside the engine's
  auto created = Scheduler::create(o);
  EXPECT_TRUE(created.is_ok()) << created.status().to_string();
  Scheduler& sched = **created;

  std::vector<Timed> order = work;
  std::stable_sort(order.begin(), order.end(), [](const Timed& x, const Timed& y) { return x.step < y.step; });
  std::map<std::string, Outcome> outcomes;
  std::map<uint64_t, std::string> names;
  size_t next = 0;
  for (int step = 0; next < order.size() || sched.has_work(); ++step) {
    while (next < order.size() && order[next].step <= step) {
      const Arrival& a = order[next].a;
      Request r;
      r.prompt = testing::prompt_for(a);
      r.n = a.n;
      r.max_tokens = a.max_tokens;
      r.sampling.temperature = a.temperature;
      const uint64_t id = next + 1;
      EXPECT_TRUE(sched.add_request(id, std::move(r), a.seed).is_ok());
      names[id] = a.name;
      outcomes[a.name].tokens.resize(static_cast<size_t>(a.n));
      outcomes[a.name].finish.resize(static_cast<size_t>(a.n));
      ++next;
    }
    SchedulerOutput out = sched.schedule();
    if (out.empty()) continue;
    auto result = engine.step(sched.build_plan(out));
    EXPECT_TRUE(result.is_ok()) << result.status().to_string();
    if (!result.is_ok()) break;
    auto events = sched.apply_result(out, *result);
    EXPECT_TRUE(events.is_ok()) << events.status().to_string();
    for (const RequestEvents& ev : *events) {
      Outcome& oc = outcomes[names[ev.request_id]];
      for (const ChoiceToken& t : ev.tokens) oc.tokens[static_cast<size_t>(t.choice)].push_back(t.sample.token);
      for (const auto& [c, reason] : ev.finished) oc.finish[static_cast<size_t>(c)] = reason;
      if (ev.done) {
        oc.done = true;
        oc.usage = ev.usage;
      }
    }
    const Status inv = sched.check_invariants();
    EXPECT_TRUE(inv.is_ok()) << inv.to_string();
    if (!inv.is_ok()) break;
    EXPECT_LT(step, 100000);
  }
  if (stats != nullptr) *stats = sched.stats();
  return outcomes;
}

std::vector<Timed> workload() {
  std::mt19937 rng(777);
  auto uni = [&](int lo, int hi) { return lo + static_cast<int>(rng() % static_cast<uint32_t>(hi - lo + 1)); };
  std::vector<Timed> w;
  for (int i = 0; i < 64; ++i) {
    Timed t;
    t.a.name = str_cat("r", i);
    t.a.prompt_len = uni(1, 48);
    t.a.max_tokens = uni(1, 14);
    if (uni(0, 2) > 0) {
      t.a.family = uni(0, 2);
      t.a.shared = uni(t.a.prompt_len / 2, t.a.prompt_len);
    }
    if (uni(0, 6) == 0) t.a.n = 2;
    if (uni(0, 3) == 0) {
      t.a.temperature = 0.9f;  // seeded sampling must repeat itself too
      t.a.seed = rng();
    }
    t.step = uni(0, 40);
    w.push_back(t);
  }
  return w;
}

TEST(CpuEngineServing, TokensAreIdenticalAloneAndAmongOthers) {
  runtime::Engine& engine = shared_engine();
  const std::vector<Timed> work = workload();
  std::map<std::string, Outcome> alone;
  for (const Timed& t : work) {
    Timed solo = t;
    solo.step = 0;
    auto o = run(engine, RunConfig{"alone", 0, 8192, 0, false, false}, {solo});
    alone[t.a.name] = o[t.a.name];
    ASSERT_TRUE(alone[t.a.name].done) << t.a.name;
  }
  // The comparison means something only if the outputs vary from request to request.
  std::set<std::vector<int32_t>> distinct;
  for (const auto& [name, o] : alone) distinct.insert(o.tokens[0]);
  EXPECT_GT(distinct.size(), 40u);
  const std::vector<RunConfig> configs = {
      {"prefix cache", 0, 8192, 0, true, false},
      {"no prefix cache", 0, 8192, 0, false, false},
      {"chunk 1", 0, 8192, 1, true, false},
      {"chunk 7, budget 19", 0, 19, 7, false, false},
      {"chunk 16, budget 40", 0, 40, 16, true, false},
      {"tiny pool, cache", 40, 8192, 0, true, true},
      {"tiny pool, no cache, chunk 5", 40, 64, 5, false, true},
  };
  for (const RunConfig& rc : configs) {
    SCOPED_TRACE(rc.name);
    SchedulerStats st;
    auto got = run(engine, rc, work, &st);
    for (const Timed& t : work) {
      const Outcome& g = got[t.a.name];
      const Outcome& want = alone[t.a.name];
      ASSERT_TRUE(g.done) << t.a.name;
      EXPECT_EQ(g.tokens, want.tokens) << t.a.name;
      EXPECT_EQ(g.finish, want.finish) << t.a.name;
      EXPECT_EQ(g.usage.completion_tokens, want.usage.completion_tokens) << t.a.name;
    }
    if (rc.expect_preemption) {
      EXPECT_GT(st.preemptions, 0);
    }
    std::printf("[ %s ] %lld steps, %lld tokens, %lld preemptions, %lld prefix-cache hit tokens\n", rc.name.c_str(),
                static_cast<long long>(st.steps), static_cast<long long>(st.tokens_computed),
                static_cast<long long>(st.preemptions), static_cast<long long>(st.prefix_cache_hits));
    if (rc.cache) {
      EXPECT_GT(st.prefix_cache_hits, 0);
    }
  }
}

TEST(CpuEngineServing, SharedThousandTokenPrefixComputesOnlyNewTokens) {
  auto engine = runtime::testing::load_engine(runtime::testing::tiny_model("tiny-llama", 11), 2, 2048);
  ASSERT_NE(engine, nullptr);
  EngineWorkerOptions o;
  o.model_name = "tiny-llama";
  auto started = EngineWorker::start(std::move(engine), o);
  ASSERT_TRUE(started.is_ok()) << started.status().to_string();
  EngineWorker& worker = **started;

  Arrival prefix;
  prefix.name = "prefix";
  prefix.prompt_len = 1000;
  const std::vector<int32_t> shared = testing::prompt_for(prefix);
  auto request = [&](const std::string& name, int32_t extra) {
    Arrival tail;
    tail.name = name;
    tail.prompt_len = extra;
    Request r;
    r.id = name;
    r.prompt = shared;
    for (int32_t t : testing::prompt_for(tail)) r.prompt.push_back(t);
    r.max_tokens = 4;
    r.sampling.temperature = 0.0f;
    return r;
  };
  auto finish = [](const std::shared_ptr<TokenStream>& s) {
    std::vector<int32_t> tokens;
    for (;;) {
      StreamChunk c = s->wait_take(std::chrono::milliseconds(30000));
      for (const StreamToken& t : c.tokens) tokens.push_back(t.token);
      if (c.done) {
        EXPECT_TRUE(c.error.is_ok()) << c.error.to_string();
        return std::make_pair(tokens, c.usage);
      }
    }
  };
  // Counters are published after the step that ends a request; wait for them.
  auto settled = [&](int64_t finished) {
    for (int i = 0; i < 5000 && worker.counters().requests_finished < finished; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return worker.counters();
  };
  auto first = finish(worker.submit(request("first", 9)).stream);
  EXPECT_EQ(first.second.cached_prompt_tokens, 0);
  const WorkerCounters before = settled(1);
  EXPECT_EQ(before.tokens_computed, 1009 + 3);

  const Request second_req = request("second", 21);
  auto second = finish(worker.submit(second_req).stream);
  const WorkerCounters after = settled(2);
  // Only the 21 new prompt tokens and the 3 decode steps went through the engine.
  EXPECT_EQ(after.tokens_computed - before.tokens_computed, 21 + 3);
  EXPECT_EQ(second.second.cached_prompt_tokens, 1000);
  EXPECT_EQ(second.second.prompt_tokens, 1021);
  EXPECT_EQ(after.prefix_cache_hits - before.prefix_cache_hits, 1000);

  // The cached KV gives the tokens a full recomputation gives.
  auto fresh_engine = runtime::testing::load_engine(runtime::testing::tiny_model("tiny-llama", 11), 2, 2048);
  EngineWorkerOptions no_cache = o;
  no_cache.scheduler.enable_prefix_cache = false;
  auto fresh = EngineWorker::start(std::move(fresh_engine), no_cache);
  ASSERT_TRUE(fresh.is_ok());
  auto recomputed = finish((*fresh)->submit(second_req).stream);
  EXPECT_EQ(recomputed.first, second.first);
  EXPECT_EQ(recomputed.second.cached_prompt_tokens, 0);
}

}  // namespace
}  // namespace kiln::serve
