// The robustness defects of issue 17 against the real `kiln serve` binary: numbers that overflow,
// bodies with a million keys, SIGTERM while requests run, a drain that expires mid-stream,
// transfer codings, and errors that would echo huge inputs or show server paths.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "integration/server_process.h"
#include "unit/http/raw_client.h"

namespace kiln {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::http_request;
using testing::RawClient;
using testing::RawResponse;
using testing::ServerProcess;
using Clock = std::chrono::steady_clock;

// A models directory holding a copy of the test model whose weights file is cut short: it is
// listed, and loading it fails with an error that names files under this directory.
fs::path make_broken_models_dir() {
  fs::path root = fs::path(testing::temp_test_path("http_robust", "models"));
  fs::remove_all(root);
  fs::create_directories(root / "broken");
  for (const auto& e : fs::directory_iterator(testing::test_model_dir())) fs::copy(e.path(), root / "broken" / e.path().filename());
  for (const auto& e : fs::directory_iterator(root / "broken")) {
    if (e.path().extension() == ".safetensors") fs::resize_file(e.path(), 64);
  }
  return root;
}

class HttpRobust : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ASSERT_FALSE(testing::test_model_dir().empty()) << "KILN_TEST_MODEL_DIR is not set";
    models_ = new fs::path(make_broken_models_dir());
    server_ = new ServerProcess();
    ASSERT_TRUE(server_->start(KILN_BINARY,
                               {"--model", testing::test_model_dir(), "--served-model-name", "tiny", "--models-dir", models_->string(),
                                "--max-model-len", "256", "--engine-threads", "1", "--http-threads", "2"},
                               testing::temp_test_path("http_robust", "main.log")))
        << server_->log();
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
    fs::remove_all(*models_);
    delete models_;
  }

  static RawResponse call(const std::string& raw, int timeout_ms = 60000) {
    RawClient c(server_->port());
    EXPECT_TRUE(c.send(raw));
    auto r = c.read_response(timeout_ms);
    EXPECT_TRUE(r.has_value()) << raw.substr(0, 200);
    return r.value_or(RawResponse{});
  }
  static json error_of(const RawResponse& r) {
    json j = json::parse(r.body, nullptr, false);
    EXPECT_TRUE(j.contains("error")) << r.body.substr(0, 500);
    return j.value("error", json::object());
  }

  static ServerProcess* server_;
  static fs::path* models_;
};
ServerProcess* HttpRobust::server_ = nullptr;
fs::path* HttpRobust::models_ = nullptr;

std::string chat_with(const std::string& extra) {
  return R"({"model":"tiny","messages":[{"role":"user","content":"x"}])" + extra + "}";
}

TEST_F(HttpRobust, NumbersThatOverflowAre400sNamingTheParameter) {
  for (const std::string& value : {std::string("1e400"), std::string(5000, '9'), std::string("-1E+999")}) {
    RawResponse r = call(http_request("POST", "/v1/chat/completions", chat_with(R"(,"max_tokens":)" + value)));
    EXPECT_EQ(r.status, 400) << value.substr(0, 20) << ": " << r.body;
    EXPECT_EQ(error_of(r)["param"], "max_tokens");
    EXPECT_EQ(error_of(r)["code"], "invalid_value");
    EXPECT_LT(r.body.size(), 600u);
  }
  RawResponse p = call(http_request("POST", "/v1/completions", R"({"model":"tiny","prompt":[1,2,3e999]})"));
  EXPECT_EQ(p.status, 400);
  EXPECT_EQ(error_of(p)["param"], "prompt[2]");
}

TEST_F(HttpRobust, AMillionKeyBodyIsRefusedAtOnceAndHealthStaysUp) {
  std::string body = "{";
  for (int i = 0; i < 1'000'000; ++i) body += (i ? ",\"k" : "\"k") + std::to_string(i) + "\":1";
  body += "}";  // 11.9 MB, under the 32 MiB body limit
  std::vector<std::thread> senders;
  std::atomic<int> refused{0};
  const auto t0 = Clock::now();
  for (int i = 0; i < 3; ++i) {
    senders.emplace_back([&] {
      RawClient c(server_->port());
      if (!c.send(http_request("POST", "/v1/chat/completions", body))) return;
      auto r = c.read_response(60000);
      if (r && r->status == 400 && r->body.find("at most 10000 keys") != std::string::npos) refused++;
    });
  }
  // /health answers while the three bodies are read and refused.
  for (int i = 0; i < 5; ++i) EXPECT_EQ(call(http_request("GET", "/health"), 10000).status, 200);
  for (auto& t : senders) t.join();
  EXPECT_EQ(refused.load(), 3);
  // Before: about ten minutes each. Reading 36 MB over loopback and refusing it takes well under this.
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(30));
}

// A chat whose message is nearly 32 MiB (the body limit) has far more tokens than the context:
// it is refused while being tokenized, without rendering costs that grow with the text's tokens.
// Before: 79 s for one such message of one repeated character, 19 s for one of words, each on an
// HTTP thread; with --http-threads 2, two of them stalled every other request.
TEST_F(HttpRobust, AThirtyTwoMebibyteChatIsRefusedInBoundedTimeAndHealthStaysUp) {
  const size_t text_bytes = (32u << 20) - 4096;
  std::string words;
  words.reserve(text_bytes);
  static const char* kWords[] = {"the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "kiln", "serves"};
  for (uint64_t x = 88172645463325252ULL; words.size() < text_bytes - 16;) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    words += kWords[x % 10];
    words += x % 7 == 0 ? ".\\n" : " ";
  }
  const std::vector<std::string> bodies = {
      R"({"model":"tiny","max_tokens":1,"messages":[{"role":"user","content":")" + words + "\"}]}",
      R"({"model":"tiny","max_tokens":1,"messages":[{"role":"user","content":")" + std::string(text_bytes, 'a') +
          "\"}]}"};
  std::vector<std::thread> senders;
  std::atomic<int> refused{0};
  const auto t0 = Clock::now();
  for (int i = 0; i < 4; ++i) {
    senders.emplace_back([&, i] {
      RawClient c(server_->port());
      if (!c.send(http_request("POST", "/v1/chat/completions", bodies[static_cast<size_t>(i) % 2]))) return;
      auto r = c.read_response(120000);
      if (r && r->status == 400 && r->body.find("context_length_exceeded") != std::string::npos &&
          r->body.find("maximum context length is 256 tokens. However, your messages resulted in more than 256 "
                      "tokens") != std::string::npos)
        refused++;
    });
  }
  for (int i = 0; i < 5; ++i) EXPECT_EQ(call(http_request("GET", "/health"), 10000).status, 200);
  for (auto& t : senders) t.join();
  EXPECT_EQ(refused.load(), 4);
  // Reading and parsing 4 x 32 MiB and rendering the template take seconds; tokenizing no longer
  // grows with the text.
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(40));
}

TEST_F(HttpRobust, TransferEncodingIdentityIsRefused) {
  RawClient c(server_->port());
  ASSERT_TRUE(c.send("POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     "Transfer-Encoding: identity\r\n\r\n{\"model\":\"tiny\",\"prompt\":\"x\"}"));
  auto r = c.read_response();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 400);
  EXPECT_NE(r->body.find("Transfer-Encoding"), std::string::npos) << r->body;
  EXPECT_TRUE(c.closed_by_peer(5000));
}

TEST_F(HttpRobust, AHugeModelNameIsNotEchoedInFull) {
  const std::string name(1 << 20, 'm');
  RawResponse r = call(http_request("POST", "/v1/chat/completions", R"({"model":")" + name +
                                                                        R"(","messages":[{"role":"user","content":"x"}]})"));
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(error_of(r)["code"], "model_not_found");
  EXPECT_LT(r.body.size(), 1000u);
  RawResponse u = call(http_request("GET", "/v1/" + std::string(20000, 'u')));
  EXPECT_EQ(u.status, 404);
  EXPECT_LT(u.body.size(), 1000u);
}

TEST_F(HttpRobust, ABrokenModelsErrorDoesNotShowServerPaths) {
  RawResponse r = call(http_request("POST", "/v1/completions", R"({"model":"broken","prompt":"x","max_tokens":1})"));
  EXPECT_GE(r.status, 400);
  const std::string message = error_of(r).value("message", "");
  EXPECT_FALSE(message.empty());
  EXPECT_EQ(message.find(models_->string()), std::string::npos) << message;
  EXPECT_EQ(message.find(fs::temp_directory_path().string()), std::string::npos) << message;
  EXPECT_NE(message.find("broken"), std::string::npos) << message;
  // The server's log keeps the path.
  EXPECT_NE(server_->log().find((*models_ / "broken").string()), std::string::npos);
}

TEST(HttpRobustShutdown, AnExpiredDrainCutsTheStreamCleanlyAndTheProcessExits) {
  ServerProcess s;
  ASSERT_TRUE(s.start(KILN_BINARY,
                      {"--model", testing::test_model_dir(), "--served-model-name", "tiny", "--max-model-len", "2048",
                       "--engine-threads", "1", "--drain-timeout", "1"},
                      testing::temp_test_path("http_robust", "drain.log")))
      << s.log();
  RawClient c(s.port());
  ASSERT_TRUE(c.send(http_request("POST", "/v1/completions",
                                  R"({"model":"tiny","prompt":"x","max_tokens":2000,"ignore_eos":true,"stream":true})")));
  auto first = c.read_some(20000);
  ASSERT_TRUE(first.has_value() && !first->empty());
  std::atomic<int> code{-2};
  const auto t0 = Clock::now();
  std::thread stopper([&] { code = s.stop(SIGTERM, 60000); });
  std::string all = *first;
  while (true) {
    auto part = c.read_some(30000);
    if (!part) break;  // closed
    ASSERT_FALSE(part->empty()) << "the stream stalled without an end";
    all += *part;
  }
  stopper.join();
  const auto took = Clock::now() - t0;
  // Drain 1 s + grace 2 s + a little: well under 15 s whatever the machine's load.
  EXPECT_LT(took, std::chrono::seconds(15));
  EXPECT_EQ(code.load(), 0) << s.log();
  ASSERT_GE(all.size(), 5u);
  EXPECT_EQ(all.substr(all.size() - 5), "0\r\n\r\n") << "no chunked terminator";
  const size_t err = all.rfind("data: {\"error\":");
  ASSERT_NE(err, std::string::npos) << all.substr(all.size() > 400 ? all.size() - 400 : 0);
  EXPECT_NE(all.find("server_shutting_down", err), std::string::npos);
  EXPECT_EQ(all.find("[DONE]"), std::string::npos);
  // The log says the drain ran out once, not every few milliseconds.
  const std::string log = s.log();
  size_t count = 0;
  for (size_t at = log.find("drain time is over"); at != std::string::npos; at = log.find("drain time is over", at + 1)) {
    ++count;
  }
  EXPECT_EQ(count, 1u) << log;
}

}  // namespace
}  // namespace kiln
