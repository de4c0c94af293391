// `kiln bench serve` end to end against the real `kiln serve` (tiny checkpoint from the
// bench_serve_make_test_model fixture): both binaries run as child processes and the JSON report
// is checked against what the workload asked for.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "integration/server_process.h"

namespace kiln {
namespace {

namespace fs = std::filesystem;

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Runs `args` with stdout and stderr to `log`; returns the exit code, 128 + the signal that ended
// it, or -1 when it ran past `limit` (it is then killed).
int run(const std::vector<std::string>& args, const fs::path& log, std::chrono::seconds limit) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return -1;
  auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) {
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  return -1;
}

class BenchServeE2e : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* model = std::getenv("KILN_TEST_MODEL_DIR");
    ASSERT_TRUE(model && *model) << "KILN_TEST_MODEL_DIR is not set";
    model_ = model;
    dir_ = fs::temp_directory_path() / ("kiln_bench_serve_e2e_" + std::to_string(getpid()));
    fs::create_directories(dir_);
    started_ = server_.start(KILN_BINARY, {"--model", model_}, (dir_ / "serve.log").string());
    ASSERT_TRUE(started_) << server_.log();
    url_ = "http://127.0.0.1:" + std::to_string(server_.port());
  }
  void TearDown() override {
    if (started_) {
      EXPECT_EQ(server_.stop(), 0) << "kiln serve did not stop cleanly on SIGTERM";
    }
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  // Runs `kiln bench serve` with `args` and returns its JSON report.
  nlohmann::json bench(std::vector<std::string> args, int expect_rc = 0) {
    fs::path report = dir_ / "report.json";
    std::vector<std::string> argv = {KILN_BINARY, "bench", "serve", "--url", url_, "--quiet",
                                     "--json-out", report.string(), "--json-requests"};
    argv.insert(argv.end(), args.begin(), args.end());
    int rc = run(argv, dir_ / "bench.log", std::chrono::seconds(240));
    last_log_ = slurp(dir_ / "bench.log");
    EXPECT_EQ(rc, expect_rc) << last_log_ << "\n--- server ---\n" << server_.log();
    return nlohmann::json::parse(slurp(report), nullptr, false);
  }

  std::string model_;
  fs::path dir_;
  testing::ServerProcess server_;
  bool started_ = false;
  std::string url_;
  std::string last_log_;
};

TEST_F(BenchServeE2e, StreamedChatAtFixedConcurrency) {
  auto doc = bench({"--num-requests", "8", "--concurrency", "4", "--prompt-tokens", "24", "--output-tokens", "12",
                    "--warmup", "1", "--request-timeout", "120"});
  ASSERT_TRUE(doc.is_object()) << last_log_;
  EXPECT_NE(last_log_.find("Output token throughput (tok/s)"), std::string::npos) << last_log_;
  const auto& r = doc["results"];
  EXPECT_EQ(r["completed"], 8) << doc.dump(2);
  EXPECT_EQ(r["failed"], 0) << doc.dump(2);
  // ignore_eos makes every output exactly max_tokens long, as the server's usage reports.
  EXPECT_EQ(r["output_tokens"], 8 * 12);
  EXPECT_EQ(r["short_outputs"], 0);
  EXPECT_EQ(r["input_tokens_estimated_requests"], 0);
  EXPECT_GT(r["output_throughput"].get<double>(), 0);
  EXPECT_EQ(r["ttft_ms"]["count"], 8);
  EXPECT_EQ(r["tpot_ms"]["count"], 8);
  EXPECT_GT(r["itl_ms"]["count"].get<int>(), 0);
  EXPECT_LE(r["mean_in_flight"].get<double>(), 4.01);
  EXPECT_LE(r["connections_opened"].get<int>(), 4) << "clients keep their connections alive";
  EXPECT_EQ(doc["settings"]["concurrency"], 4);
  EXPECT_EQ(doc["settings"]["model"], fs::path(model_).filename().string()) << "found with GET /v1/models";
  // kiln lists the loaded model's engine; the tests' servers run f32 weights (KILN_DTYPE).
  ASSERT_TRUE(doc.contains("server_device")) << doc.dump(2);
  EXPECT_NE(doc["server_device"].get<std::string>().find("f32 weights"), std::string::npos) << doc["server_device"];
  EXPECT_NE(last_log_.find("server engine: cpu ("), std::string::npos) << last_log_;
  EXPECT_EQ(doc["command_line"][1], "bench");
  ASSERT_EQ(doc["requests"].size(), 8u);
  for (const auto& req : doc["requests"]) {
    EXPECT_EQ(req["output_tokens"], 12);
    EXPECT_GE(req["prompt_tokens"].get<int>(), 24);  // the prompt plus the chat template's tokens
    EXPECT_GT(req["ttft_ms"].get<double>(), 0);
    EXPECT_LE(req["ttft_ms"].get<double>(), req["e2e_ms"].get<double>());
  }
}

TEST_F(BenchServeE2e, CompletionsAtAPoissonRateAndWholeResponses) {
  auto streamed = bench({"--endpoint", "completions", "--num-requests", "6", "--request-rate", "20",
                         "--max-concurrency", "3", "--prompt-tokens", "16", "--output-tokens", "8", "--warmup", "0",
                         "--random-range-ratio", "0.5", "--seed", "3"});
  ASSERT_TRUE(streamed.is_object()) << last_log_;
  EXPECT_EQ(streamed["results"]["completed"], 6) << streamed.dump(2);
  int64_t asked = 0;
  for (const auto& req : streamed["requests"]) {
    asked += req["max_tokens"].get<int64_t>();
    EXPECT_EQ(req["output_tokens"], req["max_tokens"]);
    // A raw prompt of N vocabulary words is N tokens, plus at most a BOS.
    EXPECT_GE(req["prompt_tokens"].get<int>(), 8);
    EXPECT_LE(req["prompt_tokens"].get<int>(), 25);
  }
  EXPECT_EQ(streamed["results"]["output_tokens"], asked);

  auto whole = bench({"--no-stream", "--num-requests", "3", "--output-tokens", "5", "--prompt-tokens", "10",
                      "--warmup", "0"});
  ASSERT_TRUE(whole.is_object()) << last_log_;
  EXPECT_EQ(whole["results"]["completed"], 3) << whole.dump(2);
  EXPECT_EQ(whole["results"]["output_tokens"], 15);
  for (const auto& req : whole["requests"]) EXPECT_EQ(req["ttft_ms"], req["e2e_ms"]);
}

TEST_F(BenchServeE2e, ServerErrorsAreCountedByStatus) {
  // A model the server does not have: every request is answered 404 in the OpenAI envelope.
  auto doc = bench({"--model", "no-such-model", "--num-requests", "3", "--warmup", "0"}, /*expect_rc=*/1);
  ASSERT_TRUE(doc.is_object()) << last_log_;
  EXPECT_EQ(doc["results"]["completed"], 0);
  EXPECT_EQ(doc["results"]["failed"], 3);
  ASSERT_TRUE(doc["results"]["errors"].contains("http_404")) << doc.dump(2);
  EXPECT_EQ(doc["results"]["errors"]["http_404"]["count"], 3);
}

TEST_F(BenchServeE2e, JsonSchemaConstrainsEveryRequest) {
  // A schema whose every value is a few tokens: with it, each output ends when the value is
  // complete (before max_tokens, despite ignore_eos), which only a constrained server does.
  fs::path schema = dir_ / "schema.json";
  std::ofstream(schema) << R"({"enum": ["yes", "no", "maybe"]})";
  auto doc = bench({"--num-requests", "4", "--concurrency", "2", "--output-tokens", "24", "--warmup", "0",
                    "--json-schema", schema.string()});
  ASSERT_TRUE(doc.is_object()) << last_log_;
  EXPECT_EQ(doc["results"]["completed"], 4) << doc.dump(2);
  EXPECT_EQ(doc["results"]["short_outputs"], 4) << doc.dump(2);
  EXPECT_EQ(doc["settings"]["json_schema_file"], schema.string());
  EXPECT_EQ(doc["settings"]["extra_body"]["response_format"]["json_schema"]["schema"]["enum"][2], "maybe");
  for (const auto& req : doc["requests"]) EXPECT_LT(req["output_tokens"].get<int>(), 24);

  // What the server refuses is counted as its 400s.
  std::ofstream(schema) << R"({"type": "object", "dependentSchemas": {}})";
  auto refused = bench({"--num-requests", "2", "--warmup", "0", "--json-schema", schema.string()}, /*expect_rc=*/1);
  ASSERT_TRUE(refused.is_object()) << last_log_;
  EXPECT_EQ(refused["results"]["errors"]["http_400"]["count"], 2) << refused.dump(2);

  // A file that is not a schema stops the benchmark before it sends anything.
  std::ofstream(schema) << "[1, 2]";
  std::vector<std::string> argv = {KILN_BINARY, "bench", "serve", "--url", url_, "--json-schema", schema.string()};
  EXPECT_EQ(run(argv, dir_ / "bad.log", std::chrono::seconds(60)), 1);
  EXPECT_NE(slurp(dir_ / "bad.log").find("must hold a JSON Schema"), std::string::npos) << slurp(dir_ / "bad.log");
}

}  // namespace
}  // namespace kiln
