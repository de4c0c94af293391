// Raw-socket tests against the real `kiln serve` binary with a tiny random-weight checkpoint:
// bad input of every kind gets its error and the server survives; a client that leaves stops
// its sequence at once; 200 concurrent streams account for every token; SIGTERM drains.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <regex>
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

std::vector<std::string> base_args() {
  return {"--model", testing::test_model_dir(), "--served-model-name", "tiny", "--max-model-len", "256", "--max-body-size", "64KiB",
          "--read-timeout", "1", "--engine-threads", "1", "--http-threads", "2"};
}

class HttpRaw : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ASSERT_FALSE(testing::test_model_dir().empty()) << "KILN_TEST_MODEL_DIR is not set";
    server_ = new ServerProcess();
    ASSERT_TRUE(server_->start(KILN_BINARY, base_args(), testing::temp_test_path("http_raw", "main") + ".log")) << server_->log();
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  static int port() { return server_->port(); }

  static RawResponse call(const std::string& raw) {
    RawClient c(port());
    EXPECT_TRUE(c.send(raw));
    auto r = c.read_response(30000);
    EXPECT_TRUE(r.has_value()) << raw.substr(0, 200);
    return r.value_or(RawResponse{});
  }
  static json error_of(const RawResponse& r) {
    json j = json::parse(r.body, nullptr, false);
    EXPECT_TRUE(j.contains("error")) << r.body;
    return j.value("error", json::object());
  }
  static double metric(const std::string& name) {
    RawResponse r = call(http_request("GET", "/metrics"));
    std::regex re(name + R"(\{model="tiny"\} ([0-9.e+-]+))");
    std::smatch m;
    if (!std::regex_search(r.body, m, re)) return -1;
    return std::atof(m[1].str().c_str());
  }

  static ServerProcess* server_;
};
ServerProcess* HttpRaw::server_ = nullptr;

const std::string kChat = R"({"model":"tiny","messages":[{"role":"user","content":"Hello"}],"max_tokens":4})";

TEST_F(HttpRaw, ChatCompletionAnswersWithUsageAndRequestId) {
  RawResponse r = call(http_request("POST", "/v1/chat/completions", kChat, "X-Request-ID: my-id-1\r\n"));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.header("x-request-id"), "my-id-1");
  json j = json::parse(r.body);
  EXPECT_EQ(j["object"], "chat.completion");
  EXPECT_EQ(j["model"], "tiny");
  EXPECT_EQ(j["choices"][0]["message"]["role"], "assistant");
  EXPECT_LE(j["usage"]["completion_tokens"].get<int>(), 4);
  EXPECT_GT(j["usage"]["prompt_tokens"].get<int>(), 0);
  EXPECT_EQ(j["usage"]["total_tokens"].get<int>(),
            j["usage"]["prompt_tokens"].get<int>() + j["usage"]["completion_tokens"].get<int>());
  EXPECT_TRUE(j["usage"]["prompt_tokens_details"].contains("cached_tokens"));
}

TEST_F(HttpRaw, MalformedJsonGets400AndTheConnectionSurvives) {
  RawClient c(port());
  ASSERT_TRUE(c.send(http_request("POST", "/v1/chat/completions", R"({"model": "tiny", "messages": [)")));
  auto r = c.read_response();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 400);
  EXPECT_NE(error_of(*r)["message"].get<std::string>().find("could not parse the JSON body"), std::string::npos);
  ASSERT_TRUE(c.send(http_request("GET", "/health")));
  auto h = c.read_response();
  ASSERT_TRUE(h.has_value());
  EXPECT_EQ(h->status, 200);
}

TEST_F(HttpRaw, WrongTypesNameTheParameter) {
  for (const auto& [field, value] : std::vector<std::pair<std::string, std::string>>{
           {"temperature", "\"hot\""}, {"max_tokens", "-3"}, {"n", "129"}, {"top_logprobs", "5"}, {"stop", "7"}}) {
    std::string body = R"({"model":"tiny","messages":[{"role":"user","content":"x"}],")" + field + "\":" + value + "}";
    RawResponse r = call(http_request("POST", "/v1/chat/completions", body));
    EXPECT_EQ(r.status, 400) << body;
    EXPECT_EQ(error_of(r)["param"], field) << r.body;
    EXPECT_EQ(error_of(r)["type"], "invalid_request_error");
  }
}

TEST_F(HttpRaw, InvalidUtf8Gets400) {
  RawResponse r = call(http_request("POST", "/v1/completions", "{\"model\":\"tiny\",\"prompt\":\"\xC3\x28\"}"));
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(error_of(r)["code"], "invalid_encoding");
}

TEST_F(HttpRaw, HugeBodyGets413) {
  std::string body = R"({"model":"tiny","prompt":")" + std::string(200 * 1024, 'a') + "\"}";
  RawResponse r = call(http_request("POST", "/v1/completions", body));
  EXPECT_EQ(r.status, 413);
  EXPECT_TRUE(error_of(r).contains("message"));
}

TEST_F(HttpRaw, WrongContentTypeGets415AndWrongMethod405) {
  RawResponse r = call(http_request("POST", "/v1/completions", "prompt=hi", "", "application/x-www-form-urlencoded"));
  EXPECT_EQ(r.status, 415);
  RawResponse m = call(http_request("GET", "/v1/chat/completions"));
  EXPECT_EQ(m.status, 405);
  EXPECT_EQ(m.header("allow"), "POST");
  RawResponse n = call(http_request("GET", "/v1/nothing-here"));
  EXPECT_EQ(n.status, 404);
}

TEST_F(HttpRaw, UnknownModelIs404AndModelsAreListed) {
  RawResponse r = call(http_request("POST", "/v1/chat/completions",
                                    R"({"model":"nope","messages":[{"role":"user","content":"x"}]})"));
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(error_of(r)["code"], "model_not_found");
  RawResponse l = call(http_request("GET", "/v1/models"));
  json j = json::parse(l.body);
  ASSERT_EQ(j["data"].size(), 1u);
  EXPECT_EQ(j["data"][0]["id"], "tiny");
  EXPECT_EQ(call(http_request("GET", "/v1/models/tiny")).status, 200);
  EXPECT_EQ(call(http_request("GET", "/v1/models/other")).status, 404);
}

TEST_F(HttpRaw, ContextLengthErrorUsesOpenAisWording) {
  std::string long_prompt;
  for (int i = 0; i < 300; ++i) long_prompt += "word ";
  RawResponse r = call(http_request("POST", "/v1/completions", R"({"model":"tiny","prompt":")" + long_prompt + "\"}"));
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(error_of(r)["code"], "context_length_exceeded");
  EXPECT_NE(error_of(r)["message"].get<std::string>().find("maximum context length is 256 tokens"), std::string::npos);
  RawResponse m = call(http_request("POST", "/v1/completions", R"({"model":"tiny","prompt":"hi","max_tokens":1000})"));
  EXPECT_EQ(m.status, 400);
  EXPECT_NE(error_of(m)["message"].get<std::string>().find("for the completion"), std::string::npos);
}

TEST_F(HttpRaw, PipelinedGarbageAfterAGoodRequest) {
  RawClient c(port());
  ASSERT_TRUE(c.send(http_request("GET", "/health") + "\x16\x03\x01 this is not http\r\n\r\n"));
  auto a = c.read_response();
  auto b = c.read_response();
  ASSERT_TRUE(a.has_value() && b.has_value());
  EXPECT_EQ(a->status, 200);
  EXPECT_EQ(b->status, 400);
  EXPECT_EQ(call(http_request("GET", "/health")).status, 200);
}

TEST_F(HttpRaw, SlowClientGets408AndOthersAreServed) {
  RawClient slow(port());
  ASSERT_TRUE(slow.send("POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                        "Content-Length: 100\r\n\r\n{\"model\":"));
  EXPECT_EQ(call(http_request("GET", "/health")).status, 200);
  auto r = slow.read_response(5000);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 408);
}

TEST_F(HttpRaw, ClientThatDisconnectsMidStreamStopsItsSequenceAtOnce) {
  RawClient c(port());
  ASSERT_TRUE(c.send(http_request(
      "POST", "/v1/completions",
      R"({"model":"tiny","prompt":"Once","max_tokens":200,"ignore_eos":true,"stream":true})")));
  std::string got;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (got.find("\"text\"") == std::string::npos && std::chrono::steady_clock::now() < deadline) {
    auto part = c.read_some(1000);
    ASSERT_TRUE(part.has_value());
    got += *part;
  }
  ASSERT_NE(got.find("\"text\""), std::string::npos);
  EXPECT_EQ(metric("kiln_running_sequences"), 1);
  c.abort();
  auto t0 = std::chrono::steady_clock::now();
  double running = 1;
  while (std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5)) {
    running = metric("kiln_running_sequences");
    if (running == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(running, 0);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(1000));
}

TEST_F(HttpRaw, TwoHundredConcurrentStreamsAccountForEveryToken) {
  constexpr int kStreams = 200, kTokens = 6;
  std::atomic<int> ok{0};
  std::vector<std::string> failures(kStreams);
  std::vector<std::thread> threads;
  for (int i = 0; i < kStreams; ++i) {
    threads.emplace_back([&, i] {
      RawClient c(port());
      std::string body = R"({"model":"tiny","prompt":"Stream )" + std::to_string(i) + R"(","max_tokens":)" +
                         std::to_string(kTokens) +
                         R"(,"ignore_eos":true,"stream":true,"logprobs":0,"stream_options":{"include_usage":true}})";
      if (!c.send(http_request("POST", "/v1/completions", body))) return void(failures[i] = "send");
      auto r = c.read_response(120000);
      if (!r || r->status != 200) return void(failures[i] = "status");
      int tokens = 0, usage = -1;
      bool done = false;
      std::string finish;
      size_t pos = 0;
      while ((pos = r->body.find("data: ", pos)) != std::string::npos) {
        size_t end = r->body.find("\n\n", pos);
        std::string data = r->body.substr(pos + 6, end - pos - 6);
        pos = end;
        if (data == "[DONE]") {
          done = true;
          continue;
        }
        json j = json::parse(data, nullptr, false);
        if (j.is_discarded()) return void(failures[i] = "bad json: " + data);
        if (j.contains("usage") && j["usage"].is_object()) usage = j["usage"]["completion_tokens"];
        for (const auto& ch : j["choices"]) {
          if (ch["logprobs"].is_object()) tokens += static_cast<int>(ch["logprobs"]["tokens"].size());
          if (ch["finish_reason"].is_string()) finish = ch["finish_reason"];
        }
      }
      if (!done || tokens != kTokens || usage != kTokens || finish != "length") {
        return void(failures[i] = "tokens " + std::to_string(tokens) + " usage " + std::to_string(usage) +
                                  " finish " + finish + " done " + std::to_string(done));
      }
      ok++;
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < kStreams; ++i) EXPECT_EQ(failures[i], "") << "stream " << i;
  EXPECT_EQ(ok.load(), kStreams);
  EXPECT_EQ(metric("kiln_running_sequences"), 0);
}

TEST(HttpRawAuth, ApiKeysGuardV1ButNotHealth) {
  std::string key_file = testing::temp_test_path("http_raw", "keys") + ".log";
  {
    std::ofstream f(key_file);
    f << "# keys\nfile-key\n";
  }
  ServerProcess s;
  auto args = base_args();
  args.insert(args.end(), {"--api-key", "flag-key", "--api-key-file", key_file, "--cors-origins", "https://app.example"});
  ASSERT_TRUE(s.start(KILN_BINARY, args, testing::temp_test_path("http_raw", "auth") + ".log")) << s.log();
  auto get = [&](const std::string& extra) {
    RawClient c(s.port());
    c.send(http_request("GET", "/v1/models", "", extra));
    return c.read_response().value_or(RawResponse{});
  };
  EXPECT_EQ(get("").status, 401);
  EXPECT_EQ(get("Authorization: Bearer wrong\r\n").status, 401);
  EXPECT_EQ(get("Authorization: Bearer flag-key\r\n").status, 200);
  EXPECT_EQ(get("Authorization: Bearer file-key\r\n").status, 200);
  RawResponse cors = get("Authorization: Bearer file-key\r\nOrigin: https://app.example\r\n");
  EXPECT_EQ(cors.header("access-control-allow-origin"), "https://app.example");
  EXPECT_EQ(get("Authorization: Bearer file-key\r\nOrigin: https://evil.example\r\n").header("access-control-allow-origin"), "");
  RawClient h(s.port());
  h.send(http_request("GET", "/health"));
  EXPECT_EQ(h.read_response()->status, 200);
  EXPECT_EQ(s.stop(SIGINT), 0);
}

TEST(HttpRawShutdown, SigtermLetsAStreamFinishThenExitsZero) {
  ServerProcess s;
  auto args = base_args();
  args.insert(args.end(), {"--drain-timeout", "30"});
  ASSERT_TRUE(s.start(KILN_BINARY, args, testing::temp_test_path("http_raw", "drain") + ".log")) << s.log();
  RawClient c(s.port());
  ASSERT_TRUE(c.send(http_request("POST", "/v1/completions",
                                  R"({"model":"tiny","prompt":"x","max_tokens":40,"ignore_eos":true,"stream":true})")));
  auto first = c.read_some(20000);
  ASSERT_TRUE(first.has_value() && !first->empty());
  std::atomic<int> code{-2};
  std::thread stopper([&] { code = s.stop(SIGTERM); });
  std::string all = *first;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (all.find("[DONE]") == std::string::npos && std::chrono::steady_clock::now() < deadline) {
    auto part = c.read_some(1000);
    if (!part) break;  // closed
    all += *part;
  }
  stopper.join();
  EXPECT_NE(all.find("data: [DONE]"), std::string::npos) << "the in-flight stream was cut";
  EXPECT_NE(all.find("\"finish_reason\":\"length\""), std::string::npos);
  EXPECT_EQ(code.load(), 0) << s.log();
  RawClient late(s.port());
  EXPECT_FALSE(late.connected());
  EXPECT_NE(s.log().find("draining"), std::string::npos);
}

}  // namespace
}  // namespace kiln
