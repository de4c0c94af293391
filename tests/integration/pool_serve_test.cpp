// `kiln serve` with a models directory: the real binary on 127.0.0.1, three tiny models under a
// memory budget that holds two, a corrupt one, one too large for the budget, and "slow", whose
// tokenizer.json is a FIFO: its load stops in the "tokenizer" phase until the test writes the
// file, so a test holds the real server's loader for as long as it likes, without timing. Many
// clients alternate between the models; the admin API is sampled throughout to check the budget.
#include <gtest/gtest.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "integration/server_process.h"
#include "kiln/core/file.h"
#include "kiln/core/str.h"
#include "kiln/pool/multi_model_pool.h"
#include "unit/http/raw_client.h"
#include "unit/pool/pool_test_util.h"

namespace kiln {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::http_request;
using testing::RawClient;
using testing::RawResponse;

constexpr const char* kAdminKey = "admin-secret";

class PoolServeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = new fs::path(fs::temp_directory_path() / str_cat("kiln-pool-serve-", getpid()));
    fs::remove_all(*root_);
    const fs::path models = *root_ / "models";
    pool::testing::make_tiny_model(models / "alpha", 1);
    pool::testing::make_tiny_model(models / "beta", 2);
    pool::testing::make_tiny_model(models / "gamma", 3);
    pool::testing::make_tiny_model(models / "huge", 4, /*hidden=*/512);
    pool::testing::make_tiny_model(models / "slow", 5);
    slow_tokenizer_ = new std::string(read_file(models / "slow" / "tokenizer.json").value());
    fifo_ = new fs::path(models / "slow" / "tokenizer.json");
    fs::remove(*fifo_);
    ASSERT_EQ(mkfifo(fifo_->c_str(), 0644), 0);
    fs::create_directories(models / "broken");
    for (const char* f : {"config.json", "tokenizer.json", "tokenizer_config.json"}) {
      fs::copy_file(models / "alpha" / f, models / "broken" / f);
    }
    // A header length of 64 bytes in a file of 10.
    ASSERT_TRUE(write_file_atomic(models / "broken" / "model.safetensors", std::string("\x40\0\0\0\0\0\0\0{}", 10)).is_ok());

    // The budget: two and a half of the small models, as the server will estimate them.
    pool::PoolOptions po;
    po.defaults.engine.max_model_len = 256;
    po.defaults.engine.max_seqs = 4;
    po.defaults.engine.max_batched_tokens = 256;
    po.defaults.engine.kv_cache_bytes = 512 << 10;
    po.memory_budget = int64_t{1} << 40;
    pool::ModelEntry e;
    e.id = "alpha";
    e.dir = models / "alpha";
    pool::Plan plan = pool::plan_model(e, po);
    ASSERT_TRUE(plan.estimate.has_value()) << plan.error;
    one_model_ = plan.estimate->total();
    budget_ = one_model_ * 5 / 2;

    log_ = new fs::path(*root_ / "serve.log");
    pid_ = fork();
    if (pid_ == 0) {
      // A test killed midway (a ctest timeout) must not leave its server behind, perhaps with a
      // load held at the FIFO that SIGTERM's drain would wait on forever.
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      const std::string budget = std::to_string(budget_);
      const std::string dir = models.string();
      setenv("KILN_HOME", (*root_ / "home").c_str(), 1);
      setenv("HF_HUB_CACHE", (*root_ / "no-hub").c_str(), 1);
      int fd = ::open(log_->c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(fd, 1);
      dup2(fd, 2);
      execl(KILN_BINARY, KILN_BINARY, "serve", "--host", "127.0.0.1", "--port", "0", "--models-dir", dir.c_str(),
            "--memory-budget", budget.c_str(), "--max-model-len", "256", "--max-seqs", "4", "--max-batched-tokens",
            "256", "--kv-cache-memory", "512KiB", "--engine-threads", "1", "--admin-key", kAdminKey,
            "--sse-keepalive", "0.05", "--no-access-log", static_cast<char*>(nullptr));
      _exit(127);
    }
    // The port is in the "serving ... on http://127.0.0.1:PORT" line.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    std::regex re("on http://127\\.0\\.0\\.1:([0-9]+)");
    while (std::chrono::steady_clock::now() < deadline && port_ == 0) {
      auto text = read_file(*log_);
      std::smatch m;
      if (text.is_ok() && std::regex_search(*text, m, re)) port_ = std::stoi(m[1]);
      else std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ASSERT_GT(port_, 0) << "kiln serve did not start: " << read_file(*log_).value();
  }

  static void TearDownTestSuite() {
    // A load still held at the FIFO gets an empty file (and fails) rather than holding up the exit.
    if (fifo_ != nullptr) {
      int fd = ::open(fifo_->c_str(), O_WRONLY | O_NONBLOCK);
      if (fd >= 0) ::close(fd);
    }
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      int status = 0;
      waitpid(pid_, &status, 0);
    }
    std::error_code ec;
    if (root_ != nullptr) fs::remove_all(*root_, ec);
    delete root_;
    delete log_;
    delete fifo_;
    delete slow_tokenizer_;
  }

  // Writes `content` as slow's tokenizer.json to the load waiting at the FIFO (waiting for that
  // load to open it first): this is what lets a held load go on.
  static bool feed_slow(const std::string& content) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    int fd = -1;
    while ((fd = ::open(fifo_->c_str(), O_WRONLY | O_NONBLOCK)) < 0) {
      if (errno != ENXIO || std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    size_t off = 0;
    while (off < content.size()) {
      const ssize_t n = ::write(fd, content.data() + off, content.size() - off);
      if (n <= 0) break;
      off += static_cast<size_t>(n);
    }
    ::close(fd);
    return off == content.size();
  }

  // Reads a streamed response until `needle` has arrived; false when the stream ends or stalls first.
  static bool read_until(RawClient& c, std::string* got, const std::string& needle, int timeout_ms = 60000) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (got->find(needle) == std::string::npos) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      auto more = c.read_some(100);
      if (!more) return got->find(needle) != std::string::npos;
      *got += *more;
    }
    return true;
  }

  // The JSON of every `data:` event of a stream's raw bytes ([DONE] left out).
  static std::vector<json> data_events(const std::string& raw) {
    std::vector<json> out;
    size_t at = 0;
    while ((at = raw.find("data: ", at)) != std::string::npos) {
      const size_t end = raw.find('\n', at);
      std::string line = raw.substr(at + 6, end == std::string::npos ? std::string::npos : end - at - 6);
      at = end;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line == "[DONE]") continue;
      out.push_back(json::parse(line, nullptr, false));
    }
    return out;
  }

  static std::string admin_header() { return str_cat("Authorization: Bearer ", kAdminKey, "\r\n"); }

  static RawResponse call(const std::string& method, const std::string& path, const std::string& body = "",
                          const std::string& headers = "", int timeout_ms = 60000) {
    RawClient c(port_);
    EXPECT_TRUE(c.connected());
    c.send(http_request(method, path, body, headers));
    auto r = c.read_response(timeout_ms);
    EXPECT_TRUE(r.has_value()) << method << " " << path;
    return r.value_or(RawResponse{});
  }
  static RawResponse admin(const std::string& method, const std::string& path, const std::string& body = "") {
    return call(method, path, body, admin_header());
  }
  static RawResponse complete(const std::string& model, int max_tokens, const std::string& extra = "") {
    return call("POST", "/v1/completions",
                str_cat(R"({"model":")", model, R"(","prompt":[1,17,42,99],"max_tokens":)", max_tokens,
                        R"(,"ignore_eos":true)", extra, "}"));
  }
  static json admin_models() {
    RawResponse r = admin("GET", "/v1/admin/models");
    EXPECT_EQ(r.status, 200) << r.body;
    json j = json::parse(r.body, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return json{{"data", json::array()}, {"used_bytes", 0}};
    return j;
  }
  static std::string state(const std::string& id) {
    const json models = admin_models();
    for (const auto& m : models["data"]) {
      if (m["id"] == id) return m["state"].get<std::string>();
    }
    return "missing";
  }
  // A whole streamed completion: every event parses, none is an error event, the last chunk says
  // "length" (max_tokens reached), and the stream ends with [DONE]. (Matching text is not enough: a random
  // model can stream the token "error".)
  static bool streamed_whole(const std::string& body) {
    bool length = false, done = false;
    size_t at = 0;
    while ((at = body.find("data: ", at)) != std::string::npos) {
      const size_t end = body.find("\n", at);
      const std::string data = body.substr(at + 6, end == std::string::npos ? std::string::npos : end - at - 6);
      at = end;
      if (data == "[DONE]") {
        done = true;
        break;
      }
      const json e = json::parse(data, nullptr, false);
      if (e.is_discarded() || e.contains("error") || !e.contains("choices")) return false;
      const json& finish = e["choices"][0]["finish_reason"];
      if (!finish.is_null()) length = finish == "length";
    }
    return done && length;
  }
  template <typename Pred>
  static bool eventually(Pred pred, double seconds = 30) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    while (std::chrono::steady_clock::now() < deadline) {
      if (pred()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return pred();
  }

  static fs::path* root_;
  static fs::path* log_;
  static fs::path* fifo_;
  static std::string* slow_tokenizer_;
  static pid_t pid_;
  static int port_;
  static int64_t one_model_, budget_;
};

fs::path* PoolServeTest::root_ = nullptr;
fs::path* PoolServeTest::log_ = nullptr;
fs::path* PoolServeTest::fifo_ = nullptr;
std::string* PoolServeTest::slow_tokenizer_ = nullptr;
pid_t PoolServeTest::pid_ = 0;
int PoolServeTest::port_ = 0;
int64_t PoolServeTest::one_model_ = 0;
int64_t PoolServeTest::budget_ = 0;

// The tests share one server and run in order (ctest runs each alone, on a server of its own:
// each test must pass both ways).

TEST_F(PoolServeTest, T1_HealthAndModelListLoadNothing) {
  for (int i = 0; i < 3; ++i) {
    RawResponse h = call("GET", "/health");
    ASSERT_EQ(h.status, 200) << h.body;
    json j = json::parse(h.body);
    EXPECT_EQ(j["status"], "ok");
    EXPECT_EQ(j["pool"]["loaded"], 0);
    EXPECT_EQ(j["pool"]["servable"], 6);
    EXPECT_EQ(j["pool"]["budget_bytes"], budget_);
    RawResponse m = call("GET", "/v1/models");
    ASSERT_EQ(m.status, 200);
    json list = json::parse(m.body);
    ASSERT_EQ(list["data"].size(), 6u);
    for (const auto& e : list["data"]) EXPECT_FALSE(e["loaded"].get<bool>()) << e.dump();
  }
  EXPECT_EQ(admin_models()["used_bytes"], 0);
}

TEST_F(PoolServeTest, T2_AdminApiNeedsTheAdminKey) {
  EXPECT_EQ(call("GET", "/v1/admin/models").status, 401);
  EXPECT_EQ(call("GET", "/v1/admin/models", "", "Authorization: Bearer wrong\r\n").status, 401);
  RawResponse r = admin("GET", "/v1/admin/models/alpha");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json::parse(r.body)["state"], "unloaded");
  EXPECT_EQ(admin("GET", "/v1/admin/models/nope").status, 404);
  EXPECT_EQ(admin("POST", "/v1/admin/models/alpha/explode").status, 404);
}

TEST_F(PoolServeTest, T3_TooLargeModelGets503AtOnce) {
  const auto t0 = std::chrono::steady_clock::now();
  RawResponse r = complete("huge", 2);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_LT(s, 2.0);
  const std::string msg = json::parse(r.body)["error"]["message"];
  EXPECT_NE(msg.find("`huge` needs"), std::string::npos) << msg;
  EXPECT_NE(msg.find(format_bytes(double(budget_))), std::string::npos) << msg;
  EXPECT_EQ(state("huge"), "unloaded");
}

// `kiln serve --model DIR` whose model can never fit stops at once and says why (sizes and budget).
TEST_F(PoolServeTest, T3b_ServeOfAModelThatCannotFitSaysWhy) {
  const fs::path log = *root_ / "never-fits.log";
  testing::ServerProcess server;
  ASSERT_FALSE(server.start(KILN_BINARY, {"--model", (*root_ / "models" / "huge").string(), "--memory-budget", "1MiB"},
                            log.string()));
  const std::string text = read_file(log).value();
  EXPECT_NE(text.find("The model `huge` needs"), std::string::npos) << text;
  EXPECT_NE(text.find("can never be loaded"), std::string::npos) << text;
}

TEST_F(PoolServeTest, T4_CorruptModelFailsWhileOthersServe) {
  RawResponse r = complete("broken", 2);
  EXPECT_EQ(r.status, 500) << r.body;
  const std::string msg = json::parse(r.body)["error"]["message"];
  EXPECT_NE(msg.find("`broken` could not be loaded"), std::string::npos) << msg;
  EXPECT_NE(msg.find("safetensors"), std::string::npos) << msg;
  EXPECT_FALSE(r.header("retry-after").empty());
  RawResponse again = complete("broken", 2);
  EXPECT_EQ(again.status, 500);
  RawResponse ok = complete("alpha", 3);
  ASSERT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(json::parse(ok.body)["usage"]["completion_tokens"], 3);
  json m = admin_models();
  for (const auto& e : m["data"]) {
    if (e["id"] == "broken") {
      EXPECT_EQ(e["state"], "failed");
      EXPECT_EQ(e["failures"], 1);  // the second request did not retry within the back-off
      EXPECT_NE(e["error"].get<std::string>().find("could not be loaded"), std::string::npos);
    }
  }
}

TEST_F(PoolServeTest, T5_ManyClientsAlternateInsideTheBudget) {
  std::atomic<bool> done{false};
  std::atomic<int64_t> max_used{0};
  std::atomic<int> samples{0}, over{0};
  std::thread sampler([&] {
    while (!done) {
      json m = admin_models();
      int64_t sum = 0;
      for (const auto& e : m["data"]) sum += e["memory_bytes"].get<int64_t>();
      if (sum > budget_ || m["used_bytes"].get<int64_t>() > budget_) over++;
      int64_t prev = max_used.load();
      while (sum > prev && !max_used.compare_exchange_weak(prev, sum)) {}
      samples++;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  });
  const char* ids[] = {"alpha", "beta", "gamma"};
  std::atomic<int> ok{0};
  std::vector<std::string> failures;
  std::mutex mu;
  std::vector<std::thread> clients;
  for (int c = 0; c < 10; ++c) {
    clients.emplace_back([&, c] {
      for (int r = 0; r < 6; ++r) {
        const std::string id = ids[(c + r) % 3];
        const bool stream = (c + r) % 2 == 0;
        RawResponse resp = complete(id, 4, stream ? R"(,"stream":true)" : "");
        const bool good = resp.status == 200 && (stream ? streamed_whole(resp.body)
                                                        : resp.body.find("\"completion_tokens\":4") != std::string::npos);
        if (good) {
          ok++;
        } else {
          std::lock_guard<std::mutex> lock(mu);
          failures.push_back(str_cat(id, ": ", resp.status, " ", resp.body));
        }
      }
    });
  }
  for (auto& t : clients) t.join();
  done = true;
  sampler.join();
  EXPECT_EQ(ok.load(), 60);
  for (const auto& f : failures) ADD_FAILURE() << f;
  EXPECT_EQ(over.load(), 0);
  EXPECT_GT(samples.load(), 5);
  EXPECT_LE(max_used.load(), budget_);
  int64_t evictions = 0;
  const json models = admin_models();
  for (const auto& e : models["data"]) evictions += e["evictions"].get<int64_t>();
  EXPECT_GT(evictions, 0);
}

TEST_F(PoolServeTest, T6_PinnedModelStaysAndUnloadFrees) {
  RawResponse r = admin("POST", "/v1/admin/models/alpha/load", R"({"pinned": true})");
  ASSERT_EQ(r.status, 200) << r.body;
  json j = json::parse(r.body);
  EXPECT_EQ(j["state"], "ready");
  EXPECT_TRUE(j["pinned"].get<bool>());
  for (int i = 0; i < 2; ++i) {
    for (const char* id : {"beta", "gamma"}) {
      ASSERT_EQ(complete(id, 2).status, 200);
      EXPECT_EQ(state("alpha"), "ready");
    }
  }
  RawResponse u = admin("POST", "/v1/admin/models/gamma/unload");
  ASSERT_EQ(u.status, 200) << u.body;
  EXPECT_EQ(json::parse(u.body)["state"], "unloaded");
  EXPECT_EQ(state("gamma"), "unloaded");
}

TEST_F(PoolServeTest, T7_StreamWaitingForALoadGetsKeepAlives) {
  ASSERT_EQ(state("slow"), "unloaded");
  RawClient c(port_);
  ASSERT_TRUE(c.connected());
  c.send(http_request("POST", "/v1/completions",
                      R"({"model":"slow","prompt":[1,17,42,99],"max_tokens":3,"ignore_eos":true,"stream":true})"));
  // The load is held at the FIFO until the keep-alive has been seen.
  std::string got;
  ASSERT_TRUE(read_until(c, &got, ": loading model")) << got;
  EXPECT_EQ(got.rfind("HTTP/1.1 200", 0), 0u) << got.substr(0, 200);
  EXPECT_EQ(got.find("data: "), std::string::npos) << got;
  EXPECT_EQ(state("slow"), "loading");
  // Meanwhile the pool still rescans and serves the loaded models.
  RawResponse rescan = admin("POST", "/v1/admin/models/rescan");
  EXPECT_EQ(rescan.status, 200) << rescan.body;
  EXPECT_EQ(complete("alpha", 2).status, 200);
  ASSERT_TRUE(feed_slow(*slow_tokenizer_));
  ASSERT_TRUE(read_until(c, &got, "data: [DONE]")) << got;
  const auto events = data_events(got);
  ASSERT_FALSE(events.empty());
  for (const auto& e : events) EXPECT_TRUE(e.contains("choices")) << e.dump();
  EXPECT_EQ(events.back()["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(state("slow"), "ready");
}

TEST_F(PoolServeTest, T8_KeepAliveZeroUnloadsAfterTheRequest) {
  ASSERT_EQ(complete("beta", 2, R"(,"keep_alive":0)").status, 200);
  EXPECT_TRUE(eventually([] { return state("beta") == "unloaded"; }));
  RawResponse bad = complete("beta", 2, R"(,"keep_alive":"soon")");
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.body.find("keep_alive"), std::string::npos);
}

TEST_F(PoolServeTest, T9_RescanAndSighupFindNewModels) {
  pool::testing::make_tiny_model(*root_ / "models" / "delta", 9);
  RawResponse r = admin("POST", "/v1/admin/models/rescan");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json::parse(r.body)["models"], 7);
  EXPECT_NE(call("GET", "/v1/models").body.find("\"delta\""), std::string::npos);
  pool::testing::make_tiny_model(*root_ / "models" / "org" / "epsilon", 10);
  kill(pid_, SIGHUP);
  EXPECT_TRUE(eventually([] { return call("GET", "/v1/models").body.find("\"org/epsilon\"") != std::string::npos; }));
  RawResponse ok = complete("org/epsilon", 2);
  EXPECT_EQ(ok.status, 200) << ok.body;
}

TEST_F(PoolServeTest, T10_ProgressStreamFollowsALoadToItsEnd) {
  EXPECT_EQ(call("GET", "/v1/admin/models/slow/progress").status, 401);
  EXPECT_EQ(admin("GET", "/v1/admin/models/nope/progress").status, 404);
  // A model that is not loading: its state, and the end.
  ASSERT_EQ(admin("POST", "/v1/admin/models/alpha/load").status, 200);
  RawResponse ready = admin("GET", "/v1/admin/models/alpha/progress");
  ASSERT_EQ(ready.status, 200) << ready.body;
  EXPECT_EQ(ready.header("content-type").rfind("text/event-stream", 0), 0u);
  auto once = data_events(ready.body);
  ASSERT_EQ(once.size(), 1u) << ready.body;
  EXPECT_EQ(once[0]["id"], "alpha");
  EXPECT_EQ(once[0]["state"], "ready");
  EXPECT_NE(ready.body.find("data: [DONE]"), std::string::npos);

  // slow, loaded again and held at the FIFO: the stream shows each phase, then ready.
  ASSERT_EQ(admin("POST", "/v1/admin/models/slow/unload").status, 200);
  RawResponse load_answer;
  std::thread load([&] { load_answer = admin("POST", "/v1/admin/models/slow/load"); });
  ASSERT_TRUE(eventually([] { return state("slow") == "loading"; }));
  RawClient p(port_);
  ASSERT_TRUE(p.connected());
  p.send(http_request("GET", "/v1/admin/models/slow/progress", "", admin_header()));
  std::string got;
  EXPECT_TRUE(read_until(p, &got, R"("phase":"tokenizer")")) << got;
  ASSERT_TRUE(feed_slow(*slow_tokenizer_));
  EXPECT_TRUE(read_until(p, &got, "data: [DONE]")) << got;
  load.join();
  EXPECT_EQ(load_answer.status, 200) << load_answer.body;
  auto events = data_events(got);
  ASSERT_GE(events.size(), 3u) << got;
  double fraction = 0;
  std::vector<std::string> phases;
  for (size_t i = 0; i + 1 < events.size(); ++i) {
    EXPECT_EQ(events[i]["state"], "loading") << events[i].dump();
    EXPECT_GE(events[i]["fraction"].get<double>(), fraction);
    fraction = events[i]["fraction"].get<double>();
    if (phases.empty() || phases.back() != events[i]["phase"]) phases.push_back(events[i]["phase"]);
  }
  // The stream may open before the loader has begun ("loading", room just reserved); from the
  // loader on, every phase shows, in order.
  while (!phases.empty() && phases.front() != "tokenizer") phases.erase(phases.begin());
  EXPECT_EQ(phases, (std::vector<std::string>{"tokenizer", "weights", "worker"})) << got;
  EXPECT_EQ(events.back()["state"], "ready");
  EXPECT_TRUE(events.back().contains("load_seconds"));

  // A load that fails: the stream ends with the failure.
  ASSERT_EQ(admin("POST", "/v1/admin/models/slow/unload").status, 200);
  std::thread failing([&] { load_answer = admin("POST", "/v1/admin/models/slow/load"); });
  ASSERT_TRUE(eventually([] { return state("slow") == "loading"; }));
  RawClient f(port_);
  f.send(http_request("GET", "/v1/admin/models/slow/progress", "", admin_header()));
  got.clear();
  EXPECT_TRUE(read_until(f, &got, R"("phase":"tokenizer")")) << got;
  ASSERT_TRUE(feed_slow("{ not a tokenizer"));
  EXPECT_TRUE(read_until(f, &got, "data: [DONE]")) << got;
  failing.join();
  EXPECT_EQ(load_answer.status, 500) << load_answer.body;
  events = data_events(got);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back()["state"], "failed");
  EXPECT_NE(events.back()["error"].get<std::string>().find("`slow` could not be loaded"), std::string::npos)
      << events.back().dump();
  EXPECT_GT(events.back()["retry_in_seconds"].get<double>(), 0);
}

}  // namespace
}  // namespace kiln
