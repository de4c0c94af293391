// Generation limits against the real `kiln serve` binary with a tiny random-weight checkpoint: a
// request without max_tokens stops at the server's default (chat) or at OpenAI's 16
// (completions), never at the end of the context by accident; a scheduler rejection names its
// parameter.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "integration/server_process.h"
#include "unit/http/raw_client.h"

namespace kiln {
namespace {

using nlohmann::json;
using testing::http_request;
using testing::RawClient;
using testing::RawResponse;
using testing::ServerProcess;

constexpr int kContext = 256;
constexpr int kDefault = 24;

std::vector<std::string> args(std::vector<std::string> extra, int context = kContext) {
  std::vector<std::string> a = {"--model", testing::test_model_dir(), "--served-model-name", "tiny", "--max-model-len",
                                std::to_string(context), "--engine-threads", "1", "--http-threads", "2"};
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

RawResponse post(int port, const std::string& path, const json& body) {
  RawClient c(port);
  EXPECT_TRUE(c.send(http_request("POST", path, body.dump())));
  auto r = c.read_response(60000);
  EXPECT_TRUE(r.has_value()) << body.dump();
  return r.value_or(RawResponse{});
}

// ignore_eos: a random-weight model may sample its EOS early; these tests are about the limit.
json chat(const std::string& content) {
  return {{"model", "tiny"}, {"messages", {{{"role", "user"}, {"content", content}}}}, {"ignore_eos", true}};
}

class GenerationDefaults : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ASSERT_FALSE(testing::test_model_dir().empty()) << "KILN_TEST_MODEL_DIR is not set";
    server_ = new ServerProcess();
    ASSERT_TRUE(server_->start(KILN_BINARY, args({"--default-max-tokens", std::to_string(kDefault), "--max-seqs", "4"}),
                               testing::temp_test_path("generation", "main") + ".log"))
        << server_->log();
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  static json ok(const std::string& path, const json& body) {
    RawResponse r = post(server_->port(), path, body);
    EXPECT_EQ(r.status, 200) << r.body;
    return json::parse(r.body, nullptr, false);
  }
  static ServerProcess* server_;
};
ServerProcess* GenerationDefaults::server_ = nullptr;

TEST_F(GenerationDefaults, ChatWithoutMaxTokensStopsAtTheServersDefault) {
  json j = ok("/v1/chat/completions", chat("Hello"));
  EXPECT_EQ(j["usage"]["completion_tokens"], kDefault) << j.dump();
  EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
  // A misspelled max_tokens is an unknown field: the default holds, the context is not the limit.
  json misspelled = chat("Hello");
  misspelled["man_tokens"] = 5;
  EXPECT_EQ(ok("/v1/chat/completions", misspelled)["usage"]["completion_tokens"], kDefault);
  // Streams too.
  json s = chat("Hello");
  s["stream"] = true;
  s["stream_options"] = {{"include_usage", true}};
  RawResponse r = post(server_->port(), "/v1/chat/completions", s);
  ASSERT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("\"completion_tokens\":" + std::to_string(kDefault) + ","), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("\"finish_reason\":\"length\""), std::string::npos);
}

TEST_F(GenerationDefaults, AnExplicitMaxTokensOverridesTheDefault) {
  json body = chat("Hello");
  body["max_tokens"] = kDefault + 6;
  EXPECT_EQ(ok("/v1/chat/completions", body)["usage"]["completion_tokens"], kDefault + 6);
  body.erase("max_tokens");
  body["max_completion_tokens"] = 3;
  EXPECT_EQ(ok("/v1/chat/completions", body)["usage"]["completion_tokens"], 3);
}

TEST_F(GenerationDefaults, TheDefaultIsCappedByWhatTheContextLeaves) {
  // Find how many prompt tokens a message of n words takes, then leave less room than the default.
  auto words = [](int n) {
    std::string s;
    for (int i = 0; i < n; ++i) s += "word ";
    return s;
  };
  json probe = chat(words(100));
  probe["max_tokens"] = 1;
  const int p100 = ok("/v1/chat/completions", probe)["usage"]["prompt_tokens"];
  const int n = 100 + (kContext - kDefault / 2) - p100;  // about kDefault / 2 tokens of room left
  json j = ok("/v1/chat/completions", chat(words(n)));
  const int prompt = j["usage"]["prompt_tokens"];
  ASSERT_GT(prompt, kContext - kDefault) << "the prompt must leave less room than the default";
  ASSERT_LT(prompt, kContext);
  EXPECT_EQ(j["usage"]["completion_tokens"], kContext - prompt);
  EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
}

TEST_F(GenerationDefaults, CompletionsWithoutMaxTokensStopAtOpenAis16) {
  // The chat default (24 here) does not apply: /v1/completions keeps OpenAI's default.
  json j = ok("/v1/completions", {{"model", "tiny"}, {"prompt", "Once upon a time"}, {"ignore_eos", true}});
  EXPECT_EQ(j["usage"]["completion_tokens"], 16) << j.dump();
  EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
  json two = ok("/v1/completions", {{"model", "tiny"}, {"prompt", "Once"}, {"ignore_eos", true}, {"n", 2}});
  EXPECT_EQ(two["usage"]["completion_tokens"], 32);  // 16 for each choice
}

TEST_F(GenerationDefaults, ASchedulerRejectionNamesItsParameter) {
  // n=8 passes the API's checks (at most 128) but not this server's --max-seqs 4.
  json body = chat("Hello");
  body["n"] = 8;
  RawResponse r = post(server_->port(), "/v1/chat/completions", body);
  EXPECT_EQ(r.status, 400);
  json e = json::parse(r.body, nullptr, false).value("error", json::object());
  EXPECT_EQ(e["param"], "n") << r.body;
  EXPECT_NE(e["message"].get<std::string>().find("between 1 and 4"), std::string::npos) << r.body;
  RawResponse c = post(server_->port(), "/v1/completions", {{"model", "tiny"}, {"prompt", "x"}, {"n", 8}, {"stream", true}});
  EXPECT_EQ(c.status, 400);
  EXPECT_EQ(json::parse(c.body, nullptr, false)["error"]["param"], "n") << c.body;
}

TEST(GenerationDefaultsZero, ZeroMeansTheRestOfTheContext) {
  ServerProcess s;
  ASSERT_TRUE(s.start(KILN_BINARY, args({"--default-max-tokens", "0"}, 64), testing::temp_test_path("generation", "zero") + ".log"))
      << s.log();
  RawResponse r = post(s.port(), "/v1/chat/completions", chat("Hello"));
  ASSERT_EQ(r.status, 200) << r.body;
  json j = json::parse(r.body);
  EXPECT_EQ(j["usage"]["total_tokens"], 64);
  EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
}

TEST(GenerationDefaultsFlags, ANegativeDefaultIsRefusedAndTheDefaultsAreFinite) {
  ServerProcess s;
  EXPECT_FALSE(s.start(KILN_BINARY, args({"--default-max-tokens", "-1"}), testing::temp_test_path("generation", "negative") + ".log"));
  EXPECT_NE(s.log().find("--default-max-tokens: must be >= 0"), std::string::npos) << s.log();
  // What `kiln serve --help` shows is what a server without settings does.
  std::string help;
  FILE* p = popen((std::string(KILN_BINARY) + " serve --help").c_str(), "r");
  ASSERT_NE(p, nullptr);
  char buf[4096];
  size_t n = 0;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) help.append(buf, n);
  pclose(p);
  EXPECT_NE(help.find("--default-max-tokens INT=4096"), std::string::npos) << help;
  EXPECT_NE(help.find("--request-timeout FLOAT=600"), std::string::npos) << help;
}

}  // namespace
}  // namespace kiln
