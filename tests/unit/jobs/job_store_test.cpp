// The job store and the recorder, the same tests over both backends: SQLite in a temporary
// directory and a real PostgreSQL server started by the test (integration/postgres_server.h).
#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include "kiln/jobs/recorder.h"
#include "kiln/jobs/sql_conn.h"
#include "kiln/jobs/store.h"
#include "sql_backend_fixture.h"

namespace kiln::jobs {
namespace {

namespace fs = std::filesystem;

Job job(const std::string& id, int64_t received, JobStatus st = JobStatus::kCompleted) {
  Job j;
  j.id = id;
  j.node = "node-a";
  j.model = "m1";
  j.endpoint = "/v1/chat/completions";
  j.client = "key_abc";
  j.status = st;
  j.received_ms = received;
  if (is_terminal(st)) {
    j.started_ms = received + 10;
    j.first_token_ms = received + 20;
    j.finished_ms = received + 100;
  }
  return j;
}

class JobStoreTest : public SqlBackendTest {
 protected:
  std::unique_ptr<JobStore> open() {
    auto s = open_job_store(database(), dir_);
    EXPECT_TRUE(s.is_ok()) << s.status().to_string();
    return s.is_ok() ? std::move(*s) : nullptr;
  }
};

TEST_P(JobStoreTest, MigratesOnceAndRefusesANewerSchema) {
  ASSERT_NE(open(), nullptr);
  auto again = open_job_store(database(), dir_);
  ASSERT_TRUE(again.is_ok());
  EXPECT_EQ((*again)->migrate().value(), current_schema_version());
  auto conn = pg() ? open_postgres(database()) : open_sqlite(database());
  ASSERT_TRUE(conn.is_ok());
  auto rows = (*conn)->query("SELECT MAX(version) FROM kiln_schema_migrations");
  ASSERT_TRUE(rows.is_ok());
  EXPECT_EQ(*(*rows)[0][0], std::to_string(current_schema_version()));
  ASSERT_TRUE((*conn)->exec("INSERT INTO kiln_schema_migrations (version, applied_ms) VALUES (999, 0)").is_ok());
  auto newer = open_job_store(database(), dir_);
  ASSERT_FALSE(newer.is_ok());
  EXPECT_NE(newer.status().message().find("schema version 999"), std::string::npos);
}

TEST_P(JobStoreTest, KeepsEveryFieldAndNoBodyUnlessGiven) {
  auto s = open();
  ASSERT_NE(s, nullptr);
  Job j = job("req-1", 1000);
  j.stream = true;
  j.prompt_tokens = 12;
  j.completion_tokens = 34;
  j.finish_reason = "length";
  j.http_status = 200;
  j.error_code = "x";
  j.error_message = "quote ' and unicode é";
  Job k = job("req-2", 2000);
  k.request_body = R"({"model":"m1"})";
  k.response_body = "{}";
  ASSERT_TRUE(s->upsert({j, k}).is_ok());
  auto got = s->get("req-1");
  ASSERT_TRUE(got.is_ok() && got->has_value());
  const Job& g = **got;
  EXPECT_EQ(g.node, "node-a");
  EXPECT_EQ(g.model, "m1");
  EXPECT_EQ(g.endpoint, "/v1/chat/completions");
  EXPECT_EQ(g.client, "key_abc");
  EXPECT_EQ(g.status, JobStatus::kCompleted);
  EXPECT_TRUE(g.stream);
  EXPECT_EQ(g.received_ms, 1000);
  EXPECT_EQ(g.queue_wait_ms(), 10);
  EXPECT_EQ(g.ttft_ms(), 20);
  EXPECT_EQ(g.duration_ms(), 100);
  EXPECT_EQ(g.prompt_tokens, 12);
  EXPECT_EQ(g.completion_tokens, 34);
  EXPECT_EQ(g.finish_reason, "length");
  EXPECT_EQ(g.http_status, 200);
  EXPECT_EQ(g.error_message, "quote ' and unicode é");
  EXPECT_EQ(g.request_body, "");
  auto g2 = s->get("req-2");
  EXPECT_EQ((*g2)->request_body, R"({"model":"m1"})");
  EXPECT_FALSE(s->get("nope")->has_value());
}

TEST_P(JobStoreTest, AFinishedJobIsNeverTakenBackToRunning) {
  auto s = open();
  ASSERT_NE(s, nullptr);
  ASSERT_TRUE(s->upsert({job("a", 1, JobStatus::kQueued)}).is_ok());
  ASSERT_TRUE(s->upsert({job("a", 1, JobStatus::kRunning)}).is_ok());
  EXPECT_EQ((*s->get("a"))->status, JobStatus::kRunning);
  ASSERT_TRUE(s->upsert({job("a", 1, JobStatus::kCancelled)}).is_ok());
  ASSERT_TRUE(s->upsert({job("a", 1, JobStatus::kRunning)}).is_ok());
  EXPECT_EQ((*s->get("a"))->status, JobStatus::kCancelled);
}

TEST_P(JobStoreTest, ListsNewestFirstWithFiltersAndCursor) {
  auto s = open();
  ASSERT_NE(s, nullptr);
  std::vector<Job> all;
  for (int i = 0; i < 25; ++i) {
    Job j = job("job-" + std::to_string(100 + i), 1000 + i / 2);  // pairs share a time: the id breaks ties
    j.model = i % 2 == 0 ? "even" : "odd";
    j.status = i % 5 == 0 ? JobStatus::kFailed : JobStatus::kCompleted;
    all.push_back(j);
  }
  ASSERT_TRUE(s->upsert(all).is_ok());
  JobFilter f;
  f.limit = 7;
  std::vector<std::string> seen;
  while (true) {
    auto page = s->list(f);
    ASSERT_TRUE(page.is_ok()) << page.status().to_string();
    for (const auto& j : page->jobs) seen.push_back(j.id);
    if (!page->has_more) break;
    EXPECT_EQ(page->jobs.size(), 7u);
    f.after = page->jobs.back().id;
  }
  ASSERT_EQ(seen.size(), 25u);
  for (int i = 0; i < 25; ++i) EXPECT_EQ(seen[static_cast<size_t>(i)], "job-" + std::to_string(124 - i));

  JobFilter by;
  by.model = "even";
  by.status = JobStatus::kFailed;
  auto p = s->list(by);
  ASSERT_TRUE(p.is_ok());
  ASSERT_EQ(p->jobs.size(), 3u);  // i = 0, 10, 20
  EXPECT_EQ(p->jobs[0].id, "job-120");
  JobFilter range;
  range.since_ms = 1002;
  range.until_ms = 1004;
  EXPECT_EQ(s->list(range)->jobs.size(), 4u);
  JobFilter other;
  other.client = "someone-else";
  EXPECT_TRUE(s->list(other)->jobs.empty());
  other = {};
  other.endpoint = "/v1/completions";
  EXPECT_TRUE(s->list(other)->jobs.empty());
  JobFilter bad;
  bad.after = "no-such-job";
  auto missing = s->list(bad);
  ASSERT_FALSE(missing.is_ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
}

TEST_P(JobStoreTest, StatsCountAndRankLatencies) {
  auto s = open();
  ASSERT_NE(s, nullptr);
  std::vector<Job> js;
  for (int i = 1; i <= 100; ++i) {
    Job j = job("s" + std::to_string(i), 10000 + i);
    j.finished_ms = j.received_ms + i;  // durations 1..100 ms
    j.prompt_tokens = 2;
    j.completion_tokens = 3;
    js.push_back(j);
  }
  js.push_back(job("open", 10050, JobStatus::kRunning));
  js.push_back(job("outside", 50000));
  ASSERT_TRUE(s->upsert(js).is_ok());
  auto st = s->stats(10000, 20000);
  ASSERT_TRUE(st.is_ok()) << st.status().to_string();
  EXPECT_EQ(st->total, 101);
  EXPECT_EQ(st->by_status[static_cast<int>(JobStatus::kCompleted)], 100);
  EXPECT_EQ(st->by_status[static_cast<int>(JobStatus::kRunning)], 1);
  EXPECT_EQ(st->prompt_tokens, 200);
  EXPECT_EQ(st->completion_tokens, 300);
  EXPECT_EQ(st->duration_ms.count, 100);
  EXPECT_EQ(st->duration_ms.p50, 50);
  EXPECT_EQ(st->duration_ms.p95, 95);
  EXPECT_EQ(st->duration_ms.p99, 99);
  EXPECT_EQ(st->ttft_ms.p50, 20);
  auto empty = s->stats(0, 5);
  ASSERT_TRUE(empty.is_ok());
  EXPECT_EQ(empty->total, 0);
  EXPECT_EQ(empty->duration_ms.count, 0);
}

TEST_P(JobStoreTest, FailsOnlyTheOpenJobsOfItsNode) {
  auto s = open();
  ASSERT_NE(s, nullptr);
  Job other = job("b", 1, JobStatus::kRunning);
  other.node = "node-b";
  ASSERT_TRUE(s->upsert({job("q", 1, JobStatus::kQueued), job("r", 1, JobStatus::kRunning), job("c", 1), other}).is_ok());
  auto n = s->fail_open_jobs("node-a", "kiln restarted", 5000);
  ASSERT_TRUE(n.is_ok());
  EXPECT_EQ(*n, 2);
  auto r = *s->get("r");
  EXPECT_EQ(r->status, JobStatus::kFailed);
  EXPECT_EQ(r->error_code, "server_restarted");
  EXPECT_EQ(r->error_message, "kiln restarted");
  EXPECT_EQ(r->finished_ms, 5000);
  EXPECT_EQ((*s->get("c"))->status, JobStatus::kCompleted);
  EXPECT_EQ((*s->get("b"))->status, JobStatus::kRunning);
  EXPECT_EQ(*s->fail_open_jobs("node-a", "again", 6000), 0);
}

TEST_P(JobStoreTest, PrunesOldFinishedJobsInBatches) {
  auto s = open();
  ASSERT_NE(s, nullptr);
  std::vector<Job> js;
  for (int i = 0; i < 10; ++i) js.push_back(job("old" + std::to_string(i), 100 + i));
  js.push_back(job("old-running", 100, JobStatus::kRunning));
  js.push_back(job("new", 5000));
  ASSERT_TRUE(s->upsert(js).is_ok());
  EXPECT_EQ(*s->prune(1000, 4), 4);
  EXPECT_EQ(*s->prune(1000, 4), 4);
  EXPECT_EQ(*s->prune(1000, 4), 2);
  EXPECT_EQ(*s->prune(1000, 4), 0);
  EXPECT_TRUE(s->get("old-running")->has_value());
  EXPECT_TRUE(s->get("new")->has_value());
  EXPECT_FALSE(s->get("old9")->has_value());
}

TEST_P(JobStoreTest, RecorderWritesTheNewestSnapshotOfEachJob) {
  metrics::Registry registry;
  {
    RecorderOptions o;
    o.retention_ms = 0;  // these jobs are from 1970
    JobRecorder rec(open(), &registry, o);
    for (int i = 0; i < 50; ++i) {
      ASSERT_TRUE(rec.record(job("j" + std::to_string(i), 1000 + i, JobStatus::kQueued)));
      ASSERT_TRUE(rec.record(job("j" + std::to_string(i), 1000 + i, JobStatus::kCompleted)));
    }
    rec.flush();
    EXPECT_EQ(rec.pending(), 0u);
    EXPECT_EQ(rec.dropped(), 0);
    EXPECT_GE(rec.written(), 50);
  }
  auto s = open();
  JobFilter f;
  f.status = JobStatus::kCompleted;
  f.limit = 1000;
  EXPECT_EQ(s->list(f)->jobs.size(), 50u);
  const std::string text = registry.render();
  EXPECT_NE(text.find("kiln_jobs_written_total"), std::string::npos);
  EXPECT_NE(text.find("kiln_jobs_write_seconds_count"), std::string::npos);
  EXPECT_EQ(text.find("kiln_jobs_pending_writes{"), std::string::npos);  // removed with the recorder
}

TEST_P(JobStoreTest, RecorderCountsWhatAFullQueueDrops) {
  metrics::Registry registry;
  RecorderOptions o;
  o.capacity = 0;  // every record finds the queue full
  o.retention_ms = 0;
  JobRecorder rec(open(), &registry, o);
  EXPECT_FALSE(rec.record(job("x", 1)));
  EXPECT_FALSE(rec.record(job("y", 1)));
  rec.flush();
  EXPECT_EQ(rec.dropped(), 2);
  EXPECT_NE(registry.render().find("kiln_jobs_dropped_total{store=\"" + GetParam() + "\",reason=\"queue_full\"} 2"),
            std::string::npos)
      << registry.render();
}

TEST_P(JobStoreTest, AFinalSnapshotDisplacesAWaitingIntermediateOneWhenTheQueueIsFull) {
  auto store = open();
  ASSERT_NE(store, nullptr);
  RecorderOptions o;
  o.capacity = 2;
  o.retention_ms = 0;
  // Whatever the writer's pace, each job's final snapshot must reach the store: when the queue is
  // full it displaces a waiting intermediate snapshot instead of being dropped.
  JobRecorder rec(std::move(store), nullptr, o);
  rec.record(job("a", 1, JobStatus::kQueued));
  rec.record(job("b", 2, JobStatus::kQueued));
  rec.record(job("a", 1, JobStatus::kCompleted));
  rec.record(job("b", 2, JobStatus::kCompleted));
  rec.flush();
  auto s = open();
  EXPECT_EQ((*s->get("a"))->status, JobStatus::kCompleted);
  EXPECT_EQ((*s->get("b"))->status, JobStatus::kCompleted);
}

TEST_P(JobStoreTest, RetentionFollowsTheInjectedClock) {
  int64_t now = 10LL * 24 * 3600 * 1000;
  RecorderOptions o;
  o.retention_ms = 7LL * 24 * 3600 * 1000;
  o.prune_interval = std::chrono::hours(1000);  // only prune_now() (and the first pass) prunes
  o.prune_batch = 3;
  o.now_ms = [&now] { return now; };
  JobRecorder rec(open(), nullptr, o);
  const int64_t day = 24 * 3600 * 1000;
  for (int i = 0; i < 8; ++i) rec.record(job("d" + std::to_string(i), int64_t{i} * day));  // days 0..7
  rec.flush();
  now = 12 * day;  // keeps days 5.. (received >= now - 7 days)
  rec.prune_now();
  rec.flush();
  EXPECT_EQ(rec.pruned(), 5);
  auto s = open();
  JobFilter f;
  auto left = s->list(f);
  ASSERT_EQ(left->jobs.size(), 3u);
  EXPECT_EQ(left->jobs.back().id, "d5");
}

KILN_SQL_BACKENDS(JobStoreTest);

// PostgreSQL stops while jobs are recorded: writes fail and are retried, nothing blocks the
// caller, and once the server is back the queued records are written.
TEST(JobRecorderPostgres, ResumesWhenTheServerComesBack) {
  auto* pg = postgres();
  {
    auto c = open_postgres(pg->url());
    ASSERT_TRUE(c.is_ok());
    ASSERT_TRUE((*c)->exec("DROP SCHEMA public CASCADE; CREATE SCHEMA public").is_ok());
  }
  auto store = open_job_store(pg->url(), "/nonexistent");
  ASSERT_TRUE(store.is_ok()) << store.status().to_string();
  metrics::Registry registry;
  RecorderOptions o;
  o.retry_backoff = std::chrono::milliseconds(50);
  o.max_attempts = 1000000;  // keep retrying: nothing is dropped during this outage
  o.retention_ms = 0;
  JobRecorder rec(std::move(*store), &registry, o);
  ASSERT_TRUE(rec.record(job("before", 1)));
  rec.flush();
  ASSERT_TRUE(pg->stop());
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(rec.record(job("during" + std::to_string(i), 2)));
  // The writer fails at least once before the server is back.
  for (int i = 0; i < 500 && registry.render().find("kiln_jobs_write_errors_total{store=\"postgresql\"} ") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_NE(registry.render().find("kiln_jobs_write_errors_total{store=\"postgresql\"} "), std::string::npos);
  EXPECT_GT(rec.pending(), 0u);
  ASSERT_TRUE(pg->resume()) << pg->error();
  rec.flush();
  EXPECT_EQ(rec.dropped(), 0);
  auto check = open_job_store(pg->url(), "/nonexistent");
  ASSERT_TRUE(check.is_ok());
  JobFilter f;
  EXPECT_EQ((*check)->list(f)->jobs.size(), 21u);
}

}  // namespace
}  // namespace kiln::jobs
