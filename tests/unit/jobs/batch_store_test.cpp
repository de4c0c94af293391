// The batch tables (batch_store.h) over both backends: migrations applied by presence, line
// claims under leases, one committed result per line, a node's restart, the atomic end of a
// batch with its webhook events; stored and background responses (claims, a guarded end, a
// cancel that holds, a restart, pruning). Times are given, never read from a clock.
#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <string>

#include "batch_store_fixture.h"
#include "kiln/jobs/store.h"

namespace kiln::jobs {
namespace {

namespace fs = std::filesystem;

using BatchStoreTest = BatchStoreFixture;

TEST_P(BatchStoreTest, MigrationsAreAppliedByPresenceNotByTheHighestVersion) {
  ASSERT_NE(open(), nullptr);
  auto c = pg() ? open_postgres(database()) : open_sqlite(database());
  ASSERT_TRUE(c.is_ok());
  // A database with version 3 but not 2 (schemas that landed out of order): 2 is applied.
  ASSERT_TRUE((*c)->exec("DROP TABLE kiln_rate_usage;"
                         "DELETE FROM kiln_schema_migrations WHERE version = 2").is_ok());
  auto s = open();
  ASSERT_NE(s, nullptr);
  EXPECT_TRUE(s->insert_file(FileRecord{"file-x", "batch", "a.jsonl", "", 1, 1, 1}).is_ok());
  auto versions = (*c)->query("SELECT version FROM kiln_schema_migrations ORDER BY version");
  ASSERT_TRUE(versions.is_ok());
  ASSERT_EQ(versions->size(), static_cast<size_t>(current_schema_version()));
  EXPECT_EQ(*(*versions)[1][0], "2");
  EXPECT_TRUE((*c)->query("SELECT COUNT(*) FROM kiln_rate_usage").is_ok());
}

TEST_P(BatchStoreTest, ALineIsClaimedByOneNodeAndCommittedOnce) {
  auto s = open();
  ASSERT_NE(s, nullptr);
  make_batch(*s, "batch_1", 5);
  auto a = s->claim_lines("a", {"m"}, 3, 1000, 2000);
  ASSERT_TRUE(a.is_ok());
  ASSERT_EQ(a->size(), 3u);
  auto b = s->claim_lines("b", {"m"}, 10, 1500, 2500);
  ASSERT_TRUE(b.is_ok());
  ASSERT_EQ(b->size(), 2u);  // only what a did not take
  EXPECT_TRUE(s->claim_lines("b", {"other-model"}, 10, 1500, 2500)->empty());
  EXPECT_TRUE(s->claim_lines("b", {"m"}, 10, 1600, 2600)->empty());
  // a's leases run out: b takes its lines over; a's late result is refused, b's counts once.
  auto taken = s->claim_lines("b", {"m"}, 10, 2001, 3000);
  ASSERT_TRUE(taken.is_ok());
  ASSERT_EQ(taken->size(), 3u);
  const ClaimedLine& old = (*a)[0];
  EXPECT_FALSE(s->commit_line(old.batch_id, old.line, old.token, false, "late").value());
  const ClaimedLine* now = nullptr;
  for (const auto& l : *taken) {
    if (l.line == old.line) now = &l;
  }
  ASSERT_NE(now, nullptr);
  EXPECT_NE(now->token, old.token);
  EXPECT_TRUE(s->commit_line(now->batch_id, now->line, now->token, false, "first").value());
  EXPECT_FALSE(s->commit_line(now->batch_id, now->line, now->token, true, "second").value());
  // A renewed lease is not taken over.
  ASSERT_TRUE(s->renew_leases({(*b)[0].token}, 9000).is_ok());
  auto later = s->claim_lines("c", {"m"}, 10, 3500, 4500);
  ASSERT_TRUE(later.is_ok());
  EXPECT_EQ(later->size(), 3u);  // taken's other 2 and b's second; not b's first
  auto counts = s->line_counts("batch_1", 3600);
  ASSERT_TRUE(counts.is_ok());
  EXPECT_EQ(counts->total, 5);
  EXPECT_EQ(counts->completed, 1);
  EXPECT_EQ(counts->running, 4);
  auto rows = s->line_results("batch_1", 0, 100);
  ASSERT_TRUE(rows.is_ok());
  ASSERT_EQ(rows->size(), 5u);
  EXPECT_EQ((*rows)[static_cast<size_t>(old.line - 1)].result, "first");
}

TEST_P(BatchStoreTest, ARestartedNodeRunsItsLinesAgainAtOnce) {
  auto s = open();
  ASSERT_NE(s, nullptr);
  make_batch(*s, "batch_1", 3);
  ASSERT_EQ(s->claim_lines("a", {"m"}, 10, 1000, 60000)->size(), 3u);
  ASSERT_EQ(s->claim_lines("b", {"m"}, 10, 1000, 60000)->size(), 0u);
  EXPECT_EQ(s->release_node_lines("a").value(), 3);
  EXPECT_EQ(s->claim_lines("b", {"m"}, 10, 1001, 60000)->size(), 3u);
}

TEST_P(BatchStoreTest, ABatchEndsOnceWithItsFilesAndEvents) {
  auto s = open();
  ASSERT_NE(s, nullptr);
  make_batch(*s, "batch_1", 1);
  auto lease = s->lease_batch("in_progress", "", "a", 1000, 5000);
  ASSERT_TRUE(lease.is_ok());
  ASSERT_TRUE(lease->has_value());
  EXPECT_FALSE(s->lease_batch("in_progress", "", "b", 1000, 5000)->has_value());  // held
  ASSERT_TRUE(s->mark_finalizing("batch_1", 1100).is_ok());
  BatchRecord f = **lease;
  f.status = "completed";
  f.output_file_id = "file-out";
  f.total = f.completed = 1;
  f.completed_ms = 1200;
  WebhookDelivery e;
  e.id = "evt_1";
  e.endpoint = "http://x/hook";
  e.event_type = "batch.completed";
  e.subject_id = "batch_1";
  e.payload = "{}";
  e.created_ms = 1200;
  ASSERT_TRUE(s->complete_batch(f, "finalizing", {FileRecord{"file-out", "batch_output", "o.jsonl", "", 5, 1, 1200}}, {e})
                  .value());
  // A second finalizer (a node that had lost its lease) changes nothing and adds nothing.
  e.id = "evt_2";
  EXPECT_FALSE(s->complete_batch(f, "finalizing", {}, {e}).value());
  auto got = s->get_batch("batch_1");
  ASSERT_TRUE(got.is_ok());
  EXPECT_EQ((*got)->status, "completed");
  EXPECT_EQ((*got)->output_file_id, "file-out");
  EXPECT_TRUE(s->get_file("file-out")->has_value());
  auto due = s->claim_deliveries("a", 10, 1300, 2000);
  ASSERT_TRUE(due.is_ok());
  ASSERT_EQ(due->size(), 1u);
  EXPECT_TRUE(s->claim_deliveries("b", 10, 1300, 2000)->empty());  // leased to a
  WebhookDelivery d = (*due)[0];
  d.status = "pending";
  d.attempts = 1;
  d.next_attempt_ms = 6000;
  d.last_status = 503;
  ASSERT_TRUE(s->record_attempt(d).is_ok());
  EXPECT_TRUE(s->claim_deliveries("b", 10, 5999, 9000)->empty());
  EXPECT_EQ(s->claim_deliveries("b", 10, 6000, 9000)->size(), 1u);
  auto list = s->list_deliveries(Page{"", 10}, "batch_1");
  ASSERT_TRUE(list.is_ok());
  ASSERT_EQ(list->first.size(), 1u);
  EXPECT_EQ(list->first[0].attempts, 1);
}

TEST_P(BatchStoreTest, ABatchExpiresAtItsWindowWithWhatRanKept) {
  auto s = open();
  ASSERT_NE(s, nullptr);
  make_batch(*s, "batch_1", 3);  // created at 100, expires at 100 + 24 h
  const int64_t expires = 100 + 86400000;
  auto claimed = s->claim_lines("a", {"m"}, 2, 1000, expires + 60000);
  ASSERT_TRUE(claimed.is_ok());
  ASSERT_EQ(claimed->size(), 2u);
  ASSERT_TRUE(s->commit_line("batch_1", (*claimed)[0].line, (*claimed)[0].token, false, "ok").value());
  EXPECT_FALSE(s->lease_expired_batch("a", expires - 1, expires + 1000)->has_value());
  auto lease = s->lease_expired_batch("a", expires, expires + 1000);
  ASSERT_TRUE(lease.is_ok());
  ASSERT_TRUE(lease->has_value());
  EXPECT_EQ((*lease)->id, "batch_1");
  EXPECT_FALSE(s->lease_expired_batch("b", expires, expires + 1000)->has_value());  // held by a
  // The finalizer sees the one result, the line still running and the line never claimed.
  auto rows = s->line_results("batch_1", 0, 100);
  ASSERT_TRUE(rows.is_ok());
  ASSERT_EQ(rows->size(), 3u);
  for (const auto& r : *rows) {  // claims come back in no set order: the committed one is (*claimed)[0]
    EXPECT_EQ(r.done, r.line == (*claimed)[0].line) << r.line;
    if (r.done) {
      EXPECT_EQ(r.result, "ok");
    }
  }
  BatchRecord f = **lease;
  f.status = "expired";
  f.expired_ms = f.finalizing_ms = expires;
  ASSERT_TRUE(s->complete_batch(f, "in_progress", {}, {}).value());
  // The claim still running when the batch expired commits nothing that counts any more: the
  // batch is no longer in progress, so its lines are not claimed again either.
  EXPECT_TRUE(s->claim_lines("b", {"m"}, 10, expires + 70000, expires + 80000)->empty());
}

TEST_P(BatchStoreTest, ExpiredFilesArePrunedOnceButNotWhileABatchReadsThem) {
  auto s = open();
  ASSERT_NE(s, nullptr);
  // file-1 is make_batch's input; it expires at 5000 like file-a; file-b later, file-c never.
  for (auto [id, expires] : {std::pair<const char*, int64_t>{"file-1", 5000}, {"file-a", 5000}, {"file-b", 9000},
                             {"file-c", 0}}) {
    FileRecord f{id, "batch", "x.jsonl", "", 1, 1, 100};
    f.expires_ms = expires;
    ASSERT_TRUE(s->insert_file(f).is_ok());
  }
  EXPECT_EQ(s->get_file("file-a").value()->expires_ms, 5000);
  EXPECT_EQ(s->get_file("file-c").value()->expires_ms, 0);
  make_batch(*s, "batch_1", 1);
  EXPECT_TRUE(s->prune_expired_files(4999, 10)->empty());
  EXPECT_EQ(s->prune_expired_files(5000, 10).value(), std::vector<std::string>{"file-a"});  // not file-1: batch_1 runs
  EXPECT_TRUE(s->prune_expired_files(5000, 10)->empty());  // deleted once
  EXPECT_FALSE(s->get_file("file-a")->has_value());
  EXPECT_TRUE(s->get_file("file-1")->has_value());
  // batch_1 ends: its input goes at the next prune; file-b at its time; file-c stays.
  BatchRecord f = s->get_batch("batch_1").value().value();
  f.status = "cancelled";
  f.cancelled_ms = 5500;
  ASSERT_TRUE(s->complete_batch(f, "in_progress", {}, {}).value());
  EXPECT_EQ(s->prune_expired_files(6000, 10).value(), std::vector<std::string>{"file-1"});
  EXPECT_EQ(s->prune_expired_files(1LL << 40, 1).value(), std::vector<std::string>{"file-b"});
  EXPECT_TRUE(s->prune_expired_files(1LL << 40, 10)->empty());
  EXPECT_TRUE(s->get_file("file-c")->has_value());
  // A batch's output_expires_after is kept with it (the finalizer stamps its files with it).
  BatchRecord b;
  b.id = "batch_2";
  b.endpoint = "/v1/chat/completions";
  b.input_file_id = "file-c";
  b.completion_window = "24h";
  b.status = "validating";
  b.created_ms = 100;
  b.expires_ms = 200;
  b.output_expires_s = 7200;
  ASSERT_TRUE(s->insert_batch(b).is_ok());
  EXPECT_EQ(s->get_batch("batch_2").value()->output_expires_s, 7200);
}

TEST_P(BatchStoreTest, ANodeWithoutTheModelLoadedClaimsOnlyLinesThatHaveWaited) {
  auto s = open();
  ASSERT_NE(s, nullptr);
  make_batch(*s, "batch_1", 4);  // in progress since 200
  const int64_t grace = 5000;
  // Node b would have to load "m": nothing before the lines have waited the grace period...
  EXPECT_TRUE(s->claim_waiting_lines("b", {"m"}, 10, 1000, 60000, 1000 - grace)->empty());
  EXPECT_TRUE(s->claim_waiting_lines("b", {"m"}, 10, 5199, 60000, 5199 - grace)->empty());
  // ...while node a, which has it loaded, claims at once.
  auto a = s->claim_lines("a", {"m"}, 1, 1000, 3000);
  ASSERT_TRUE(a.is_ok());
  ASSERT_EQ(a->size(), 1u);
  // After the grace period b takes what a left, but not a's line while a's lease holds...
  auto b = s->claim_waiting_lines("b", {"m"}, 10, 5200, 60000, 5200 - grace);
  ASSERT_TRUE(b.is_ok());
  EXPECT_EQ(b->size(), 3u);
  for (const auto& l : *b) EXPECT_NE(l.line, (*a)[0].line);
  // ...nor once it has expired (at 3000) until that line has waited the grace period again:
  // a node with the model loaded could take it over meanwhile.
  EXPECT_TRUE(s->claim_waiting_lines("c", {"m"}, 10, 7999, 90000, 7999 - grace)->empty());
  auto c = s->claim_waiting_lines("c", {"m"}, 10, 8000, 90000, 8000 - grace);
  ASSERT_TRUE(c.is_ok());
  ASSERT_EQ(c->size(), 1u);
  EXPECT_EQ((*c)[0].line, (*a)[0].line);
  // A line handed back unrun has waited since its batch began: claimable at once.
  ASSERT_TRUE(s->release_line("batch_1", (*b)[0].line, (*b)[0].token).is_ok());
  EXPECT_EQ(s->claim_waiting_lines("d", {"m"}, 10, 8001, 90000, 8001 - grace)->size(), 1u);
  EXPECT_TRUE(s->claim_waiting_lines("d", {"other"}, 10, 1LL << 40, 1LL << 41, 1LL << 39)->empty());
}

ResponseRecord queued_response(const std::string& id, const std::string& model, int64_t created_ms) {
  ResponseRecord r;
  r.id = id;
  r.client = "key_abc";
  r.model = model;
  r.status = "queued";
  r.background = true;
  r.created_ms = r.updated_ms = created_ms;
  r.request = "{}";
  r.input_items = "[]";
  r.response = "{\"status\":\"queued\"}";
  return r;
}

TEST_P(BatchStoreTest, ABackgroundResponseIsClaimedOnceAndEndsUnderItsClaimOnly) {
  auto s = open();
  ASSERT_NE(s, nullptr);
  ASSERT_TRUE(s->insert_response(queued_response("resp_1", "m", 100)).is_ok());
  ASSERT_TRUE(s->insert_response(queued_response("resp_2", "other", 90)).is_ok());
  ResponseRecord fg = queued_response("resp_fg", "m", 80);
  fg.background = false;
  fg.status = "completed";
  ASSERT_TRUE(s->insert_response(fg).is_ok());
  // Only background responses of a served model, each once while its lease holds.
  auto a = s->claim_responses("node-a", {"m"}, 5, 1000, 2000);
  ASSERT_TRUE(a.is_ok());
  ASSERT_EQ(a->size(), 1u);
  EXPECT_EQ((*a)[0].id, "resp_1");
  EXPECT_EQ((*a)[0].status, "in_progress");
  EXPECT_FALSE((*a)[0].token.empty());
  EXPECT_TRUE(s->claim_responses("node-b", {"m"}, 5, 1500, 3500)->empty());
  // Its lease runs out: another node takes it over, and the first claim's result is refused.
  auto b = s->claim_responses("node-b", {"m"}, 5, 2500, 4500);
  ASSERT_EQ(b->size(), 1u);
  EXPECT_NE((*b)[0].token, (*a)[0].token);
  EXPECT_FALSE(*s->finish_response("resp_1", (*a)[0].token, "completed", "{}", 2600, {}));
  WebhookDelivery e{"evt_1", "http://x", "response.completed", "resp_1", "{}", "", "", 2700, 0, 2700, 0, 0};
  EXPECT_TRUE(*s->finish_response("resp_1", (*b)[0].token, "completed", "{\"done\":1}", 2700, {e}));
  auto got = s->get_response("resp_1");
  ASSERT_TRUE(got.is_ok() && *got);
  EXPECT_EQ((*got)->status, "completed");
  EXPECT_EQ((*got)->response, "{\"done\":1}");
  auto events = s->list_deliveries(Page{"", 10}, "resp_1");
  ASSERT_EQ(events->first.size(), 1u);
  EXPECT_EQ(events->first[0].event_type, "response.completed");
  // Ended: never claimed or ended again.
  EXPECT_TRUE(s->claim_responses("node-c", {"m"}, 5, 99999, 199999)->empty());
  EXPECT_FALSE(*s->finish_response("resp_1", "", "cancelled", "{}", 2800, {}));
}

TEST_P(BatchStoreTest, ACancelledResponseStaysCancelledAndARestartQueuesWhatRan) {
  auto s = open();
  ASSERT_NE(s, nullptr);
  ASSERT_TRUE(s->insert_response(queued_response("resp_c", "m", 100)).is_ok());
  ASSERT_TRUE(s->insert_response(queued_response("resp_r", "m", 110)).is_ok());
  auto a = s->claim_responses("node-a", {"m"}, 5, 1000, 60000);
  ASSERT_EQ(a->size(), 2u);
  // Cancelled while running (no token: any open response): the run's late result changes nothing.
  EXPECT_TRUE(*s->finish_response("resp_c", "", "cancelled", "{\"status\":\"cancelled\"}", 1100, {}));
  const std::string token_c = (*a)[0].id == "resp_c" ? (*a)[0].token : (*a)[1].token;
  EXPECT_FALSE(*s->finish_response("resp_c", token_c, "completed", "{}", 1200, {}));
  EXPECT_EQ((*s->get_response("resp_c"))->status, "cancelled");
  // node-a dies: its restart queues resp_r again at once, not the cancelled one.
  EXPECT_EQ(*s->release_node_responses("node-a"), 1);
  EXPECT_EQ((*s->get_response("resp_r"))->status, "queued");
  auto again = s->claim_responses("node-a", {"m"}, 5, 1300, 60000);
  ASSERT_EQ(again->size(), 1u);
  EXPECT_EQ((*again)[0].id, "resp_r");
  EXPECT_TRUE(*s->delete_response("resp_r"));
  EXPECT_FALSE(*s->delete_response("resp_r"));
  EXPECT_FALSE(*s->finish_response("resp_r", (*again)[0].token, "completed", "{}", 1400, {}));
  EXPECT_FALSE(s->get_response("resp_r")->has_value());
}

TEST_P(BatchStoreTest, StoredResponsesArePrunedWithTheJobsButNotWhileOpen) {
  {
    auto s = open();
    ASSERT_NE(s, nullptr);
    ResponseRecord done = queued_response("resp_old", "m", 100);
    done.status = "completed";
    ASSERT_TRUE(s->insert_response(done).is_ok());
    ASSERT_TRUE(s->insert_response(queued_response("resp_open", "m", 100)).is_ok());
  }
  auto store = open_job_store(database(), dir_);
  ASSERT_TRUE(store.is_ok()) << store.status().to_string();
  EXPECT_EQ(*(*store)->prune(1000, 100), 1);
  auto s = open();
  EXPECT_FALSE(s->get_response("resp_old")->has_value());
  EXPECT_TRUE(s->get_response("resp_open")->has_value());
}

KILN_SQL_BACKENDS(BatchStoreTest);

}  // namespace
}  // namespace kiln::jobs
