// The access log line: bounded whatever the client sends, and complete for a cancelled request.
#include "kiln/http/access_log.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace kiln::http {
namespace {

TEST(AccessLog, ClientChosenFieldsAreCutWithTheirSizeNoted) {
  AccessRecord r;
  r.method = std::string(16384, 'X');
  r.path = "/" + std::string(5000, 'p');
  r.error = "Method " + r.method + " is not allowed.";
  r.status = 405;
  const std::string line = access_log_line(r);
  EXPECT_LT(line.size(), 4500u);
  auto j = nlohmann::json::parse(line);
  EXPECT_EQ(j["method"], std::string(32, 'X') + "...(16384 bytes)");
  EXPECT_EQ(j["path"].get<std::string>().size(), 2048u + std::string("...(5001 bytes)").size());
  EXPECT_EQ(j["error"].get<std::string>().substr(0, 7), "Method ");
  EXPECT_FALSE(j.contains("route"));  // answered before routing
}

TEST(AccessLog, ShortFieldsAreKeptAsTheyAre) {
  AccessRecord r;
  r.method = "POST";
  r.path = "/v1/completions";
  r.route = "/v1/completions";
  r.model = "tiny";
  r.status = 499;
  r.stream = true;
  r.prompt_tokens = 4;
  r.completion_tokens = 2;
  r.finish_reason = "cancelled";
  r.error = "The client closed the connection before the answer was complete.";
  auto j = nlohmann::json::parse(access_log_line(r));
  EXPECT_EQ(j["method"], "POST");
  EXPECT_EQ(j["path"], "/v1/completions");
  EXPECT_EQ(j["route"], "/v1/completions");
  EXPECT_EQ(j["status"], 499);
  EXPECT_EQ(j["finish_reason"], "cancelled");
  EXPECT_EQ(j["error"], r.error);
  EXPECT_EQ(j["ttft_ms"], nullptr);
}

}  // namespace
}  // namespace kiln::http
