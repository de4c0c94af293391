// /metrics of the real `kiln serve` binary (API keys on, a tiny random-weight checkpoint):
// `promtool check metrics` accepts the page after a mix of good, bad and unauthorized requests;
// thousands of requests with unique methods and paths add no series; a client that leaves is
// logged and counted as cancelled (499), apart from server errors.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "integration/server_process.h"
#include "unit/http/raw_client.h"

namespace kiln {
namespace {

using nlohmann::json;
using testing::http_request;
using testing::RawClient;
using testing::RawResponse;
using testing::ServerProcess;

const std::string kAuth = "Authorization: Bearer test-key\r\n";

// The sample lines of a /metrics page (one per series value; histograms give several).
std::vector<std::string> samples(const std::string& page) {
  std::vector<std::string> out;
  std::istringstream in(page);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line[0] != '#') out.push_back(line);
  }
  return out;
}

// The value of the series written exactly as `series` (name and labels), or -1 when absent.
double value_of(const std::string& page, const std::string& series) {
  for (const auto& line : samples(page)) {
    if (line.size() > series.size() && line.compare(0, series.size(), series) == 0 && line[series.size()] == ' ') {
      return std::atof(line.c_str() + series.size() + 1);
    }
  }
  return -1;
}

class MetricsServer : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const char* dir = std::getenv("KILN_TEST_MODEL_DIR");
    ASSERT_NE(dir, nullptr) << "KILN_TEST_MODEL_DIR is not set";
    server_ = new ServerProcess();
    ASSERT_TRUE(server_->start(KILN_BINARY,
                               {"--model", dir, "--served-model-name", "tiny", "--max-model-len", "2048",
                                "--api-key", "test-key", "--engine-threads", "1", "--http-threads", "2",
                                "--read-timeout", "5"},
                               testing::temp_test_path("metrics", "server.log")))
        << server_->log();
    // Load the model, so that its series exist before anything is counted.
    ASSERT_EQ(send(http_request("POST", "/v1/completions", R"({"model":"tiny","prompt":"x","max_tokens":1})", kAuth))
                  .status,
              200);
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }

  // Sends raw bytes on a new connection and reads the answer (status 0 when none came).
  static RawResponse send(const std::string& raw) {
    RawClient c(server_->port());
    EXPECT_TRUE(c.send(raw));
    return c.read_response(30000).value_or(RawResponse{});
  }
  static std::string metrics_page() {
    RawResponse r = send(http_request("GET", "/metrics"));
    EXPECT_EQ(r.status, 200);
    return r.body;
  }
  // The access log line of the request with this X-Request-ID, parsed; null when none yet.
  static json access_line(const std::string& request_id) {
    std::istringstream in(server_->log());
    for (std::string line; std::getline(in, line);) {
      if (line.empty() || line[0] != '{') continue;
      json j = json::parse(line, nullptr, false);
      if (!j.is_discarded() && j.value("type", "") == "access" && j.value("request_id", "") == request_id) return j;
    }
    return nullptr;
  }

  // One request of each kind a client can vary without limit: the method, the path, the model.
  static void unique_requests(const std::string& u) {
    EXPECT_EQ(send(http_request("M" + u, "/v1/models")).status, 405);
    EXPECT_EQ(send(http_request("X" + std::string(16384, 'Y') + u, "/health")).status, 405);
    EXPECT_EQ(send(http_request("GET", "/nothing/here/" + u)).status, 404);
    EXPECT_EQ(send(http_request("GET", "/v1/models/m" + u)).status, 401);  // no key
    EXPECT_EQ(send(http_request("GET", "/v1/models/m" + u, "", kAuth)).status, 404);
    EXPECT_EQ(send(http_request("POST", "/v1/completions", R"({"model":"m)" + u + R"(","prompt":"x"})", kAuth)).status,
              404);
    EXPECT_EQ(send("G\x01T /bad/" + u + " HTTP/1.1\r\nHost: x\r\n\r\n").status, 400);  // answered before routing
  }

  static ServerProcess* server_;
};
ServerProcess* MetricsServer::server_ = nullptr;

TEST_F(MetricsServer, PromtoolAcceptsThePageAfterAMixOfRequests) {
  const std::string promtool = KILN_PROMTOOL;
  ASSERT_FALSE(promtool.empty() || promtool.find("NOTFOUND") != std::string::npos)
      << "promtool not found: scripts/setup installs it (Debian's prometheus package)";
  unique_requests("mix");
  EXPECT_EQ(send(http_request("POST", "/v1/completions", R"({"model":"tiny","prompt":"x","max_tokens":2})")).status,
            401);
  EXPECT_EQ(send(http_request("GET", "/v1/completions", "", kAuth)).status, 405);
  EXPECT_EQ(send(http_request("OPTIONS", "/v1/models", "", kAuth)).status, 405);
  RawResponse chat = send(http_request(
      "POST", "/v1/chat/completions",
      R"({"model":"tiny","messages":[{"role":"user","content":"Hi"}],"max_tokens":3,"stream":true})", kAuth));
  EXPECT_EQ(chat.status, 200);
  EXPECT_NE(chat.body.find("[DONE]"), std::string::npos);

  const std::string page = metrics_page();
  const std::string file = testing::temp_test_path("metrics", "page.prom");
  std::ofstream(file, std::ios::binary) << page;
  FILE* p = ::popen((promtool + " check metrics < " + file + " 2>&1").c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string report;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof(buf), p)) > 0;) report.append(buf, n);
  const int status = ::pclose(p);
  std::filesystem::remove(file);
  EXPECT_EQ(status, 0) << report;
  EXPECT_EQ(report, "") << "promtool found problems in /metrics";
  // Monotonic counts are counters; the worker's among them.
  for (const char* family : {"kiln_http_requests_total", "kiln_generation_requests_total", "kiln_engine_steps_total",
                             "kiln_tokens_computed_total", "kiln_requests_cancelled_total"}) {
    EXPECT_NE(page.find(std::string("# TYPE ") + family + " counter\n"), std::string::npos) << family;
  }
}

TEST_F(MetricsServer, ThousandsOfUniqueMethodsAndPathsAddNoSeries) {
  unique_requests("warm");  // the first request of each kind creates its series
  const std::string before = metrics_page();
  for (int i = 0; i < 500; ++i) unique_requests(std::to_string(i));
  const std::string after = metrics_page();
  EXPECT_EQ(samples(after).size(), samples(before).size());
  EXPECT_LT(after.size(), before.size() + 1024) << "only the counts' digits may grow";
  EXPECT_EQ(after.find("YYYY"), std::string::npos);
  EXPECT_EQ(after.find("/nothing/here"), std::string::npos);
  EXPECT_EQ(after.find("/v1/models/m1"), std::string::npos);
  EXPECT_EQ(after.find("\"m1"), std::string::npos);
  EXPECT_GE(value_of(after, R"(kiln_http_requests_total{route="/v1/models",method="other",status="405"})"), 500);
  EXPECT_GE(value_of(after, R"(kiln_http_requests_total{route="none",method="other",status="400"})"), 500);
}

TEST_F(MetricsServer, AClientThatLeavesIsLoggedAndCountedAsCancelled) {
  const std::string cancelled = R"(kiln_generation_requests_total{model="tiny",status="499"})";
  const std::string failed = R"(kiln_generation_requests_total{model="tiny",status="500"})";
  const double cancelled_before = std::max(0.0, value_of(metrics_page(), cancelled));
  auto wait_for_cancelled = [&](double want) {
    std::string page;
    for (int i = 0; i < 2000 && value_of(page, cancelled) < want; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      page = metrics_page();
    }
    return page;
  };

  // Streamed: the client reads the first text and resets the connection.
  {
    RawClient c(server_->port());
    ASSERT_TRUE(c.send(http_request(
        "POST", "/v1/completions", R"({"model":"tiny","prompt":"Once","max_tokens":1500,"ignore_eos":true,"stream":true})",
        kAuth + "X-Request-ID: leaves-mid-stream\r\n")));
    std::string got;
    while (got.find("\"text\"") == std::string::npos) {
      auto part = c.read_some(20000);
      ASSERT_TRUE(part.has_value() && !part->empty()) << got;
      got += *part;
    }
    c.abort();
  }
  std::string page = wait_for_cancelled(cancelled_before + 1);
  EXPECT_EQ(value_of(page, cancelled), cancelled_before + 1);
  json line = access_line("leaves-mid-stream");
  ASSERT_TRUE(line.is_object()) << server_->log();
  EXPECT_EQ(line["status"], 499) << line.dump();
  EXPECT_EQ(line["error"], "The client closed the connection before the answer was complete.");
  EXPECT_EQ(line["finish_reason"], "cancelled");
  EXPECT_TRUE(line["stream"].get<bool>());
  EXPECT_LT(line["completion_tokens"].get<int>(), 1500);

  // Not streamed: the client leaves while its sequence runs.
  {
    RawClient c(server_->port());
    ASSERT_TRUE(c.send(http_request("POST", "/v1/completions",
                                    R"({"model":"tiny","prompt":"Once","max_tokens":1500,"ignore_eos":true})",
                                    kAuth + "X-Request-ID: leaves-while-waiting\r\n")));
    const std::string running = R"(kiln_running_sequences{model="tiny"})";
    for (int i = 0; i < 2000 && value_of(metrics_page(), running) < 1; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    c.abort();
  }
  page = wait_for_cancelled(cancelled_before + 2);
  EXPECT_EQ(value_of(page, cancelled), cancelled_before + 2);
  EXPECT_EQ(value_of(page, failed), -1) << "a client that left counted as a server error";
  line = access_line("leaves-while-waiting");
  ASSERT_TRUE(line.is_object()) << server_->log();
  EXPECT_EQ(line["status"], 499) << line.dump();
  EXPECT_EQ(line["error"], "The client closed the connection before the answer was complete.");
  EXPECT_FALSE(line["stream"].get<bool>());
  EXPECT_GT(line["duration_ms"].get<double>(), 0.0);
}

}  // namespace
}  // namespace kiln
