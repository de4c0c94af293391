// Table-driven tests of the pool's policy: scripted events (requests, leases released, loads and
// unloads that end, admin requests, rescans, the clock) and, after each, the actions the policy
// asks for and the state of every model. No threads, files or models: a model is a size.
#include "kiln/pool/pool_policy.h"

#include <gtest/gtest.h>

#include <cctype>
#include <sstream>

#include "kiln/core/str.h"

namespace kiln::pool {
namespace {

using namespace std::chrono_literals;

struct ModelSpec {
  ModelSpec(const char* i, int64_t b = 100, bool p = false) : id(i), bytes(b), pinned(p) {}  // NOLINT: tables
  ModelSpec(std::string i, int64_t b) : id(std::move(i)), bytes(b) {}
  std::string id;
  int64_t bytes = 100;  // the estimate; 0: config.json cannot be read
  bool pinned = false;
};

struct Config {
  int64_t budget = 250;
  int max_loaded = 0;
  std::optional<Millis> keep_alive;
  Millis backoff{10'000};
  Millis room_wait{60'000};
  std::vector<ModelSpec> models = {{"a"}, {"b"}, {"c"}};
};

struct StepCase {
  std::string event;
  std::string actions;  // the actions, "; "-separated (kChanged left out)
  std::string states;   // every model "id=state[/in_flight]" and "used=N"; empty: not checked
};

struct TableCase {
  std::string name;
  Config config;
  std::vector<StepCase> steps;
};

std::string tickets_text(const std::vector<Ticket>& t) {
  std::string s;
  for (Ticket k : t) s += str_cat(" #", k);
  return s;
}

std::string reason_text(PoolAction::Reason r) {
  switch (r) {
    case PoolAction::Reason::kEvicted: return "evicted";
    case PoolAction::Reason::kKeepAlive: return "keep_alive";
    case PoolAction::Reason::kAsked: return "asked";
    case PoolAction::Reason::kDropped: return "dropped";
    case PoolAction::Reason::kDiscarded: return "discarded";
    case PoolAction::Reason::kNone: break;
  }
  return "none";
}

// "refuse #2 INTERNAL" plus " retry 10" when the message ends in "(retry after 10 s)".
std::string status_text(const Status& s) {
  std::string out(status_code_name(s.code()));
  for (char& ch : out) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  const std::string& m = s.message();
  const auto at = m.rfind("(retry after ");
  if (at != std::string::npos) out += str_cat(" retry ", m.substr(at + 13, m.find(' ', at + 13) - at - 13));
  return out;
}

std::string action_text(const PoolAction& a) {
  using K = PoolAction::Kind;
  switch (a.kind) {
    case K::kPlan: return str_cat("plan ", a.id);
    case K::kLoad: return str_cat("load ", a.id);
    case K::kUnload: return str_cat("unload ", a.id, " (", reason_text(a.reason), ")");
    case K::kReady: return str_cat("ready ", a.id);
    case K::kGrant: return str_cat("grant ", a.id, tickets_text(a.tickets));
    case K::kRefuse: return str_cat("refuse", tickets_text(a.tickets), " ", status_text(a.status));
    case K::kFailed: return str_cat("failed ", a.id);
    case K::kUnloadAnswer:
      return str_cat("unloaded", tickets_text(a.tickets), a.status.is_ok() ? "" : " " + status_text(a.status));
    case K::kChanged: return str_cat("changed ", a.id);
  }
  return "?";
}

Plan plan_for(const ModelSpec& m) {
  Plan p;
  p.engine.max_model_len = 256;
  if (m.bytes > 0) {
    p.estimate = ModelMemory{m.bytes, 0, 0};
  } else {
    p.error = "config.json: no such file";
  }
  return p;
}

std::vector<std::pair<ModelEntry, Plan>> registry(const std::vector<ModelSpec>& models) {
  std::vector<std::pair<ModelEntry, Plan>> out;
  for (const auto& m : models) {
    ModelEntry e;
    e.id = m.id;
    e.dir = "/models/" + m.id;
    e.settings.pinned = m.pinned;
    out.emplace_back(e, plan_for(m));
  }
  return out;
}

// Drives a PoolPolicy from event lines:
//   acquire ID #T [ka=DURATION] | load ID #T [pin|unpin] | unload ID #T | release ID
//   progress ID PHASE FRACTION | loaded ID BYTES | failed ID | unloaded ID | planned ID BYTES|error
//   wait DURATION (the clock only) | tick DURATION (the clock, then a tick) | rescan ID[:BYTES]... | shutdown
class Harness {
 public:
  explicit Harness(const Config& c) : config_(c), policy_(options(c)) {
    policy_.registry_scanned(registry(c.models), now_);
  }

  PoolActions run(const std::string& line) {
    std::istringstream in(line);
    std::string verb, id;
    in >> verb >> id;
    auto ticket = [&] {
      std::string t;
      in >> t;
      return static_cast<Ticket>(std::stoull(t.substr(1)));
    };
    if (verb == "acquire") {
      const Ticket t = ticket();
      std::string ka;
      in >> ka;
      std::optional<Millis> keep;
      if (starts_with(ka, "ka=")) keep = parse_duration(ka.substr(3)).value();
      return policy_.acquire(id, t, keep, now_);
    }
    if (verb == "load") {
      const Ticket t = ticket();
      std::string pin;
      in >> pin;
      std::optional<bool> p;
      if (pin == "pin") p = true;
      if (pin == "unpin") p = false;
      return policy_.admin_load(id, t, p, now_);
    }
    if (verb == "unload") return policy_.admin_unload(id, ticket(), now_);
    if (verb == "release") return policy_.released(id, now_);
    if (verb == "progress") {
      std::string phase;
      double f = 0;
      in >> phase >> f;
      return policy_.load_progress(id, phase, f);
    }
    if (verb == "loaded") {
      int64_t bytes = 0;
      in >> bytes;
      runtime::MemoryUsage m;
      m.weights_bytes = bytes;
      return policy_.loaded(id, m, 256, 0.5, now_);
    }
    if (verb == "failed") return policy_.load_failed(id, data_loss("model.safetensors: truncated"), now_);
    if (verb == "unloaded") return policy_.unloaded(id, now_);
    if (verb == "planned") {
      std::string bytes;
      in >> bytes;
      return policy_.planned(id, plan_for({id, bytes == "error" ? 0 : std::stoll(bytes)}), now_);
    }
    if (verb == "wait" || verb == "tick") {
      now_ += parse_duration(id).value();
      return verb == "tick" ? policy_.tick(now_) : PoolActions{};
    }
    if (verb == "rescan") {
      std::vector<ModelSpec> models;
      for (std::string tok = id; !tok.empty(); tok.clear(), in >> tok) {
        const auto colon = tok.find(':');
        models.push_back({tok.substr(0, colon), colon == std::string::npos ? 100 : std::stoll(tok.substr(colon + 1))});
      }
      return policy_.registry_scanned(registry(models), now_);
    }
    if (verb == "shutdown") return policy_.shutdown();
    ADD_FAILURE() << "unknown event: " << line;
    return {};
  }

  std::string states() const {
    std::string s;
    const PoolStatus st = policy_.status(now_, 0);
    for (const ModelStatus& m : st.models) {
      std::string state(model_state_name(m.state));
      if (m.state == ModelState::kLoading) {
        state = m.loading_phase == "queued" ? "planning" : m.loading_phase == "waiting for memory" ? "waiting" : "loading";
      }
      s += str_cat(m.id, "=", state, m.in_flight > 0 ? str_cat("/", m.in_flight) : "", " ");
    }
    return s + str_cat("used=", st.used_bytes);
  }

  PoolPolicy& policy() { return policy_; }
  SteadyTime now() const { return now_; }

 private:
  static PolicyOptions options(const Config& c) {
    PolicyOptions o;
    o.memory_budget = c.budget;
    o.max_loaded_models = c.max_loaded;
    o.keep_alive = c.keep_alive;
    o.failure_backoff = c.backoff;
    o.max_failure_backoff = c.backoff * 4;
    o.room_wait = c.room_wait;
    return o;
  }

  Config config_;
  PoolPolicy policy_;
  SteadyTime now_{std::chrono::seconds(1000)};
};

std::string actions_text(const PoolActions& actions) {
  std::string s;
  for (const auto& a : actions) {
    if (a.kind == PoolAction::Kind::kChanged) continue;
    s += (s.empty() ? "" : "; ") + action_text(a);
  }
  return s;
}

Config with(std::function<void(Config&)> f) {
  Config c;
  f(c);
  return c;
}

std::vector<TableCase> table() {
  return {
      {"single flight: requests for a loading model wait on the one load", Config{},
       {{"acquire a #1", "load a", "a=loading b=unloaded c=unloaded used=100"},
        {"acquire a #2", "", "a=loading b=unloaded c=unloaded used=100"},
        {"progress a weights 0.5", "", ""},
        {"loaded a 90", "ready a; grant a #1 #2", "a=ready/2 b=unloaded c=unloaded used=90"},
        {"acquire a #3", "grant a #3", "a=ready/3 b=unloaded c=unloaded used=90"},
        {"acquire nope #4", "refuse #4 NOT_FOUND", ""}}},
      {"two models load at once when both fit", Config{},
       {{"acquire a #1", "load a", ""},
        {"acquire b #2", "load b", "a=loading b=loading c=unloaded used=200"},
        {"loaded b 100", "ready b; grant b #2", ""},
        {"loaded a 100", "ready a; grant a #1", "a=ready/1 b=ready/1 c=unloaded used=200"}}},
      {"the least recently used idle model is evicted, never one in use", Config{},
       {{"acquire a #1", "load a", ""},
        {"loaded a 100", "ready a; grant a #1", ""},
        {"wait 1s", "", ""},
        {"acquire b #2", "load b", ""},
        {"loaded b 100", "ready b; grant b #2", ""},
        {"release b", "", ""},
        {"wait 1s", "", ""},
        {"release a", "", "a=ready b=ready c=unloaded used=200"},
        // b was used before a: b goes.
        {"acquire c #3", "unload b (evicted)", "a=ready b=unloading c=waiting used=200"},
        {"acquire a #4", "grant a #4", ""},
        {"unloaded b", "load c", "a=ready/1 b=unloaded c=loading used=200"},
        {"loaded c 100", "ready c; grant c #3", ""},
        {"release c", "", ""},
        // a is in use: c goes although a was used less recently.
        {"acquire b #5", "unload c (evicted)", "a=ready/1 b=waiting c=unloading used=200"}}},
      {"a load waiting for busy models holds back neither a load that fits nor an unload",
       with([](Config& c) { c.models = {{"a"}, {"b"}, {"c"}, {"d", 50}}; }),
       {{"acquire a #1", "load a", ""},
        {"acquire b #2", "load b", ""},
        {"loaded a 100", "ready a; grant a #1", ""},
        {"loaded b 100", "ready b; grant b #2", ""},
        {"acquire c #3", "", "a=ready/1 b=ready/1 c=waiting d=unloaded used=200"},
        {"acquire d #4", "load d", "a=ready/1 b=ready/1 c=waiting d=loading used=250"},
        {"loaded d 50", "ready d; grant d #4", ""},
        {"unload d #5", "", ""},
        {"release d", "unload d (asked)", ""},
        {"unloaded d", "unloaded #5", "a=ready/1 b=ready/1 c=waiting d=unloaded used=200"},
        {"release b", "unload b (evicted)", ""},
        {"unloaded b", "load c", "a=ready/1 b=unloaded c=loading d=unloaded used=200"}}},
      {"only the oldest waiting load evicts, and what it frees is its own",
       with([](Config& c) { c.budget = 200; c.models = {{"a"}, {"b"}, {"c"}, {"d"}}; }),
       {{"acquire a #1", "load a", ""},
        {"acquire b #2", "load b", ""},
        {"loaded a 100", "ready a; grant a #1", ""},
        {"loaded b 100", "ready b; grant b #2", ""},
        {"acquire c #3", "", ""},
        {"acquire d #4", "", "a=ready/1 b=ready/1 c=waiting d=waiting used=200"},
        {"release a", "unload a (evicted)", ""},
        {"unloaded a", "load c", "a=unloaded b=ready/1 c=loading d=waiting used=200"},
        {"release b", "unload b (evicted)", ""},
        {"unloaded b", "load d", "a=unloaded b=unloaded c=loading d=loading used=200"}}},
      {"a load waits for room until room_wait, then answers 503",
       with([](Config& c) { c.room_wait = 10s; }),
       {{"acquire a #1", "load a", ""},
        {"acquire b #2", "load b", ""},
        {"loaded a 100", "ready a; grant a #1", ""},
        {"loaded b 100", "ready b; grant b #2", ""},
        {"acquire c #3", "", ""},
        {"tick 9s", "", "a=ready/1 b=ready/1 c=waiting used=200"},
        {"tick 1s", "refuse #3 UNAVAILABLE retry 5; failed c", "a=ready/1 b=ready/1 c=unloaded used=200"}}},
      {"--max-loaded-models caps the count, whatever the bytes",
       with([](Config& c) { c.budget = 1000; c.max_loaded = 1; }),
       {{"acquire a #1", "load a", ""},
        {"acquire b #2", "", "a=loading b=waiting c=unloaded used=100"},
        {"loaded a 100", "ready a; grant a #1", ""},
        {"release a", "unload a (evicted)", ""},
        {"unloaded a", "load b", "a=unloaded b=loading c=unloaded used=100"}}},
      {"a model that can never fit is refused at once",
       with([](Config& c) { c.models = {{"a", 100, true}, {"b", 200}, {"huge", 300}}; }),
       {{"acquire huge #1", "refuse #1 RESOURCE_EXHAUSTED", "a=unloaded b=unloaded huge=unloaded used=0"},
        {"acquire a #2", "load a", ""},
        {"loaded a 100", "ready a; grant a #2", ""},
        // 200 fits the budget but not what the pinned model leaves of it.
        {"acquire b #3", "refuse #3 RESOURCE_EXHAUSTED", "a=ready/1 b=unloaded huge=unloaded used=100"}}},
      {"pinned models are never evicted; when only pinned ones hold the room, the load fails",
       with([](Config& c) { c.budget = 200; }),
       {{"load a #1 pin", "load a", ""},
        {"loaded a 100", "ready a; grant a #1", ""},
        {"release a", "", ""},
        {"acquire b #2", "load b", ""},
        {"loaded b 100", "ready b; grant b #2", ""},
        {"release b", "", ""},
        {"acquire c #3", "unload b (evicted)", ""},
        {"unloaded b", "load c", "a=ready b=unloaded c=loading used=200"},
        {"load b #4 pin", "", ""},
        // c holds the room while loading; once it is in use and a is pinned, b waits...
        {"loaded c 100", "ready c; grant c #3", ""},
        {"release c", "unload c (evicted)", ""},
        {"unloaded c", "load b", "a=ready b=loading c=unloaded used=200"},
        {"loaded b 100", "ready b; grant b #4", ""},
        {"release b", "", ""},
        // ...and now every loaded model is pinned.
        {"acquire c #5", "refuse #5 RESOURCE_EXHAUSTED", "a=ready b=ready c=unloaded used=200"},
        {"load b #6 unpin", "grant b #6", ""},
        {"release b", "", ""},
        {"acquire c #7", "unload b (evicted)", ""}}},
      {"keep-alive: the server's, a request's, zero and forever",
       with([](Config& c) { c.keep_alive = 30s; }),
       {{"acquire a #1", "load a", ""},
        {"loaded a 100", "ready a; grant a #1", ""},
        {"tick 60s", "", "a=ready/1 b=unloaded c=unloaded used=100"},
        {"release a", "", ""},
        {"tick 29s", "", ""},
        {"tick 1s", "unload a (keep_alive)", ""},
        {"unloaded a", "", "a=unloaded b=unloaded c=unloaded used=0"},
        {"acquire b #2 ka=5s", "load b", ""},
        {"loaded b 100", "ready b; grant b #2", ""},
        {"release b", "", ""},
        {"tick 5s", "unload b (keep_alive)", ""},
        {"acquire c #3 ka=0", "load c", ""},
        {"loaded c 100", "ready c; grant c #3", ""},
        {"release c", "unload c (keep_alive)", ""},
        {"unloaded b", "", ""},
        {"unloaded c", "", ""},
        {"acquire a #4 ka=-1", "load a", ""},
        {"loaded a 100", "ready a; grant a #4", ""},
        {"release a", "", ""},
        {"tick 100h", "", "a=ready b=unloaded c=unloaded used=100"}}},
      {"a failed load backs off, doubling, and an admin load retries at once", Config{},
       {{"acquire a #1", "load a", ""},
        {"acquire a #2", "", ""},
        {"failed a", "failed a; refuse #1 #2 INTERNAL retry 10", "a=failed b=unloaded c=unloaded used=0"},
        {"acquire a #3", "refuse #3 INTERNAL retry 10", ""},
        {"wait 4s", "", ""},
        {"acquire a #4", "refuse #4 INTERNAL retry 6", ""},
        {"acquire b #5", "load b", ""},
        {"wait 6s", "", ""},
        {"acquire a #6", "load a", ""},
        {"failed a", "failed a; refuse #6 INTERNAL retry 20", ""},
        {"load a #7", "load a", ""},
        {"loaded a 100", "ready a; grant a #7", "a=ready/1 b=loading c=unloaded used=200"}}},
      {"a model that takes more than its estimate waits for an eviction, or is discarded",
       with([](Config& c) { c.budget = 300; }),
       {{"acquire a #1", "load a", ""},
        {"loaded a 100", "ready a; grant a #1", ""},
        {"release a", "", ""},
        {"acquire b #2", "load b", ""},
        {"loaded b 150", "ready b; grant b #2", "a=ready b=ready/1 c=unloaded used=250"},
        {"acquire c #3", "unload a (evicted)", ""},
        {"unloaded a", "load c", ""},
        {"loaded c 250", "unload c (discarded)", "a=unloaded b=ready/1 c=unloading used=250"},
        {"unloaded c", "failed c; refuse #3 RESOURCE_EXHAUSTED retry 10", "a=unloaded b=ready/1 c=failed used=150"},
        {"acquire a #4", "load a", ""},
        {"release b", "", ""},
        {"loaded a 200", "unload b (evicted)", "a=waiting b=unloading c=failed used=250"},
        {"unloaded b", "ready a; grant a #4", "a=ready/1 b=unloaded c=failed used=200"}}},
      {"an admin unload waits for the requests in flight; a request meanwhile loads it again", Config{},
       {{"acquire a #1", "load a", ""},
        {"unload a #2", "unloaded #2 FAILED_PRECONDITION", ""},
        {"loaded a 100", "ready a; grant a #1", ""},
        {"unload a #3", "", "a=ready/1 b=unloaded c=unloaded used=100"},
        {"acquire a #4", "", ""},
        {"release a", "unload a (asked)", ""},
        {"unloaded a", "unloaded #3; load a", "a=loading b=unloaded c=unloaded used=100"},
        {"unload b #5", "unloaded #5", ""},
        {"unload nope #6", "unloaded #6 NOT_FOUND", ""}}},
      {"a rescan adds models and unloads dropped ones once idle", Config{},
       {{"acquire a #1", "load a", ""},
        {"loaded a 100", "ready a; grant a #1", ""},
        {"rescan b d:50", "", "b=unloaded d=unloaded a=ready/1 used=100"},
        {"acquire a #2", "refuse #2 NOT_FOUND", ""},
        {"acquire d #3", "load d", ""},
        {"release a", "unload a (dropped)", ""},
        {"unloaded a", "", "b=unloaded d=loading used=50"}}},
      {"an unreadable config.json fails with a back-off and is read again on retry",
       with([](Config& c) { c.models = {{"x", 0}, {"a"}}; }),
       {{"acquire x #1", "plan x", "x=planning a=unloaded used=0"},
        {"planned x error", "failed x; refuse #1 INTERNAL retry 10", "x=failed a=unloaded used=0"},
        {"wait 10s", "", ""},
        {"acquire x #2", "plan x", ""},
        {"planned x 300", "refuse #2 RESOURCE_EXHAUSTED", "x=unloaded a=unloaded used=0"},
        {"acquire x #3", "refuse #3 RESOURCE_EXHAUSTED", ""}}},
      {"shutdown answers every waiting request and starts nothing", Config{},
       {{"acquire a #1", "load a", ""},
        {"loaded a 100", "ready a; grant a #1", ""},
        {"unload a #2", "", ""},
        {"acquire b #3", "load b", ""},
        {"shutdown", "unloaded #2 UNAVAILABLE; refuse #3 UNAVAILABLE", ""},
        {"release a", "", ""},
        {"acquire c #4", "refuse #4 UNAVAILABLE", ""}}},
  };
}

TEST(PoolPolicy, TableOfEventsAndDecisions) {
  for (const TableCase& tc : table()) {
    SCOPED_TRACE(tc.name);
    Harness h(tc.config);
    for (size_t i = 0; i < tc.steps.size(); ++i) {
      const StepCase& step = tc.steps[i];
      SCOPED_TRACE(str_cat("step ", i + 1, ": ", step.event));
      EXPECT_EQ(actions_text(h.run(step.event)), step.actions);
      if (!step.states.empty()) {
        EXPECT_EQ(h.states(), step.states);
      }
      // Invariants after every event: the ledger never exceeds the budget, and it is the sum of the parts.
      const PoolStatus st = h.policy().status(h.now(), 0);
      int64_t sum = 0;
      for (const auto& m : st.models) sum += m.memory_bytes;
      EXPECT_EQ(sum, st.used_bytes);
      EXPECT_LE(st.used_bytes, tc.config.budget);
      if (tc.config.max_loaded > 0) {
        EXPECT_LE(st.loaded, tc.config.max_loaded);
      }
    }
  }
}

TEST(PoolPolicy, StatusReportsProgressKeepAliveAndBackOff) {
  Harness h(with([](Config& c) { c.keep_alive = 30s; }));
  h.run("acquire a #1");
  h.run("progress a weights 0.5");
  auto a = h.policy().describe("a", h.now(), 5000);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->state, ModelState::kLoading);
  EXPECT_EQ(a->loading_phase, "weights");
  EXPECT_DOUBLE_EQ(a->loading_progress, 0.05 + 0.95 * 0.5);
  EXPECT_EQ(a->memory_bytes, 100);
  const int64_t rev = a->revision;
  h.run("loaded a 90");
  a = h.policy().describe("a", h.now(), 5000);
  EXPECT_GT(a->revision, rev);
  EXPECT_EQ(a->weights_bytes, 90);
  EXPECT_EQ(a->loads, 1);
  EXPECT_EQ(a->in_flight, 1);
  EXPECT_EQ(a->last_used, 5000);
  h.run("release a");
  h.run("wait 10s");
  a = h.policy().describe("a", h.now(), 5010);
  EXPECT_DOUBLE_EQ(a->idle_unload_in_seconds, 20.0);
  EXPECT_EQ(a->last_used, 5000);
  ASSERT_TRUE(a->keep_alive);
  EXPECT_EQ(*a->keep_alive, 30s);

  h.run("acquire b #2");
  h.run("failed b");
  auto b = h.policy().describe("b", h.now(), 0);
  EXPECT_EQ(b->state, ModelState::kFailed);
  EXPECT_NE(b->error.find("`b` could not be loaded: model.safetensors: truncated"), std::string::npos) << b->error;
  EXPECT_DOUBLE_EQ(b->retry_in_seconds, 10.0);
  EXPECT_EQ(b->failures, 1);
  EXPECT_EQ(b->memory_bytes, 0);
  const auto list = h.policy().list();
  ASSERT_EQ(list.size(), 3u);
  EXPECT_TRUE(list[0].loaded);
  EXPECT_FALSE(list[1].loaded);
  EXPECT_EQ(list[2].max_model_len, 256);
}

TEST(PoolPolicy, RefusalsNameTheModelTheSizesAndTheCause) {
  Harness h(with([](Config& c) { c.models = {{"a"}, {"huge", 300}}; }));
  const PoolActions never = h.run("acquire huge #1");
  ASSERT_EQ(never.size(), 1u);
  const std::string& m = never[0].status.message();
  EXPECT_NE(m.find("`huge` needs 300 B"), std::string::npos) << m;
  EXPECT_NE(m.find("memory budget is 250 B"), std::string::npos) << m;
  h.run("acquire a #2");
  const PoolActions failed = h.run("failed a");
  ASSERT_GE(failed.size(), 2u);
  EXPECT_EQ(failed[1].status.message(),
            "The model `a` could not be loaded: model.safetensors: truncated (retry after 10 s)");
  EXPECT_EQ(failed[1].status.code(), StatusCode::kInternal);
}

}  // namespace
}  // namespace kiln::pool
