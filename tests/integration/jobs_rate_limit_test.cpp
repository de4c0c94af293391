// Rate limits through the real server: per key from a keys file, per address without keys, the
// 429s, headers and /metrics; and one limit held by two kiln processes sharing a real PostgreSQL.
#include <fstream>

#include "integration/jobs_fixture.h"

namespace kiln::testing {
namespace {

class RateLimits : public JobsServer {
 protected:
  RawResponse chat_as(const std::string& key, const std::string& body, const std::string& id, int port = 0) {
    RawClient c(port != 0 ? port : server_->port());
    EXPECT_TRUE(c.send(http_request("POST", "/v1/chat/completions", body,
                                    (key.empty() ? "" : "Authorization: Bearer " + key + "\r\n") + "X-Request-ID: " + id + "\r\n")));
    return c.read_response(60000).value_or(RawResponse{});
  }
};

void expect_rate_limited(const RawResponse& r, const std::string& type) {
  ASSERT_EQ(r.status, 429) << r.body;
  json e = json::parse(r.body)["error"];
  EXPECT_EQ(e["code"], "rate_limit_exceeded");
  EXPECT_EQ(e["type"], type);
  EXPECT_GE(std::atoi(r.header("retry-after").c_str()), 1);
}

TEST_P(RateLimits, PerKeyLimitsFromTheKeysFile) {
  const std::string keys = dir_ + "/keys.txt";
  std::ofstream(keys) << "# kiln keys\nkey-a rpm=2\nkey-b\ttpm=100\n\nkey-c\nkey-d rpm=0\n";
  start({"--api-key-file", keys, "--rate-limit-rpm", "3"});

  RawResponse r = chat_as("key-a", chat(false, 2), "a-1");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.header("x-ratelimit-limit-requests"), "2");
  EXPECT_EQ(r.header("x-ratelimit-remaining-requests"), "1");
  EXPECT_FALSE(r.header("x-ratelimit-reset-requests").empty());
  EXPECT_EQ(r.header("x-ratelimit-limit-tokens"), "");  // no token limit for key-a
  ASSERT_EQ(chat_as("key-a", chat(false, 2), "a-2").status, 200);
  r = chat_as("key-a", chat(false, 2), "a-3");
  expect_rate_limited(r, "requests");
  EXPECT_EQ(r.header("x-ratelimit-remaining-requests"), "0");
  // Other routes show the headers and take nothing.
  RawResponse models = send(http_request("GET", "/v1/models", "", "Authorization: Bearer key-a\r\n"));
  EXPECT_EQ(models.status, 200);
  EXPECT_EQ(models.header("x-ratelimit-remaining-requests"), "0");

  // key-b: its own token limit, and the global request limit (3) it leaves unset.
  r = chat_as("key-b", chat(false, 60, true), "b-1");
  ASSERT_EQ(r.status, 200) << r.body;
  const int64_t prompt = json::parse(r.body)["usage"]["prompt_tokens"].get<int64_t>();
  EXPECT_EQ(r.header("x-ratelimit-limit-tokens"), "100");
  EXPECT_EQ(r.header("x-ratelimit-remaining-tokens"), std::to_string(100 - prompt - 60));  // prompt + max_tokens
  EXPECT_EQ(r.header("x-ratelimit-limit-requests"), "3");
  expect_rate_limited(chat_as("key-b", chat(false, 60, true), "b-2"), "tokens");
  r = chat_as("key-b", chat(false, 200, true), "b-3");  // more than a minute allows
  expect_rate_limited(r, "tokens");
  EXPECT_NE(json::parse(r.body)["error"]["message"].get<std::string>().find("too large"), std::string::npos);

  // key-c takes the global limit; key-d has none (rpm=0).
  for (int i = 0; i < 3; ++i) ASSERT_EQ(chat_as("key-c", chat(false, 1), "c-" + std::to_string(i)).status, 200);
  expect_rate_limited(chat_as("key-c", chat(false, 1), "c-3"), "requests");
  for (int i = 0; i < 5; ++i) {
    r = chat_as("key-d", chat(false, 1), "d-" + std::to_string(i));
    ASSERT_EQ(r.status, 200);
    EXPECT_EQ(r.header("x-ratelimit-limit-requests"), "");
  }

  std::string page = send(http_request("GET", "/metrics")).body;
  EXPECT_EQ(metric(page, "kiln_rate_limited_total{limit=\"requests\"}"), 2) << page;
  EXPECT_EQ(metric(page, "kiln_rate_limited_total{limit=\"tokens\"}"), 2);
  // A refused request is a failed job with the rate_limited code.
  json job;
  ASSERT_TRUE(eventually([&] {
    job = json::parse(send(http_request("GET", "/v1/jobs/a-3", "", "Authorization: Bearer key-d\r\n")).body, nullptr, false);
    return job.is_object() && job.value("status", "") == "failed";
  })) << job.dump();
  EXPECT_EQ(job["error"]["code"], "rate_limited");
  EXPECT_EQ(job["http_status"], 429);
}

TEST_P(RateLimits, PerAddressWithoutKeys) {
  start({"--rate-limit-rpm", "1"});
  ASSERT_EQ(chat_as("", chat(false, 1), "ip-1").status, 200);
  expect_rate_limited(chat_as("", chat(false, 1), "ip-2"), "requests");
}

TEST_P(RateLimits, RefusesABadKeysFile) {
  const std::string keys = dir_ + "/keys.txt";
  std::ofstream(keys) << "key-a rpm=lots\n";
  ServerProcess p;
  EXPECT_FALSE(p.start(KILN_BINARY, {"--model", test_model_dir(), "--api-key-file", keys, "--database", "off"},
                       dir_ + "/bad.log"));
  EXPECT_NE(p.log().find("expected KEY [rpm=N] [tpm=N]"), std::string::npos) << p.log();
}

INSTANTIATE_TEST_SUITE_P(Backends, RateLimits, ::testing::Values("sqlite"), [](const auto& p) { return p.param; });

// Two kiln processes on one PostgreSQL database hold one limit between them.
class RateLimitsAcrossNodes : public RateLimits {};

TEST_P(RateLimitsAcrossNodes, TwoNodesShareOneLimit) {
  start({"--rate-limit-rpm", "4", "--rate-limit-sync", "50ms"});
  ServerProcess b;
  ASSERT_TRUE(b.start(KILN_BINARY,
                      {"--model", test_model_dir(), "--served-model-name", "tiny", "--max-model-len", "2048",
                       "--engine-threads", "1", "--http-threads", "2", "--database", database(), "--node-name",
                       "test-node-b", "--no-access-log", "--rate-limit-rpm", "4", "--rate-limit-sync", "50ms"},
                      dir_ + "/server-b.log"))
      << b.log();
  for (int i = 0; i < 4; ++i) ASSERT_EQ(chat_as("", chat(false, 1), "n-a-" + std::to_string(i)).status, 200);
  // Within a sync or two, node B charges what node A took (a minute's 4 refill one per 15 s).
  ASSERT_TRUE(eventually([&] {
    RawClient c(b.port());
    if (!c.send(http_request("GET", "/v1/models"))) return false;
    auto r = c.read_response(10000);
    return r && r->header("x-ratelimit-remaining-requests") == "0";
  }, std::chrono::seconds(10))) << b.log();
  expect_rate_limited(chat_as("", chat(false, 1), "n-b-0", b.port()), "requests");
}

INSTANTIATE_TEST_SUITE_P(Backends, RateLimitsAcrossNodes, ::testing::Values("postgresql"),
                         [](const auto& p) { return p.param; });

}  // namespace
}  // namespace kiln::testing
