// Percentiles, workload generation and the figures computed from request records.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>

#include "bench_serve/report.h"
#include "bench_serve/stats.h"
#include "bench_serve/workload.h"
#include "kiln/core/str.h"

namespace kiln::bench_serve {
namespace {

TEST(BenchClientStats, PercentilesInterpolateLikeNumpy) {
  // Reference values from numpy.percentile (linear interpolation).
  std::vector<double> four = {1, 2, 3, 4};
  EXPECT_DOUBLE_EQ(percentile_sorted(four, 50), 2.5);
  EXPECT_DOUBLE_EQ(percentile_sorted(four, 90), 3.7);
  EXPECT_DOUBLE_EQ(percentile_sorted(four, 99), 3.97);
  EXPECT_DOUBLE_EQ(percentile_sorted(four, 0), 1);
  EXPECT_DOUBLE_EQ(percentile_sorted(four, 100), 4);
  std::vector<double> five = {15, 20, 35, 40, 50};
  EXPECT_DOUBLE_EQ(percentile_sorted(five, 40), 29);
  EXPECT_DOUBLE_EQ(percentile_sorted(five, 75), 40);
  EXPECT_DOUBLE_EQ(percentile_sorted({7}, 99), 7);
  EXPECT_DOUBLE_EQ(percentile_sorted({}, 50), 0);
}

TEST(BenchClientStats, SummarizeSortsAndMeasuresSpread) {
  std::vector<double> v;
  for (int i = 100; i >= 1; --i) v.push_back(i);  // unsorted on purpose
  Summary s = summarize(v);
  EXPECT_EQ(s.count, 100u);
  EXPECT_DOUBLE_EQ(s.mean, 50.5);
  EXPECT_NEAR(s.stddev, 28.866070047722118, 1e-12);  // numpy.std(range(1, 101))
  EXPECT_DOUBLE_EQ(s.min, 1);
  EXPECT_DOUBLE_EQ(s.max, 100);
  EXPECT_DOUBLE_EQ(s.p50, 50.5);
  EXPECT_DOUBLE_EQ(s.p90, 90.1);
  EXPECT_DOUBLE_EQ(s.p99, 99.01);
  Summary ms = scaled(s, 1000);
  EXPECT_DOUBLE_EQ(ms.p90, 90100);
  EXPECT_EQ(summarize({}).count, 0u);
}

TEST(BenchClientWorkload, RequestsArePureFunctionsOfSeedAndIndex) {
  WorkloadSettings ws;
  ws.prompt_tokens = 50;
  ws.output_tokens = 20;
  ws.seed = 42;
  auto a = Workload::create(ws);
  auto b = Workload::create(ws);
  ASSERT_TRUE(a.is_ok() && b.is_ok());
  std::set<std::string> prompts;
  for (uint64_t i = 0; i < 20; ++i) {
    RequestSpec x = a->request(i, false);
    EXPECT_EQ(x.prompt, b->request(i, false).prompt);
    EXPECT_EQ(split(x.prompt, ' ').size(), 50u);
    EXPECT_EQ(x.prompt_tokens_hint, 50);
    EXPECT_EQ(x.max_tokens, 20);
    prompts.insert(x.prompt);
    EXPECT_NE(x.prompt, a->request(i, true).prompt);
  }
  EXPECT_EQ(prompts.size(), 20u);
  ws.seed = 43;
  EXPECT_NE(Workload::create(ws)->request(0, false).prompt, a->request(0, false).prompt);
}

TEST(BenchClientWorkload, RandomLengthsStayInRange) {
  WorkloadSettings ws;
  ws.prompt_tokens = 100;
  ws.output_tokens = 10;
  ws.range_ratio = 0.5;
  ws.shared_prefix_tokens = 30;
  auto w = Workload::create(ws);
  ASSERT_TRUE(w.is_ok());
  std::set<int> seen;
  std::string prefix;
  for (uint64_t i = 0; i < 300; ++i) {
    RequestSpec s = w->request(i, false);
    int words = static_cast<int>(split(s.prompt, ' ').size());
    EXPECT_EQ(words, s.prompt_tokens_hint);
    EXPECT_GE(words, 30 + 50);
    EXPECT_LE(words, 30 + 150);
    EXPECT_GE(s.max_tokens, 5);
    EXPECT_LE(s.max_tokens, 15);
    seen.insert(s.max_tokens);
    auto head = split(s.prompt, ' ');
    std::string this_prefix;
    for (int k = 0; k < 30; ++k) this_prefix += head[static_cast<size_t>(k)] + " ";
    if (i == 0) prefix = this_prefix;
    EXPECT_EQ(this_prefix, prefix);  // every prompt starts with the shared prefix
  }
  EXPECT_EQ(seen.size(), 11u);  // 5..15 all drawn
  for (const auto& word : vocabulary()) EXPECT_EQ(word.find(' '), std::string_view::npos);
}

TEST(BenchClientWorkload, RejectsBadSettings) {
  WorkloadSettings ws;
  ws.range_ratio = 1.0;
  EXPECT_FALSE(Workload::create(ws).is_ok());
  ws.range_ratio = 0;
  ws.prompt_tokens = 0;
  EXPECT_FALSE(Workload::create(ws).is_ok());
}

class BenchClientDataset : public ::testing::Test {
 protected:
  std::string write(const std::string& text) {
    auto path = std::filesystem::temp_directory_path() /
                str_cat("kiln_bench_dataset_", ::testing::UnitTest::GetInstance()->current_test_info()->name(), ".jsonl");
    std::ofstream(path) << text;
    paths_.push_back(path);
    return path.string();
  }
  void TearDown() override {
    for (auto& p : paths_) std::filesystem::remove(p);
  }
  std::vector<std::filesystem::path> paths_;
};

TEST_F(BenchClientDataset, LoadsPromptsAndMessages) {
  std::string path = write(
      "{\"prompt\": \"hello there\", \"max_tokens\": 5}\n"
      "\n"
      "{\"messages\": [{\"role\": \"system\", \"content\": \"be brief\"}, {\"role\": \"user\", \"content\": \"hi\"}]}\n");
  auto specs = load_dataset(path, ApiEndpoint::kChat, 77);
  ASSERT_TRUE(specs.is_ok()) << specs.status().to_string();
  ASSERT_EQ(specs->size(), 2u);
  EXPECT_EQ((*specs)[0].prompt, "hello there");
  EXPECT_EQ((*specs)[0].max_tokens, 5);
  EXPECT_EQ((*specs)[1].messages.size(), 2u);
  EXPECT_EQ((*specs)[1].max_tokens, 77);

  WorkloadSettings ws;
  ws.dataset = path;
  auto w = Workload::create(ws);
  ASSERT_TRUE(w.is_ok());
  EXPECT_EQ(w->request(0, false).prompt, "hello there");
  EXPECT_EQ(w->request(3, false).messages.size(), 2u);  // cycles through the file
  EXPECT_EQ(w->request(0, true).messages.size(), 2u);   // warmup walks from the end
}

TEST_F(BenchClientDataset, NamesTheBadLine) {
  auto bad_json = load_dataset(write("{\"prompt\": \"a\"}\n{\"prompt\": \n"), ApiEndpoint::kChat, 8);
  ASSERT_FALSE(bad_json.is_ok());
  EXPECT_NE(bad_json.status().message().find("line 2"), std::string::npos) << bad_json.status().message();
  auto no_prompt = load_dataset(write("{\"text\": \"a\"}\n"), ApiEndpoint::kChat, 8);
  ASSERT_FALSE(no_prompt.is_ok());
  EXPECT_NE(no_prompt.status().message().find("neither `prompt` nor `messages`"), std::string::npos);
  auto bad_max = load_dataset(write("{\"prompt\": \"a\", \"max_tokens\": 0}\n"), ApiEndpoint::kChat, 8);
  EXPECT_FALSE(bad_max.is_ok());
  auto msgs_for_completions =
      load_dataset(write("{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}]}\n"), ApiEndpoint::kCompletions, 8);
  ASSERT_FALSE(msgs_for_completions.is_ok());
  EXPECT_NE(msgs_for_completions.status().message().find("--endpoint chat"), std::string::npos);
  EXPECT_FALSE(load_dataset(write("\n\n"), ApiEndpoint::kChat, 8).is_ok());
  EXPECT_EQ(load_dataset("/nonexistent/kiln.jsonl", ApiEndpoint::kChat, 8).status().code(), StatusCode::kNotFound);
}

RequestRecord record(double ttft, double e2e, int64_t out, int max_tokens, std::vector<float> itl) {
  RequestRecord r;
  r.ttft_s = ttft;
  r.e2e_s = e2e;
  r.output_tokens = out;
  r.max_tokens = max_tokens;
  r.prompt_tokens = 10;
  r.itl_s = std::move(itl);
  return r;
}

TEST(BenchClientReport, ComputesThroughputAndLatencies) {
  RunResult run;
  run.start = SteadyTime(std::chrono::seconds(100));
  run.end = run.start + std::chrono::seconds(2);
  run.measured.push_back(record(0.1, 0.4, 4, 4, {0.1f, 0.1f, 0.1f}));
  run.measured.push_back(record(0.3, 0.5, 3, 4, {0.1f, 0.1f}));  // short: 3 of 4
  RequestRecord failed;
  failed.error = ErrorKind::kHttpStatus;
  failed.http_status = 503;
  failed.error_message = "HTTP 503: busy";
  failed.e2e_s = 0.1;
  run.measured.push_back(failed);
  RequestRecord cancelled;
  cancelled.error = ErrorKind::kCancelled;
  run.measured.push_back(cancelled);
  RequestRecord estimated = record(0.2, 0.6, 5, 5, {});
  estimated.prompt_tokens = 0;
  estimated.prompt_tokens_hint = 12;
  run.measured.push_back(estimated);

  Metrics m = compute_metrics(run);
  EXPECT_EQ(m.completed, 3);
  EXPECT_EQ(m.failed, 1);
  EXPECT_EQ(m.cancelled, 1);
  EXPECT_DOUBLE_EQ(m.duration_s, 2);
  EXPECT_EQ(m.output_tokens, 12);
  EXPECT_EQ(m.input_tokens, 32);
  EXPECT_EQ(m.input_tokens_estimated, 1);
  EXPECT_EQ(m.short_outputs, 1);
  EXPECT_DOUBLE_EQ(m.request_throughput, 1.5);
  EXPECT_DOUBLE_EQ(m.output_throughput, 6);
  EXPECT_DOUBLE_EQ(m.total_token_throughput, 22);
  EXPECT_DOUBLE_EQ(m.mean_in_flight, (0.4 + 0.5 + 0.1 + 0.6) / 2);
  ASSERT_EQ(m.errors.count("http_503"), 1u);
  EXPECT_EQ(m.errors["http_503"].example, "HTTP 503: busy");
  EXPECT_DOUBLE_EQ(m.ttft.p50, 0.2);
  EXPECT_EQ(m.itl.count, 5u);
  EXPECT_NEAR(m.itl.mean, 0.1, 1e-7);
  // TPOT: (0.4-0.1)/3, (0.5-0.3)/2, (0.6-0.2)/4
  EXPECT_NEAR(m.tpot.mean, (0.1 + 0.1 + 0.1) / 3, 1e-12);

  std::string table =
      format_table(m, RunLabel{"http://h:1", "m", "chat", "concurrency 2", true, "cpu (2 threads, bf16 weights)"}, false);
  EXPECT_NE(table.find("server engine: cpu (2 threads, bf16 weights)"), std::string::npos);
  EXPECT_NE(table.find("Output token throughput (tok/s)"), std::string::npos);
  EXPECT_NE(table.find("6.00"), std::string::npos);
  EXPECT_NE(table.find("error http_503 x1: HTTP 503: busy"), std::string::npos);
  auto j = report_json(m, run, nlohmann::json{{"concurrency", 2}}, {"kiln", "bench", "serve"}, 1700000000123,
                       1700000002123, true);
  EXPECT_EQ(j["started_at"], "2023-11-14T22:13:20.123Z");
  EXPECT_EQ(j["results"]["completed"], 3);
  EXPECT_EQ(j["results"]["errors"]["http_503"]["count"], 1);
  EXPECT_DOUBLE_EQ(j["results"]["ttft_ms"]["p50"].get<double>(), 200);
  EXPECT_EQ(j["requests"].size(), 5u);
  EXPECT_EQ(j["requests"][2]["error"], "http_503");
}

}  // namespace
}  // namespace kiln::bench_serve
