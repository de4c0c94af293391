#include "kiln/serve/engine_worker.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <condition_variable>
#include <thread>

#include "unit/serve/fake_engine.h"
#include "unit/serve/scheduler_harness.h"

namespace kiln::serve {
namespace {

using namespace std::chrono_literals;
using testing::FakeEngine;

struct Collected {
  std::vector<std::vector<int32_t>> tokens;
  std::vector<FinishReason> finish;
  StreamChunk last;
};

// Reads a stream the way the HTTP layer does: sleeps until the notify callback fires, then takes.
Collected collect(const std::shared_ptr<TokenStream>& stream, std::chrono::seconds limit = 20s) {
  Collected c;
  c.tokens.resize(static_cast<size_t>(stream->num_choices()));
  c.finish.assign(static_cast<size_t>(stream->num_choices()), FinishReason::kNone);
  // Shared with the callback, which may still be running on the worker thread when we return.
  struct Wake {
    std::mutex mu;
    std::condition_variable cv;
    bool woken = false;
  };
  auto wake = std::make_shared<Wake>();
  stream->set_notify([wake] {
    std::lock_guard<std::mutex> lock(wake->mu);
    wake->woken = true;
    wake->cv.notify_one();
  });
  const auto deadline = std::chrono::steady_clock::now() + limit;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(wake->mu);
      if (!wake->cv.wait_until(lock, deadline, [&] { return wake->woken; })) break;
      wake->woken = false;
    }
    StreamChunk chunk = stream->take();
    for (const StreamToken& t : chunk.tokens) c.tokens[static_cast<size_t>(t.choice)].push_back(t.token);
    for (const auto& [choice, reason] : chunk.finished) c.finish[static_cast<size_t>(choice)] = reason;
    if (chunk.done) {
      c.last = std::move(chunk);
      break;
    }
  }
  stream->set_notify(nullptr);
  EXPECT_TRUE(c.last.done) << "stream did not finish in time";
  return c;
}

Request make_request(const std::string& name, int32_t prompt_len, int32_t max_tokens, int32_t n = 1) {
  testing::Arrival a;
  a.name = name;
  a.prompt_len = prompt_len;
  Request r;
  r.id = name;
  r.prompt = testing::prompt_for(a);
  r.max_tokens = max_tokens;
  r.n = n;
  r.sampling.temperature = 0.0f;
  return r;
}

// What the scheduler alone produces for a request (greedy).
std::vector<int32_t> reference_tokens(const std::string& name, int32_t prompt_len, int32_t max_tokens) {
  testing::Harness h(testing::Harness::Config{});
  testing::Arrival a;
  a.name = name;
  a.prompt_len = prompt_len;
  a.max_tokens = max_tokens;
  EXPECT_TRUE(h.arrive(a).is_ok());
  h.run_to_completion();
  return h.record(name).tokens[0];
}

struct WorkerSetup {
  FakeEngine* engine = nullptr;  // owned by the worker
  std::unique_ptr<EngineWorker> worker;
};

WorkerSetup start_worker(EngineWorkerOptions options, FakeEngine::Options eo = {},
                         std::function<void(FakeEngine&)> configure = nullptr) {
  auto engine = std::make_unique<FakeEngine>(eo);
  WorkerSetup s;
  s.engine = engine.get();
  if (configure) configure(*engine);
  auto w = EngineWorker::start(std::move(engine), std::move(options));
  EXPECT_TRUE(w.is_ok()) << w.status().to_string();
  s.worker = std::move(w).value();
  return s;
}

template <typename Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit = 5000ms) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(1ms);
  }
  return pred();
}

TEST(EngineWorker, ServesConcurrentRequestsWithTheirOwnTokens) {
  EngineWorkerOptions o;
  o.model_name = "fake";
  auto s = start_worker(o);
  std::vector<std::shared_ptr<TokenStream>> streams;
  for (int i = 0; i < 12; ++i) {
    SubmitResult r = s.worker->submit(make_request(str_cat("q", i), 3 + i, 5 + i % 4));
    ASSERT_TRUE(r.ok()) << r.status.to_string();
    streams.push_back(r.stream);
  }
  for (int i = 0; i < 12; ++i) {
    Collected c = collect(streams[static_cast<size_t>(i)]);
    EXPECT_TRUE(c.last.error.is_ok()) << c.last.error.to_string();
    EXPECT_EQ(c.tokens[0], reference_tokens(str_cat("q", i), 3 + i, 5 + i % 4));
    EXPECT_EQ(c.finish[0], FinishReason::kLength);
    EXPECT_EQ(c.last.usage.prompt_tokens, 3 + i);
    EXPECT_EQ(c.last.usage.completion_tokens, 5 + i % 4);
    EXPECT_GE(c.last.timing.first_token, c.last.timing.first_scheduled);
    EXPECT_GE(c.last.timing.finished, c.last.timing.first_token);
    EXPECT_GT(c.last.timing.steps, 0);
  }
  EXPECT_TRUE(eventually([&] { return s.worker->counters().requests_finished == 12; }));
  const WorkerCounters c = s.worker->counters();
  EXPECT_EQ(c.running, 0);
  EXPECT_GT(c.steps, 0);
  EXPECT_LT(c.steps, 12 * 9);  // batched: far fewer steps than requests x tokens
  EXPECT_EQ(c.kv_blocks_used, 0);
}

TEST(EngineWorker, RefusesInvalidRequestsAtOnceNamingTheField) {
  auto s = start_worker(EngineWorkerOptions{});
  Request r = make_request("bad", 3, 4);
  r.sampling.top_p = 0.0f;
  SubmitResult res = s.worker->submit(r);
  EXPECT_FALSE(res.ok());
  EXPECT_EQ(res.status.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(res.status.message().find("top_p"), std::string::npos);
  EXPECT_EQ(res.status.param(), "top_p");
  EXPECT_EQ(res.stream, nullptr);
  Request impatient = make_request("impatient", 3, 4);
  impatient.timeout_seconds = -1.0;
  EXPECT_EQ(s.worker->submit(impatient).status.param(), "timeout");
}

TEST(EngineWorker, CancelFreesTheSequenceAtTheNextStep) {
  EngineWorkerOptions o;
  FakeEngine::Options eo;
  eo.max_model_len = 100000;
  eo.num_blocks = 1024;
  auto s = start_worker(o, eo, [](FakeEngine& e) { e.on_step = [] { std::this_thread::sleep_for(1ms); }; });
  SubmitResult long_one = s.worker->submit(make_request("long", 8, 50000));
  SubmitResult other = s.worker->submit(make_request("other", 8, 50000));
  ASSERT_TRUE(long_one.ok() && other.ok());
  ASSERT_TRUE(eventually([&] { return s.worker->counters().running == 2; }));
  long_one.stream->cancel();
  ASSERT_TRUE(eventually([&] { return s.worker->counters().running == 1; }, 1000ms));
  Collected c = collect(long_one.stream);
  EXPECT_EQ(c.last.error.code(), StatusCode::kCancelled);
  EXPECT_EQ(c.finish[0], FinishReason::kCancelled);
  other.stream->cancel();
  ASSERT_TRUE(eventually([&] { return s.worker->counters().running == 0; }, 1000ms));
  EXPECT_TRUE(eventually([&] { return s.worker->counters().kv_blocks_used == 0; }));
  EXPECT_EQ(s.worker->counters().requests_cancelled, 2);
}

TEST(EngineWorker, FullQueueRefusesWithRetryAfter) {
  EngineWorkerOptions o;
  o.max_queue = 2;
  FakeEngine::Options eo;
  eo.max_seqs = 1;  // the scheduler takes its limits from the engine
  std::mutex gate_mu;
  std::condition_variable gate_cv;
  bool open = false;
  auto open_gate = [&] {
    {
      std::lock_guard<std::mutex> lock(gate_mu);
      open = true;
    }
    gate_cv.notify_all();
  };
  auto s = start_worker(o, eo, [&](FakeEngine& e) {
    e.on_step = [&] {
      std::unique_lock<std::mutex> lock(gate_mu);
      gate_cv.wait(lock, [&] { return open; });
    };
  });
  // Opens the gate however the test ends, so the worker's thread can be joined.
  struct Guard {
    std::function<void()> fn;
    ~Guard() { fn(); }
  } guard{open_gate};
  SubmitResult running = s.worker->submit(make_request("a", 4, 3));
  ASSERT_TRUE(running.ok());
  ASSERT_TRUE(eventually([&] { return s.worker->counters().running == 1; }));
  SubmitResult w1 = s.worker->submit(make_request("b", 4, 3));
  SubmitResult w2 = s.worker->submit(make_request("c", 4, 3));
  ASSERT_TRUE(w1.ok() && w2.ok());
  SubmitResult refused = s.worker->submit(make_request("d", 4, 3));
  EXPECT_EQ(refused.status.code(), StatusCode::kUnavailable);
  EXPECT_NE(refused.status.message().find("max_queue 2"), std::string::npos) << refused.status.message();
  EXPECT_GE(refused.retry_after_seconds, 1);
  EXPECT_EQ(s.worker->counters().requests_rejected, 1);
  open_gate();
  for (auto* r : {&running, &w1, &w2}) EXPECT_TRUE(collect(r->stream).last.error.is_ok());
  EXPECT_TRUE(s.worker->submit(make_request("e", 4, 3)).ok());
}

TEST(EngineWorker, RequestTimeoutEndsWaitingAndRunningRequests) {
  ManualClock clock;
  EngineWorkerOptions o;
  o.clock = &clock;
  o.request_timeout_seconds = 30;
  FakeEngine::Options eo;
  eo.max_seqs = 1;
  eo.max_model_len = 100000;
  eo.num_blocks = 1024;
  auto s = start_worker(o, eo, [](FakeEngine& e) { e.on_step = [] { std::this_thread::sleep_for(200us); }; });
  SubmitResult running = s.worker->submit(make_request("run", 4, 90000));
  ASSERT_TRUE(running.ok());
  ASSERT_TRUE(eventually([&] { return s.worker->counters().running == 1; }));
  SubmitResult waiting = s.worker->submit(make_request("wait", 4, 3));
  ASSERT_TRUE(waiting.ok());
  Request patient = make_request("patient", 4, 3);
  patient.timeout_seconds = 3600;
  SubmitResult survivor = s.worker->submit(patient);
  ASSERT_TRUE(eventually([&] { return s.worker->counters().waiting == 2; }));
  clock.advance(std::chrono::seconds(31));
  Collected r = collect(running.stream);
  Collected w = collect(waiting.stream);
  EXPECT_EQ(r.last.error.code(), StatusCode::kDeadlineExceeded);
  EXPECT_NE(r.last.error.message().find("timed out after 30 s while generating"), std::string::npos) << r.last.error.message();
  EXPECT_GT(r.last.usage.completion_tokens, 0);
  EXPECT_EQ(w.last.error.code(), StatusCode::kDeadlineExceeded);
  EXPECT_NE(w.last.error.message().find("while waiting to start"), std::string::npos) << w.last.error.message();
  Collected p = collect(survivor.stream);
  EXPECT_TRUE(p.last.error.is_ok());
  EXPECT_EQ(s.worker->counters().requests_timed_out, 2);
}

TEST(EngineWorker, AFailedStepFailsItsRequestsAndTheWorkerGoesOn) {
  auto s = start_worker(EngineWorkerOptions{}, {}, [](FakeEngine& e) {
    e.fail_step = [](const runtime::StepPlan& plan) {
      for (int32_t t : plan.token_ids) {
        if (t == 7) return internal_error("kernel launch failed");
      }
      return Status::ok();
    };
  });
  Request bad = make_request("bad", 4, 3);
  bad.prompt[2] = 7;
  Collected b = collect(s.worker->submit(bad).stream);
  EXPECT_EQ(b.last.error.code(), StatusCode::kInternal);
  EXPECT_NE(b.last.error.message().find("kernel launch failed"), std::string::npos);
  EXPECT_EQ(b.finish[0], FinishReason::kError);
  Collected g = collect(s.worker->submit(make_request("good", 4, 3)).stream);
  EXPECT_TRUE(g.last.error.is_ok());
  EXPECT_EQ(g.tokens[0].size(), 3u);
  EXPECT_EQ(s.worker->counters().failed_steps, 1);
}

TEST(EngineWorker, ConsumerCanFinishAChoiceEarly) {
  FakeEngine::Options eo;
  eo.max_model_len = 100000;
  eo.num_blocks = 1024;
  auto s = start_worker(EngineWorkerOptions{}, eo, [](FakeEngine& e) { e.on_step = [] { std::this_thread::sleep_for(1ms); }; });
  SubmitResult r = s.worker->submit(make_request("two", 5, 20000, 2));
  ASSERT_TRUE(r.ok());
  StreamChunk first;
  while (first.tokens.empty()) first = r.stream->wait_take(1000ms);
  r.stream->finish_choice(0, FinishReason::kStop);  // as if a stop string matched
  ASSERT_TRUE(eventually([&] { return s.worker->counters().running == 1; }, 1000ms));
  r.stream->finish_choice(1, FinishReason::kStop);
  Collected c = collect(r.stream);
  EXPECT_TRUE(c.last.error.is_ok());
  EXPECT_EQ(c.finish, (std::vector<FinishReason>{FinishReason::kStop, FinishReason::kStop}));
  EXPECT_LT(c.last.usage.completion_tokens, 40000);
  EXPECT_TRUE(eventually([&] { return s.worker->counters().kv_blocks_used == 0; }));
}

TEST(EngineWorker, SeededRequestsRepeatThemselves) {
  auto s = start_worker(EngineWorkerOptions{});
  Request r = make_request("seeded", 6, 8, 2);
  r.sampling.temperature = 0.8f;
  r.seed = 1234;
  Collected a = collect(s.worker->submit(r).stream);
  Collected b = collect(s.worker->submit(r).stream);
  EXPECT_EQ(a.tokens, b.tokens);
  EXPECT_NE(a.tokens[0], a.tokens[1]);
}

TEST(EngineWorker, AStepOfWorsePrioritiesIsAbandonedForABetterArrivalAndRedone) {
  // Requests are submitted from inside chosen steps (on the engine thread, before the fake
  // engine asks StepPlan::abandon), so which step sees which arrival is fixed. The fake engine
  // leaves an abandoned step's slots holding junk: the tokens below come out right only if the
  // abandoned tokens are computed again.
  EngineWorker* worker = nullptr;
  std::mutex mu;
  std::shared_ptr<TokenStream> same_priority, better;
  auto s = start_worker(EngineWorkerOptions{}, {}, [&](FakeEngine& e) {
    e.on_step = [&] {
      if (e.plans.size() == 3) {  // batch line "b" decodes alone: another batch line arrives
        Request r = make_request("c", 5, 6);
        r.priority = 1;
        std::lock_guard<std::mutex> lock(mu);
        same_priority = worker->submit(std::move(r)).stream;
      } else if (e.plans.size() == 5) {  // "b" and "c" decode: a client's request arrives
        std::lock_guard<std::mutex> lock(mu);
        better = worker->submit(make_request("i", 7, 4)).stream;
      }
    };
  });
  worker = s.worker.get();
  Request b = make_request("b", 6, 12);
  b.priority = 1;
  SubmitResult rb = s.worker->submit(std::move(b));
  ASSERT_TRUE(rb.ok());
  const Collected cb = collect(rb.stream);
  ASSERT_TRUE(eventually([&] {
    std::lock_guard<std::mutex> lock(mu);
    return same_priority && better;
  }));
  const Collected cc = collect(same_priority), ci = collect(better);
  EXPECT_EQ(cb.tokens[0], reference_tokens("b", 6, 12));
  EXPECT_EQ(cc.tokens[0], reference_tokens("c", 5, 6));
  EXPECT_EQ(ci.tokens[0], reference_tokens("i", 7, 4));
  ASSERT_TRUE(eventually([&] { return s.worker->counters().requests_finished == 3; }));
  // Only the client's arrival stopped a step (a batch line's arrival joins the next one), and
  // the client's prompt then ran alone.
  EXPECT_EQ(s.engine->abandoned_steps, 1);
  EXPECT_EQ(s.worker->counters().abandoned_steps, 1);
  ASSERT_GT(s.engine->plans.size(), 6u);
  EXPECT_EQ(s.engine->plans[3].num_seqs(), 2);  // "b" decodes beside "c"'s prompt
  EXPECT_EQ(s.engine->plans[4].num_seqs(), 2);  // the abandoned step
  EXPECT_EQ(s.engine->plans[5].num_seqs(), 1);
  EXPECT_EQ(s.engine->plans[5].num_tokens(), 7);
  EXPECT_EQ(s.worker->counters().kv_blocks_used, 0);
}

TEST(EngineWorker, StopEndsEverythingWithUnavailable) {
  FakeEngine::Options eo;
  eo.max_model_len = 100000;
  eo.num_blocks = 1024;
  auto s = start_worker(EngineWorkerOptions{}, eo, [](FakeEngine& e) { e.on_step = [] { std::this_thread::sleep_for(1ms); }; });
  SubmitResult r = s.worker->submit(make_request("x", 4, 90000));
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(eventually([&] { return s.worker->counters().running == 1; }));
  s.worker->stop();
  Collected c = collect(r.stream);
  EXPECT_EQ(c.last.error.code(), StatusCode::kUnavailable);
  EXPECT_EQ(s.worker->submit(make_request("y", 4, 2)).status.code(), StatusCode::kUnavailable);
}


// Structured generation with hand-made masks: output token k must be one of allowed[k]; the
// output is complete after allowed.size() tokens. It counts what it is fed, so a recompute that
// fed it again would show.
class ListConstraint final : public TokenConstraint {
 public:
  explicit ListConstraint(std::shared_ptr<const std::vector<std::vector<int32_t>>> allowed)
      : allowed_(std::move(allowed)) {}
  void fill_mask(std::span<uint32_t> words) override {
    std::fill(words.begin(), words.end(), 0u);
    if (pos_ >= allowed_->size()) return;
    for (int32_t t : (*allowed_)[pos_]) words[static_cast<size_t>(t) / 32] |= 1u << (t % 32);
  }
  bool accept(int32_t token) override {
    if (pos_ >= allowed_->size()) return false;
    const auto& a = (*allowed_)[pos_];
    if (std::find(a.begin(), a.end(), token) == a.end()) return false;
    ++pos_;
    return true;
  }
  bool complete() const override { return pos_ == allowed_->size(); }

 private:
  std::shared_ptr<const std::vector<std::vector<int32_t>>> allowed_;
  size_t pos_ = 0;
};

class ListFactory final : public ConstraintFactory {
 public:
  explicit ListFactory(std::vector<std::vector<int32_t>> allowed)
      : allowed_(std::make_shared<const std::vector<std::vector<int32_t>>>(std::move(allowed))) {}
  std::unique_ptr<TokenConstraint> make() const override { return std::make_unique<ListConstraint>(allowed_); }
  const std::vector<std::vector<int32_t>>& allowed() const { return *allowed_; }

 private:
  std::shared_ptr<const std::vector<std::vector<int32_t>>> allowed_;
};

// `length` steps, each allowing a few ids spread over the vocabulary (never the EOS id 2).
std::shared_ptr<ListFactory> list_factory(int length, int per_step = 3) {
  std::vector<std::vector<int32_t>> allowed;
  for (int k = 0; k < length; ++k) {
    std::vector<int32_t> a;
    for (int j = 0; j < per_step; ++j) a.push_back(100 + (k * 37 + j * 211) % 800);
    allowed.push_back(std::move(a));
  }
  return std::make_shared<ListFactory>(std::move(allowed));
}

void expect_follows(const std::vector<int32_t>& tokens, const ListFactory& f) {
  ASSERT_EQ(tokens.size(), f.allowed().size());
  for (size_t k = 0; k < tokens.size(); ++k) {
    const auto& a = f.allowed()[k];
    EXPECT_NE(std::find(a.begin(), a.end(), tokens[k]), a.end()) << "token " << k << " = " << tokens[k];
  }
}

TEST(EngineWorkerConstrained, EveryChoiceFollowsItsConstraintAndStopsWhenComplete) {
  auto s = start_worker(EngineWorkerOptions{});
  auto f = list_factory(9);
  Request r = make_request("json", 6, 100, /*n=*/3);
  r.sampling.temperature = 1.0f;  // the choices draw differently, each under its own constraint
  r.constraint = f;
  Request free_one = make_request("free", 5, 12);
  SubmitResult a = s.worker->submit(r), b = s.worker->submit(free_one);
  ASSERT_TRUE(a.ok() && b.ok());
  Collected c = collect(a.stream), d = collect(b.stream);
  EXPECT_TRUE(c.last.error.is_ok()) << c.last.error.to_string();
  for (int i = 0; i < 3; ++i) {
    expect_follows(c.tokens[static_cast<size_t>(i)], *f);
    EXPECT_EQ(c.finish[static_cast<size_t>(i)], FinishReason::kStop);
  }
  EXPECT_EQ(d.tokens[0], reference_tokens("free", 5, 12));  // unconstrained neighbours are untouched
  EXPECT_TRUE(eventually([&] { return s.worker->counters().kv_blocks_used == 0; }));
}

TEST(EngineWorkerConstrained, LengthLimitStillApplies) {
  auto s = start_worker(EngineWorkerOptions{});
  auto f = list_factory(9);
  Request r = make_request("short", 6, 4);
  r.constraint = f;
  Collected c = collect(s.worker->submit(r).stream);
  EXPECT_EQ(c.tokens[0].size(), 4u);
  EXPECT_EQ(c.finish[0], FinishReason::kLength);
}

TEST(EngineWorkerConstrained, AMaskThatAllowsNothingFailsThatRequestOnly) {
  auto s = start_worker(EngineWorkerOptions{});
  std::vector<std::vector<int32_t>> allowed = {{150}, {151}, {}, {153}};
  auto f = std::make_shared<ListFactory>(allowed);
  Request bad = make_request("bad", 6, 100, /*n=*/2);
  bad.constraint = f;
  SubmitResult a = s.worker->submit(bad), b = s.worker->submit(make_request("good", 5, 12));
  Collected c = collect(a.stream), d = collect(b.stream);
  EXPECT_EQ(c.last.error.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(c.last.error.message().find("no token"), std::string::npos) << c.last.error.message();
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(c.tokens[static_cast<size_t>(i)], (std::vector<int32_t>{150, 151}));
    EXPECT_EQ(c.finish[static_cast<size_t>(i)], FinishReason::kError);
  }
  EXPECT_TRUE(d.last.error.is_ok());
  EXPECT_EQ(d.tokens[0], reference_tokens("good", 5, 12));
  EXPECT_EQ(s.worker->counters().failed_steps, 0);
  EXPECT_TRUE(eventually([&] { return s.worker->counters().kv_blocks_used == 0; }));
}

TEST(EngineWorkerConstrained, CancelFreesConstrainedSequences) {
  FakeEngine::Options eo;
  eo.max_model_len = 100000;
  eo.num_blocks = 1024;
  auto s = start_worker(EngineWorkerOptions{}, eo, [](FakeEngine& e) { e.on_step = [] { std::this_thread::sleep_for(1ms); }; });
  Request r = make_request("long", 8, 50000, /*n=*/2);
  r.constraint = list_factory(40000);
  SubmitResult a = s.worker->submit(r);
  ASSERT_TRUE(eventually([&] { return s.worker->counters().running == 2; }));
  a.stream->cancel();
  Collected c = collect(a.stream);
  EXPECT_EQ(c.last.error.code(), StatusCode::kCancelled);
  EXPECT_TRUE(eventually([&] { return s.worker->counters().kv_blocks_used == 0; }));
}

TEST(EngineWorkerConstrained, PreemptionDoesNotFeedTheConstraintAgain) {
  // A pool so small that the choices preempt each other while they grow.
  FakeEngine::Options eo;
  eo.num_blocks = 12;
  eo.block_size = 4;
  auto s = start_worker(EngineWorkerOptions{}, eo);
  auto f = list_factory(14);
  Request r = make_request("tight", 6, 100, /*n=*/3);
  r.sampling.temperature = 1.0f;
  r.constraint = f;
  Collected c = collect(s.worker->submit(r).stream);
  EXPECT_TRUE(c.last.error.is_ok()) << c.last.error.to_string();
  for (int i = 0; i < 3; ++i) {
    expect_follows(c.tokens[static_cast<size_t>(i)], *f);
    EXPECT_EQ(c.finish[static_cast<size_t>(i)], FinishReason::kStop);
  }
  EXPECT_GT(s.worker->counters().preemptions, 0);
  EXPECT_TRUE(eventually([&] { return s.worker->counters().kv_blocks_used == 0; }));
}

TEST(EngineWorkerConstrained, MasksOverlapTheStepAndAreAwaitedBeforeSampling) {
  // Slow masks: the step starts before they are done, and the engine reads them only after
  // waiting; every token still follows the constraint.
  class SlowFactory final : public ConstraintFactory {
   public:
    explicit SlowFactory(std::shared_ptr<ListFactory> f) : f_(std::move(f)) {}
    std::unique_ptr<TokenConstraint> make() const override {
      struct Slow final : TokenConstraint {
        std::unique_ptr<TokenConstraint> inner;
        void fill_mask(std::span<uint32_t> w) override {
          std::this_thread::sleep_for(2ms);
          inner->fill_mask(w);
        }
        bool accept(int32_t t) override { return inner->accept(t); }
        bool complete() const override { return inner->complete(); }
      };
      auto s = std::make_unique<Slow>();
      s->inner = f_->make();
      return s;
    }
    std::shared_ptr<ListFactory> f_;
  };
  EngineWorkerOptions o;
  o.mask_threads = 2;
  auto s = start_worker(o);
  auto f = list_factory(6);
  Request r = make_request("slow", 6, 100, /*n=*/4);
  r.sampling.temperature = 1.0f;
  r.constraint = std::make_shared<SlowFactory>(f);
  Collected c = collect(s.worker->submit(r).stream);
  EXPECT_TRUE(c.last.error.is_ok()) << c.last.error.to_string();
  for (int i = 0; i < 4; ++i) expect_follows(c.tokens[static_cast<size_t>(i)], *f);
}

}  // namespace
}  // namespace kiln::serve
