// Drives a Scheduler against the FakeEngine one step at a time, the way the engine worker does,
// and records what every request produced. Shared by the scheduler tests.
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "kiln/serve/scheduler.h"
#include "unit/serve/fake_engine.h"

namespace kiln::serve::testing {

struct Arrival {
  std::string name;
  int32_t prompt_len = 4;
  int32_t max_tokens = 4;
  int32_t n = 1;
  int32_t priority = 0;
  int32_t family = -1;     // requests of one family share their first `shared` prompt tokens
  int32_t shared = 0;
  float temperature = 0.0f;
  uint64_t seed = 1;
  bool ignore_eos = false;
  std::vector<int32_t> stop_token_ids;
};

inline std::vector<int32_t> prompt_for(const Arrival& a) {
  std::vector<int32_t> p;
  uint64_t h = 1469598103934665603ull;
  for (char ch : a.name) h = (h ^ static_cast<unsigned char>(ch)) * 1099511628211ull;
  for (int32_t i = 0; i < a.prompt_len; ++i) {
    if (a.family >= 0 && i < a.shared) {
      p.push_back(10 + (a.family * 131 + i * 7) % 900);
    } else {
      h = h * 6364136223846793005ull + 1442695040888963407ull;
      p.push_back(10 + static_cast<int32_t>((h >> 33) % 900));
    }
  }
  return p;
}

struct Record {
  std::vector<std::vector<int32_t>> tokens;  // per choice
  std::vector<FinishReason> finish;          // per choice
  bool done = false;
  Status error;
  Usage usage;
};

class Harness {
 public:
  struct Config {
    int32_t num_blocks = 64;
    int32_t block_size = 4;
    int32_t max_batched_tokens = 100;
    int32_t max_seqs = 8;
    int32_t max_prefill_chunk = 0;
    bool prefix_cache = true;
    int64_t max_model_len = 4096;
  };

  explicit Harness(Config c) : engine_(engine_options(c)) {
    SchedulerOptions o;
    o.max_batched_tokens = c.max_batched_tokens;
    o.max_seqs = c.max_seqs;
    o.max_prefill_chunk = c.max_prefill_chunk;
    o.enable_prefix_cache = c.prefix_cache;
    o.eos_token_ids = engine_.config().eos_token_ids;
    o.max_model_len = engine_.max_model_len();
    o.vocab_size = engine_.config().vocab_size;
    o.kv = engine_.kv_geometry();
    auto s = Scheduler::create(o);
    EXPECT_TRUE(s.is_ok()) << s.status().to_string();
    sched_ = std::move(s).value();
  }

  FakeEngine& engine() { return engine_; }
  Scheduler& scheduler() { return *sched_; }
  const Record& record(const std::string& name) { return records_[name]; }
  uint64_t id_of(const std::string& name) { return ids_.at(name); }

  Status arrive(const Arrival& a) {
    Request r;
    r.id = a.name;
    r.prompt = prompt_for(a);
    r.n = a.n;
    r.max_tokens = a.max_tokens;
    r.priority = a.priority;
    r.ignore_eos = a.ignore_eos;
    r.stop_token_ids = a.stop_token_ids;
    r.sampling.temperature = a.temperature;
    const uint64_t id = next_id_++;
    Status st = sched_->add_request(id, std::move(r), a.seed);
    if (!st.is_ok()) return st;
    ids_[a.name] = id;
    names_[id] = a.name;
    Record& rec = records_[a.name];
    rec.tokens.assign(static_cast<size_t>(a.n), {});
    rec.finish.assign(static_cast<size_t>(a.n), FinishReason::kNone);
    return Status::ok();
  }

  void cancel(const std::string& name) { take(sched_->abort_request(ids_.at(name), FinishReason::kCancelled)); }

  // Runs one step; returns the batch as "name:num_new[s]" entries ("name.choice" for n > 1),
  // followed by " | preempted N" when it preempted.
  std::string step() {
    SchedulerOutput out = sched_->schedule();
    std::string desc;
    for (const ScheduledSequence& e : out.seqs) {
      const std::string& name = names_.at(e.seq->request->id);
      if (!desc.empty()) desc += ' ';
      desc += name;
      if (e.seq->request->seqs.size() > 1) desc += str_cat(".", e.seq->choice);
      desc += str_cat(":", e.num_new, e.samples ? "s" : "");
    }
    if (out.num_preempted > 0) desc += str_cat(" | preempted ", out.num_preempted);
    if (!out.empty()) {
      runtime::StepPlan plan = sched_->build_plan(out);
      auto result = engine_.step(plan);
      if (result.is_ok()) {
        auto events = sched_->apply_result(out, *result);
        EXPECT_TRUE(events.is_ok()) << events.status().to_string();
        if (events.is_ok()) {
          for (RequestEvents& ev : *events) take(std::move(ev));
        }
      } else {
        for (RequestEvents& ev : sched_->fail_step(out, result.status())) take(std::move(ev));
      }
    }
    Status inv = sched_->check_invariants();
    EXPECT_TRUE(inv.is_ok()) << inv.to_string();
    const auto& kv = sched_->kv();
    EXPECT_EQ(kv.num_free() + kv.num_used() + kv.num_cached(), kv.num_blocks());
    return desc;
  }

  // Steps until nothing is left (bounded); returns the number of steps taken.
  int run_to_completion(int max_steps = 100000) {
    int steps = 0;
    while (sched_->has_work() && steps < max_steps) {
      step();
      ++steps;
    }
    EXPECT_FALSE(sched_->has_work()) << "did not finish in " << max_steps << " steps";
    return steps;
  }

 private:
  static FakeEngine::Options engine_options(const Config& c) {
    FakeEngine::Options o;
    o.num_blocks = c.num_blocks;
    o.block_size = c.block_size;
    o.vocab_size = 1000;
    o.max_model_len = c.max_model_len;
    return o;
  }

  void take(RequestEvents ev) {
    auto it = names_.find(ev.request_id);
    if (it == names_.end()) return;
    Record& rec = records_[it->second];
    for (const ChoiceToken& t : ev.tokens) rec.tokens[static_cast<size_t>(t.choice)].push_back(t.sample.token);
    for (const auto& [choice, reason] : ev.finished) rec.finish[static_cast<size_t>(choice)] = reason;
    if (ev.done) {
      EXPECT_FALSE(rec.done) << it->second << " completed twice";
      rec.done = true;
      rec.usage = ev.usage;
      rec.error = ev.error;
    }
  }

  FakeEngine engine_;
  std::unique_ptr<Scheduler> sched_;
  uint64_t next_id_ = 1;
  std::map<std::string, uint64_t> ids_;
  std::map<uint64_t, std::string> names_;
  std::map<std::string, Record> records_;
};

}  // namespace kiln::serve::testing
