// The load generator against a real HTTP peer on 127.0.0.1 whose pacing the test controls:
// timings, token counts, keep-alive, concurrency, arrival rates and every error kind.
#include <gtest/gtest.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <limits>
#include <thread>

#include "bench_client_peer.h"
#include "bench_serve/report.h"
#include "bench_serve/runner.h"

namespace kiln::bench_serve {
namespace {

using std::chrono::milliseconds;
using testing::chat_stream;
using testing::Peer;
using testing::PeerPiece;
using testing::PeerReply;
using testing::PeerRequest;

RunSettings settings_for(const std::string& url) {
  RunSettings s;
  auto target = parse_base_url(url);
  EXPECT_TRUE(target.is_ok());
  s.target = *target;
  EXPECT_TRUE(resolve_target(&s.target).is_ok());
  s.body.model = "tiny";
  s.client.timeout_s = 10;
  s.progress_interval_s = 0;
  s.handle_signals = false;
  return s;
}

Workload workload(int prompt_tokens = 8, int output_tokens = 5) {
  WorkloadSettings ws;
  ws.prompt_tokens = prompt_tokens;
  ws.output_tokens = output_tokens;
  ws.seed = 1;
  return std::move(Workload::create(ws)).value();
}

PeerReply stream_reply(int tokens, milliseconds first, milliseconds gap, int usage = -2) {
  PeerReply r;
  r.pieces = chat_stream(tokens, first, gap, usage == -2 ? tokens : usage);
  return r;
}

TEST(BenchClientRun, MeasuresTtftAndInterTokenGapsAsPaced) {
  Peer peer([](const PeerRequest&) { return stream_reply(5, milliseconds(150), milliseconds(40)); });
  RunSettings s = settings_for(peer.url());
  s.num_requests = 3;
  s.client.api_key = "sk-test";
  auto run = run_benchmark(s, workload());
  ASSERT_TRUE(run.is_ok()) << run.status().to_string();
  ASSERT_EQ(run->measured.size(), 3u);
  for (const RequestRecord& r : run->measured) {
    ASSERT_TRUE(r.ok()) << r.error_message;
    EXPECT_EQ(r.http_status, 200);
    // The role-only chunk sent at once is not a token: the first token comes after 150 ms.
    EXPECT_GE(r.ttft_s, 0.150);
    EXPECT_LT(r.ttft_s, 0.150 + 0.100);  // well below the 310 ms a late stamp would give
    ASSERT_EQ(r.itl_s.size(), 4u);
    // Each gap is one paced 40 ms; a late arrival shortens the next gap by as much, so single gaps
    // only bound loosely (not bunched, not doubled) and their sum tightly.
    float sum = 0;
    for (float gap : r.itl_s) {
      EXPECT_GT(gap, 0.020f);
      EXPECT_LT(gap, 0.040f + 0.080f);
      sum += gap;
    }
    EXPECT_GE(sum, 4 * 0.040f - 0.010f);
    EXPECT_GE(r.e2e_s, 0.150 + 4 * 0.040);
    EXPECT_NEAR(r.tpot_s(), 0.040, 0.030);
    EXPECT_EQ(r.output_tokens, 5);
    EXPECT_TRUE(r.usage_seen);
    EXPECT_EQ(r.prompt_tokens, 7);
    EXPECT_EQ(r.finish_reason, "length");
  }
  // One client, back to back, over one kept-alive connection.
  EXPECT_EQ(peer.connections(), 1);
  EXPECT_EQ(run->connections_opened, 1);
  auto reqs = peer.requests();
  ASSERT_EQ(reqs.size(), 3u);
  EXPECT_EQ(reqs[0].target, "/v1/chat/completions");
  EXPECT_EQ(reqs[0].authorization, "Bearer sk-test");
  EXPECT_EQ(reqs[0].body["model"], "tiny");
  EXPECT_EQ(reqs[0].body["max_tokens"], 5);
  EXPECT_EQ(reqs[0].body["ignore_eos"], true);
  EXPECT_EQ(reqs[0].body["stream_options"]["include_usage"], true);
  EXPECT_NE(reqs[0].body["messages"][0]["content"], reqs[1].body["messages"][0]["content"]);

  Metrics m = compute_metrics(*run);
  EXPECT_EQ(m.completed, 3);
  EXPECT_EQ(m.output_tokens, 15);
  EXPECT_NEAR(m.itl.p50, 0.040, 0.030);
  EXPECT_NEAR(m.ttft.mean, 0.150, 0.080);
}

TEST(BenchClientRun, CountsChunksWhenTheServerSendsNoUsage) {
  Peer peer([](const PeerRequest&) { return stream_reply(6, milliseconds(5), milliseconds(5), -1); });
  RunSettings s = settings_for(peer.url());
  s.num_requests = 2;
  auto run = run_benchmark(s, workload());
  ASSERT_TRUE(run.is_ok());
  for (const RequestRecord& r : run->measured) {
    ASSERT_TRUE(r.ok()) << r.error_message;
    EXPECT_FALSE(r.usage_seen);
    EXPECT_EQ(r.output_tokens, 6);
    EXPECT_EQ(r.prompt_tokens, 0);
  }
  EXPECT_EQ(compute_metrics(*run).input_tokens_estimated, 2);
}

TEST(BenchClientRun, ReadsCloseDelimitedStreamsAndWholeResponses) {
  Peer sse_peer([](const PeerRequest&) {
    PeerReply r = stream_reply(3, milliseconds(20), milliseconds(20));
    r.chunked = false;
    return r;
  });
  RunSettings s = settings_for(sse_peer.url());
  s.num_requests = 2;
  auto run = run_benchmark(s, workload());
  ASSERT_TRUE(run.is_ok());
  for (const RequestRecord& r : run->measured) {
    ASSERT_TRUE(r.ok()) << r.error_message;
    EXPECT_EQ(r.output_tokens, 3);
  }
  EXPECT_EQ(sse_peer.connections(), 2);  // the server closed each connection

  Peer json_peer([](const PeerRequest& req) {
    PeerReply r;
    r.content_type = "application/json";
    r.pieces.push_back({milliseconds(60), nlohmann::json{{"choices", {{{"message", {{"content", "a b c"}}}, {"finish_reason", "length"}}}},
                                                         {"usage", {{"prompt_tokens", 9}, {"completion_tokens", req.body["max_tokens"]}}}}
                                              .dump()});
    return r;
  });
  RunSettings js = settings_for(json_peer.url());
  js.num_requests = 2;
  js.body.stream = false;
  js.client.stream = false;
  js.body.endpoint = js.client.endpoint = ApiEndpoint::kChat;
  auto whole = run_benchmark(js, workload(8, 11));
  ASSERT_TRUE(whole.is_ok());
  for (const RequestRecord& r : whole->measured) {
    ASSERT_TRUE(r.ok()) << r.error_message;
    EXPECT_EQ(r.output_tokens, 11);
    EXPECT_EQ(r.prompt_tokens, 9);
    EXPECT_GE(r.ttft_s, 0.060);
    EXPECT_DOUBLE_EQ(r.ttft_s, r.e2e_s) << "a whole response arrives at once";
  }
  EXPECT_EQ(json_peer.requests()[0].body["stream"], false);
  EXPECT_EQ(json_peer.connections(), 1);
}

TEST(BenchClientRun, FixedConcurrencyKeepsThatManyInFlight) {
  Peer peer([](const PeerRequest&) { return stream_reply(2, milliseconds(60), milliseconds(20)); });
  RunSettings s = settings_for(peer.url());
  s.num_requests = 12;
  s.concurrency = 4;
  s.threads = 2;
  auto run = run_benchmark(s, workload());
  ASSERT_TRUE(run.is_ok());
  EXPECT_EQ(run->measured.size(), 12u);
  for (size_t i = 0; i < run->measured.size(); ++i) {
    EXPECT_TRUE(run->measured[i].ok());
    EXPECT_EQ(run->measured[i].index, static_cast<int64_t>(i));
  }
  EXPECT_EQ(peer.max_in_flight(), 4);
  EXPECT_EQ(peer.connections(), 4);
  Metrics m = compute_metrics(*run);
  EXPECT_GT(m.mean_in_flight, 3.0);
  EXPECT_LE(m.mean_in_flight, 4.01);
}

TEST(BenchClientRun, PoissonArrivalsFollowTheSeededSchedule) {
  Peer peer([](const PeerRequest&) { return stream_reply(1, milliseconds(1), milliseconds(1)); });
  RunSettings s = settings_for(peer.url());
  s.num_requests = 20;
  s.request_rate = 40;
  s.seed = 7;
  auto run = run_benchmark(s, workload());
  ASSERT_TRUE(run.is_ok());
  ASSERT_EQ(run->measured.size(), 20u);
  // The same draws the dispatcher made: request i starts at the sum of the first i+1 gaps.
  Rng rng(mix_seed(7, 0x5EED'A001'0000ull));
  double t = 0;
  for (const RequestRecord& r : run->measured) {
    t += rng.exponential(40);
    double started = seconds_between(run->start, r.started);
    EXPECT_GE(started, t - 0.002) << "request " << r.index;
    EXPECT_LT(started, t + 0.100) << "request " << r.index;
  }
}

TEST(BenchClientRun, MaxConcurrencyCapsABurst) {
  Peer peer([](const PeerRequest&) { return stream_reply(2, milliseconds(50), milliseconds(10)); });
  RunSettings s = settings_for(peer.url());
  s.num_requests = 9;
  s.request_rate = std::numeric_limits<double>::infinity();
  s.max_concurrency = 3;
  auto run = run_benchmark(s, workload());
  ASSERT_TRUE(run.is_ok());
  EXPECT_EQ(compute_metrics(*run).completed, 9);
  EXPECT_EQ(peer.max_in_flight(), 3);
  EXPECT_LE(peer.connections(), 3);
}

TEST(BenchClientRun, WarmupIsSentFirstAndKeptApart) {
  Peer peer([](const PeerRequest&) { return stream_reply(2, milliseconds(5), milliseconds(5)); });
  RunSettings s = settings_for(peer.url());
  s.num_requests = 3;
  s.warmup = 2;
  Workload w = workload();
  auto run = run_benchmark(s, w);
  ASSERT_TRUE(run.is_ok());
  EXPECT_EQ(run->warmup.size(), 2u);
  EXPECT_EQ(run->measured.size(), 3u);
  auto reqs = peer.requests();
  ASSERT_EQ(reqs.size(), 5u);
  EXPECT_EQ(reqs[0].body["messages"][0]["content"], w.request(0, true).prompt);
  EXPECT_EQ(reqs[2].body["messages"][0]["content"], w.request(0, false).prompt);
  for (const RequestRecord& r : run->measured) EXPECT_GE(r.started, run->start);
  EXPECT_EQ(compute_metrics(*run).warmup_requests, 2);
}

TEST(BenchClientRun, DurationBoundsTheRun) {
  Peer peer([](const PeerRequest&) { return stream_reply(2, milliseconds(50), milliseconds(50)); });
  RunSettings s = settings_for(peer.url());
  s.num_requests = -1;
  s.duration_s = 0.5;
  s.concurrency = 2;
  auto t0 = SteadyTime::clock::now();
  auto run = run_benchmark(s, workload());
  double took = seconds_between(t0, SteadyTime::clock::now());
  ASSERT_TRUE(run.is_ok());
  EXPECT_LT(took, 0.5 + 0.5);
  // Two clients, 100 ms each: about ten requests in half a second.
  EXPECT_GE(run->measured.size(), 6u);
  EXPECT_LE(run->measured.size(), 12u);
  for (const RequestRecord& r : run->measured) EXPECT_TRUE(r.ok());
}

TEST(BenchClientRun, RetriesOnceWhenAKeptAliveConnectionWasClosed) {
  // The server drops the connection after every reply without saying so in its headers.
  Peer peer([](const PeerRequest&) {
    PeerReply r = stream_reply(2, milliseconds(5), milliseconds(5));
    r.close_after = true;
    return r;
  });
  RunSettings s = settings_for(peer.url());
  s.num_requests = 3;
  auto run = run_benchmark(s, workload());
  ASSERT_TRUE(run.is_ok());
  for (const RequestRecord& r : run->measured) EXPECT_TRUE(r.ok()) << r.error_message;
  EXPECT_EQ(peer.connections(), 3);
}

TEST(BenchClientRun, ClassifiesEveryKindOfError) {
  Peer peer([](const PeerRequest& req) {
    int which = static_cast<int>(req.body["max_tokens"]);
    PeerReply r;
    switch (which) {
      case 1:  // 503 with the OpenAI envelope
        r.status = 503;
        r.content_type = "application/json";
        r.pieces.push_back({milliseconds(0), R"({"error":{"message":"queue full","type":"server_error"}})"});
        break;
      case 2:  // an error event inside a 200 stream
        r.pieces.push_back({milliseconds(0), "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n"});
        r.pieces.push_back({milliseconds(0), "data: {\"error\":{\"message\":\"engine failed\"}}\n\n"});
        break;
      case 3:  // a chunk that is not JSON
        r.pieces.push_back({milliseconds(0), "data: {oops\n\n"});
        break;
      case 4:  // the body ends without [DONE]
        r.pieces.push_back({milliseconds(0), "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n"});
        break;
      case 5:  // the connection drops mid-stream
        r.pieces.push_back({milliseconds(0), "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n"});
        r.end_body = false;
        break;
      default:  // no answer at all
        r.never_answer = true;
    }
    return r;
  });
  // One request per kind: the dataset's max_tokens tells the peer which failure to stage.
  auto path = std::filesystem::temp_directory_path() / "kiln_bench_errors.jsonl";
  {
    std::ofstream f(path);
    for (int i = 1; i <= 6; ++i) f << "{\"prompt\": \"p\", \"max_tokens\": " << i << "}\n";
  }
  WorkloadSettings ws;
  ws.dataset = path.string();
  auto w = Workload::create(ws);
  std::filesystem::remove(path);
  ASSERT_TRUE(w.is_ok());
  RunSettings s = settings_for(peer.url());
  s.num_requests = 6;
  s.client.timeout_s = 0.4;
  auto run = run_benchmark(s, *w);
  ASSERT_TRUE(run.is_ok());
  ASSERT_EQ(run->measured.size(), 6u);
  const auto& m = run->measured;
  EXPECT_EQ(m[0].error, ErrorKind::kHttpStatus);
  EXPECT_EQ(m[0].http_status, 503);
  EXPECT_EQ(m[0].error_message, "HTTP 503: queue full");
  EXPECT_EQ(m[1].error, ErrorKind::kServerError);
  EXPECT_EQ(m[1].error_message, "engine failed");
  EXPECT_EQ(m[2].error, ErrorKind::kMalformed);
  EXPECT_EQ(m[3].error, ErrorKind::kMalformed);
  EXPECT_NE(m[3].error_message.find("[DONE]"), std::string::npos);
  EXPECT_EQ(m[4].error, ErrorKind::kIo);
  EXPECT_EQ(m[5].error, ErrorKind::kTimeout);
  EXPECT_GE(m[5].e2e_s, 0.4);
  EXPECT_LT(m[5].e2e_s, 1.0);
  Metrics metrics = compute_metrics(*run);
  EXPECT_EQ(metrics.failed, 6);
  EXPECT_EQ(metrics.errors.size(), 5u);  // two malformed
  EXPECT_EQ(metrics.errors["malformed"].count, 2);
}

TEST(BenchClientRun, ConnectFailuresAreCountedNotFatal) {
  unsigned short port;
  {
    boost::asio::io_context ioc;
    boost::asio::ip::tcp::acceptor a(ioc, {boost::asio::ip::make_address("127.0.0.1"), 0});
    port = a.local_endpoint().port();
  }  // closed again: nothing listens there now
  RunSettings s = settings_for("http://127.0.0.1:" + std::to_string(port));
  s.num_requests = 3;
  auto run = run_benchmark(s, workload());
  ASSERT_TRUE(run.is_ok());
  for (const RequestRecord& r : run->measured) EXPECT_EQ(r.error, ErrorKind::kConnect);
  EXPECT_EQ(compute_metrics(*run).errors["connect"].count, 3);
  // With warmup, a server that never answers fails the run with the reason.
  s.warmup = 1;
  auto warm = run_benchmark(s, workload());
  ASSERT_FALSE(warm.is_ok());
  EXPECT_NE(warm.status().message().find("connect"), std::string::npos);
}

TEST(BenchClientRun, SigintStopsTheRunAndKeepsWhatFinished) {
  std::atomic<int> served{0};
  Peer peer([&](const PeerRequest&) {
    PeerReply r = stream_reply(2, milliseconds(5), milliseconds(5));
    if (++served > 2) r.never_answer = true;
    return r;
  });
  RunSettings s = settings_for(peer.url());
  s.num_requests = 10;
  s.handle_signals = true;
  std::thread killer([] {
    std::this_thread::sleep_for(milliseconds(300));
    std::raise(SIGINT);
  });
  auto t0 = SteadyTime::clock::now();
  auto run = run_benchmark(s, workload());
  killer.join();
  ASSERT_TRUE(run.is_ok());
  EXPECT_LT(seconds_between(t0, SteadyTime::clock::now()), 2.0);
  EXPECT_TRUE(run->interrupted);
  Metrics m = compute_metrics(*run);
  EXPECT_EQ(m.completed, 2);
  EXPECT_EQ(m.cancelled, 1);
  EXPECT_EQ(m.failed, 0);
}

}  // namespace
}  // namespace kiln::bench_serve
