// Jobs through the real server: every test runs on SQLite and on a real PostgreSQL server.
#include <gtest/gtest.h>

#include <fstream>

#include "integration/jobs_fixture.h"

namespace kiln::testing {
namespace {

TEST_P(JobsServer, RecordsRequestsAndAnswersTheJobsApi) {
  start();
  ASSERT_EQ(post("/v1/chat/completions", chat(false, 4), "a-1").status, 200);
  RawResponse streamed = post("/v1/chat/completions", chat(true, 4), "a-2");
  ASSERT_EQ(streamed.status, 200);
  ASSERT_NE(streamed.body.find("[DONE]"), std::string::npos);
  ASSERT_EQ(post("/v1/chat/completions", R"({"model":"tiny","messages":[]})", "a-3").status, 400);
  ASSERT_TRUE(eventually([&] {
    return job_status("a-1") == "completed" && job_status("a-2") == "completed" && job_status("a-3") == "failed";
  }));

  json a1 = get_json("/v1/jobs/a-1");
  EXPECT_EQ(a1["object"], "job");
  EXPECT_EQ(a1["model"], "tiny");
  EXPECT_EQ(a1["endpoint"], "/v1/chat/completions");
  EXPECT_EQ(a1["client"], "127.0.0.1");
  EXPECT_EQ(a1["node"], "test-node");
  EXPECT_EQ(a1["stream"], false);
  EXPECT_EQ(a1["usage"]["completion_tokens"], 4);
  EXPECT_GT(a1["usage"]["prompt_tokens"].get<int>(), 0);
  EXPECT_EQ(a1["finish_reason"], "length");
  EXPECT_EQ(a1["http_status"], 200);
  EXPECT_TRUE(a1["error"].is_null());
  EXPECT_FALSE(a1.contains("request_body"));  // bodies only with --store-bodies
  EXPECT_GE(a1["ttft_ms"].get<int64_t>(), a1["queue_wait_ms"].get<int64_t>());
  EXPECT_GE(a1["duration_ms"].get<int64_t>(), a1["ttft_ms"].get<int64_t>());
  EXPECT_EQ(get_json("/v1/jobs/a-2")["stream"], true);
  json a3 = get_json("/v1/jobs/a-3");
  EXPECT_EQ(a3["http_status"], 400);
  EXPECT_EQ(a3["error"]["code"], "invalid_request");

  json failed = get_json("/v1/jobs?status=failed");
  ASSERT_EQ(failed["data"].size(), 1u);
  EXPECT_EQ(failed["data"][0]["id"], "a-3");
  json page1 = get_json("/v1/jobs?limit=2");
  ASSERT_EQ(page1["data"].size(), 2u);
  EXPECT_EQ(page1["has_more"], true);
  EXPECT_EQ(page1["data"][0]["id"], "a-3");  // newest first
  json page2 = get_json("/v1/jobs?limit=2&after=" + page1["last_id"].get<std::string>());
  ASSERT_EQ(page2["data"].size(), 1u);
  EXPECT_EQ(page2["data"][0]["id"], "a-1");
  EXPECT_EQ(page2["has_more"], false);
  EXPECT_EQ(get_json("/v1/jobs?client=127.0.0.1&endpoint=/v1/chat/completions")["data"].size(), 3u);
  EXPECT_EQ(get_json("/v1/jobs?model=tiny")["data"].size(), 2u);  // a-3 was refused before its model was resolved
  EXPECT_EQ(get_json("/v1/jobs?until=1")["data"].size(), 0u);

  int status = 0;
  get_json("/v1/jobs?limit=1001", &status);
  EXPECT_EQ(status, 400);
  get_json("/v1/jobs?status=done", &status);
  EXPECT_EQ(status, 400);
  get_json("/v1/jobs?after=nope", &status);
  EXPECT_EQ(status, 400);
  get_json("/v1/jobs/nope", &status);
  EXPECT_EQ(status, 404);

  json stats = get_json("/v1/jobs/stats?window=1h");
  EXPECT_EQ(stats["total"], 3);
  EXPECT_EQ(stats["by_status"]["completed"], 2);
  EXPECT_EQ(stats["by_status"]["failed"], 1);
  EXPECT_EQ(stats["usage"]["completion_tokens"], 8);
  EXPECT_EQ(stats["latency_ms"]["duration"]["count"], 3);
  get_json("/v1/jobs/stats?window=soon", &status);
  EXPECT_EQ(status, 400);

  RawResponse jsonl = send(http_request("GET", "/v1/jobs/export?format=jsonl"));
  ASSERT_EQ(jsonl.status, 200);
  EXPECT_EQ(jsonl.header("content-type"), "application/x-ndjson");
  std::istringstream lines(jsonl.body);
  int n = 0;
  for (std::string line; std::getline(lines, line);) {
    json j = json::parse(line);
    EXPECT_EQ(j["object"], "job");
    ++n;
  }
  EXPECT_EQ(n, 3);
  RawResponse csv = send(http_request("GET", "/v1/jobs/export?format=csv&status=completed"));
  ASSERT_EQ(csv.status, 200);
  EXPECT_EQ(csv.body.rfind("id,node,model,", 0), 0u);
  EXPECT_EQ(std::count(csv.body.begin(), csv.body.end(), '\n'), 3);  // header + 2 jobs
  EXPECT_EQ(send(http_request("GET", "/v1/jobs/export?format=xml")).status, 400);
}

// kiln.toml's per-model store_bodies: one model keeps its bodies, the other (server default) not.
TEST_P(JobsServer, StoreBodiesPerModel) {
  std::ofstream(dir_ + "/kiln.toml") << "[models.\"tiny-bodies\"]\npath = \"" << test_model_dir()
                                     << "\"\nstore_bodies = true\n";
  start({"--config", dir_ + "/kiln.toml"});
  json body = json::parse(chat(false, 2));
  body["model"] = "tiny-bodies";
  ASSERT_EQ(post("/v1/chat/completions", body.dump(), "sb-1").status, 200);
  ASSERT_EQ(post("/v1/chat/completions", chat(false, 2), "sb-2").status, 200);
  ASSERT_TRUE(eventually([&] { return job_status("sb-1") == "completed" && job_status("sb-2") == "completed"; }));
  json kept = get_json("/v1/jobs/sb-1");
  EXPECT_EQ(kept["model"], "tiny-bodies");
  ASSERT_TRUE(kept.contains("request_body"));
  EXPECT_EQ(json::parse(kept["request_body"].get<std::string>())["model"], "tiny-bodies");
  ASSERT_TRUE(kept.contains("response_body"));
  EXPECT_EQ(json::parse(kept["response_body"].get<std::string>())["object"], "chat.completion");
  json plain = get_json("/v1/jobs/sb-2");
  EXPECT_FALSE(plain.contains("request_body"));
  EXPECT_FALSE(plain.contains("response_body"));
}

TEST_P(JobsServer, DeleteCancelsARunningStreamAndIsIdempotent) {
  start();
  RawClient client(server_->port());
  ASSERT_TRUE(client.send(http_request("POST", "/v1/chat/completions", chat(true, 1900, true), "X-Request-ID: long-1\r\n")));
  ASSERT_TRUE(eventually([&] { return job_status("long-1") == "running"; }));
  RawResponse del = send(http_request("DELETE", "/v1/jobs/long-1"));
  ASSERT_EQ(del.status, 200) << del.body;
  EXPECT_EQ(json::parse(del.body)["status"], "cancelled");
  auto r = client.read_response(60000);
  ASSERT_TRUE(r.has_value());
  EXPECT_NE(r->body.find("request_cancelled"), std::string::npos) << r->body.substr(r->body.size() - 400);
  EXPECT_EQ(r->body.find("[DONE]"), std::string::npos);
  ASSERT_TRUE(eventually([&] { return job_status("long-1") == "cancelled"; }));
  json j = get_json("/v1/jobs/long-1");
  EXPECT_EQ(j["error"]["code"], "cancelled");
  EXPECT_LT(j["usage"]["completion_tokens"].get<int>(), 1900);
  RawResponse again = send(http_request("DELETE", "/v1/jobs/long-1"));
  EXPECT_EQ(again.status, 200);
  EXPECT_EQ(json::parse(again.body)["status"], "cancelled");
  EXPECT_EQ(send(http_request("DELETE", "/v1/jobs/no-such-job")).status, 404);
}

TEST_P(JobsServer, KillNineThenRestartLeavesNoJobRunning) {
  start();
  ASSERT_EQ(post("/v1/chat/completions", chat(false, 2), "before").status, 200);
  std::vector<std::unique_ptr<RawClient>> clients;
  for (int i = 0; i < 3; ++i) {
    clients.push_back(std::make_unique<RawClient>(server_->port()));
    ASSERT_TRUE(clients.back()->send(http_request("POST", "/v1/chat/completions", chat(true, 1900, true),
                                                  "X-Request-ID: killed-" + std::to_string(i) + "\r\n")));
  }
  ASSERT_TRUE(eventually([&] {
    json open = get_json("/v1/jobs?status=running");
    return open.is_object() && open["data"].size() >= 1 && job_status("before") == "completed";
  }));
  server_->kill_now();
  clients.clear();

  start();
  for (const char* s : {"running", "queued"}) {
    json open = get_json(std::string("/v1/jobs?status=") + s);
    EXPECT_EQ(open["data"].size(), 0u) << s << ": " << open.dump();
  }
  EXPECT_EQ(job_status("before"), "completed");
  json failed = get_json("/v1/jobs?status=failed");
  ASSERT_GE(failed["data"].size(), 1u);
  for (const auto& j : failed["data"]) {
    EXPECT_EQ(j["error"]["code"], "server_restarted");
    EXPECT_GT(j["finished_ms"].get<int64_t>(), 0);
  }
  EXPECT_NE(server_->log().find("left open by the previous run"), std::string::npos);
  // The store still takes writes.
  ASSERT_EQ(post("/v1/chat/completions", chat(false, 2), "after").status, 200);
  ASSERT_TRUE(eventually([&] { return job_status("after") == "completed"; }));
  if (!pg()) {
    auto c = jobs::open_sqlite(database());
    ASSERT_TRUE(c.is_ok());
    auto rows = (*c)->query("PRAGMA integrity_check");
    ASSERT_TRUE(rows.is_ok());
    EXPECT_EQ(*(*rows)[0][0], "ok");
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, JobsServer, ::testing::Values("sqlite", "postgresql"),
                         [](const auto& p) { return p.param; });


// PostgreSQL stops answering mid-run: requests are still served, what cannot be written is
// counted in /metrics, and writing resumes once the server is back.
class JobsPostgresOutage : public JobsServer {};

TEST_P(JobsPostgresOutage, RequestsAreServedAndDropsCountedWhileTheDatabaseIsDown) {
  start({"--job-queue-size", "4"});
  ASSERT_EQ(post("/v1/chat/completions", chat(false, 2), "up-1").status, 200);
  ASSERT_TRUE(eventually([&] { return job_status("up-1") == "completed"; }));
  ASSERT_TRUE(postgres()->stop());
  for (int i = 0; i < 12; ++i) {
    EXPECT_EQ(post("/v1/chat/completions", chat(false, 2), "down-" + std::to_string(i)).status, 200);
  }
  int status = 0;
  get_json("/v1/jobs/up-1", &status);
  EXPECT_EQ(status, 503);  // reads say the store is unavailable, never hang
  std::string page = send(http_request("GET", "/metrics")).body;
  EXPECT_GT(metric(page, "kiln_jobs_dropped_total{store=\"postgresql\",reason=\"queue_full\"}"), 0) << page;
  EXPECT_NE(server_->log().find("dropped"), std::string::npos);
  ASSERT_TRUE(postgres()->resume()) << postgres()->error();
  // The writer retries on its own; until it has, its full queue would drop up-2's records too.
  ASSERT_TRUE(eventually([&] { return server_->log().find("writing resumed") != std::string::npos; }));
  ASSERT_EQ(post("/v1/chat/completions", chat(false, 2), "up-2").status, 200);
  ASSERT_TRUE(eventually([&] { return job_status("up-2") == "completed"; }))
      << server_->log();
  page = send(http_request("GET", "/metrics")).body;
  EXPECT_GT(metric(page, "kiln_jobs_write_errors_total{store=\"postgresql\"}"), 0);
  // Final snapshots displace waiting intermediate ones: jobs that ended while the database was
  // down are not left looking open when their last state could be kept.
  json done = get_json("/v1/jobs?status=completed&limit=100");
  EXPECT_GE(done["data"].size(), 3u) << done.dump();
}

INSTANTIATE_TEST_SUITE_P(Backends, JobsPostgresOutage, ::testing::Values("postgresql"),
                         [](const auto& p) { return p.param; });

}  // namespace
}  // namespace kiln::testing
