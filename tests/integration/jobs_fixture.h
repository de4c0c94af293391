// What the jobs integration tests share: a real `kiln serve` on SQLite or on a real PostgreSQL
// server (postgres_server.h) started once per test binary.
#pragma once

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <sstream>
#include <thread>

#include "integration/postgres_server.h"
#include "integration/server_process.h"
#include "kiln/jobs/sql_conn.h"
#include "unit/http/raw_client.h"

namespace kiln::testing {

using json = nlohmann::json;
namespace fs = std::filesystem;

inline PostgresServer* postgres() {
  static std::unique_ptr<PostgresServer> server = [] {
    auto s = std::make_unique<PostgresServer>();
    if (!s->start()) ADD_FAILURE() << "PostgreSQL: " << s->error();
    return s;
  }();
  return server.get();
}

// Waits for `done` (the job store is written a batch behind the answers), up to `timeout`.
inline bool eventually(const std::function<bool()>& done, std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return done();
}

inline std::string chat(bool stream, int max_tokens, bool ignore_eos = false) {
  json b = {{"model", "tiny"},
            {"messages", {{{"role", "user"}, {"content", "hello"}}}},
            {"max_tokens", max_tokens},
            {"stream", stream}};
  if (ignore_eos) b["ignore_eos"] = true;
  return b.dump();
}

class JobsServer : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    for (char& c : name) {
      if (c == '/') c = '_';
    }
    dir_ = (fs::temp_directory_path() / ("kiln_jobs_" + name + "_" + std::to_string(getpid()))).string();
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    setenv("KILN_HOME", dir_.c_str(), 1);
    if (pg()) {
      auto c = jobs::open_postgres(postgres()->url());
      ASSERT_TRUE(c.is_ok()) << c.status().to_string();
      ASSERT_TRUE((*c)->exec("DROP SCHEMA public CASCADE; CREATE SCHEMA public").is_ok());
    }
  }
  void TearDown() override {
    server_.reset();
    fs::remove_all(dir_);
  }

  bool pg() const { return GetParam() == "postgresql"; }
  std::string database() const { return pg() ? postgres()->url() : dir_ + "/jobs.db"; }

  void start(std::vector<std::string> extra = {}) {
    ASSERT_FALSE(test_model_dir().empty()) << "KILN_TEST_MODEL_DIR is not set";
    server_ = std::make_unique<ServerProcess>();
    std::vector<std::string> args = {"--model", test_model_dir(), "--served-model-name", "tiny", "--max-model-len",
                                     "2048", "--engine-threads", "1", "--http-threads", "2", "--database", database(),
                                     "--node-name", "test-node", "--no-access-log"};
    args.insert(args.end(), extra.begin(), extra.end());
    ASSERT_TRUE(server_->start(KILN_BINARY, args, dir_ + "/server.log")) << server_->log();
  }

  RawResponse send(const std::string& raw, int timeout_ms = 60000) {
    RawClient c(server_->port());
    EXPECT_TRUE(c.send(raw));
    return c.read_response(timeout_ms).value_or(RawResponse{});
  }
  RawResponse post(const std::string& path, const std::string& body, const std::string& id) {
    return send(http_request("POST", path, body, "X-Request-ID: " + id + "\r\n"));
  }
  json get_json(const std::string& path, int* status = nullptr) {
    RawResponse r = send(http_request("GET", path));
    if (status != nullptr) *status = r.status;
    return json::parse(r.body, nullptr, false);
  }
  // The job's status once the store has it, else "".
  std::string job_status(const std::string& id) {
    int status = 0;
    json j = get_json("/v1/jobs/" + id, &status);
    return status == 200 ? j.value("status", "") : "";
  }

  std::string dir_;
  std::unique_ptr<ServerProcess> server_;
};

// The value of `series` (name and labels as /metrics writes them) on a /metrics page; -1 if absent.
inline double metric(const std::string& page, const std::string& series) {
  const size_t at = page.find("\n" + series + " ");
  if (at == std::string::npos) return -1;
  return std::atof(page.c_str() + at + series.size() + 2);
}

}  // namespace kiln::testing
