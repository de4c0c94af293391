// The retention of ended batches and finished webhook deliveries (BatchStore::prune_ended,
// docs/batches.md "Retention") over both backends: what goes and when, what never goes (a batch
// that has not ended, a delivery still being retried), bounded passes, the migration's backfill,
// and two handles pruning at once deleting each row once. Times are given, never read from a clock.
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "batch_store_fixture.h"

namespace kiln::jobs {
namespace {

class BatchRetentionTest : public BatchStoreFixture {
 protected:
  // A batch of `n` lines that ended as `status` at `at`, the way the runner ends each, with
  // `events` queued.
  static void ended(BatchStore& s, const std::string& id, int n, const std::string& status, int64_t at,
                    const std::vector<WebhookDelivery>& events = {}) {
    std::string from = "in_progress";
    if (status == "failed") {
      ASSERT_TRUE(s.insert_batch(validating(id)).is_ok());  // failed validation: no lines
      from = "validating";
    } else {
      make_batch(s, id, n);
    }
    if (status == "cancelled") {
      ASSERT_TRUE(s.request_cancel(id, at - 1).is_ok());
      from = "cancelling";
    }
    BatchRecord f = s.get_batch(id).value().value();
    f.status = status;
    (status == "completed" ? f.completed_ms
     : status == "failed"  ? f.failed_ms
     : status == "expired" ? f.expired_ms
                           : f.cancelled_ms) = at;
    ASSERT_TRUE(s.complete_batch(f, from, {}, events).value()) << id;
  }
  static WebhookDelivery event(const std::string& id, const std::string& subject, int64_t at) {
    return WebhookDelivery{id, "http://x/hook", "batch.completed", subject, "{}", "", "", at, 0, at, 0, 0};
  }
  static std::vector<std::string> listed(BatchStore& s) {
    std::vector<std::string> ids;
    auto page = s.list_batches(Page{"", 100});
    EXPECT_TRUE(page.is_ok());
    if (!page.is_ok()) return ids;
    for (const auto& b : page->first) ids.push_back(b.id);
    std::sort(ids.begin(), ids.end());
    return ids;
  }
};

TEST_P(BatchRetentionTest, AnEndedBatchGoesWithItsLinesOnceItsRetentionHasPassed) {
  auto s = open();
  ASSERT_NE(s, nullptr);
  ended(*s, "batch_done", 3, "completed", 1000);
  ended(*s, "batch_failed", 0, "failed", 2000);
  ended(*s, "batch_expired", 2, "expired", 1500);
  ended(*s, "batch_cancelled", 1, "cancelled", 1200);
  // Its output file follows the files' own rules (expiry, DELETE), not the batch's.
  ASSERT_TRUE(s->insert_file(FileRecord{"file-out", "batch_output", "o.jsonl", "", 5, 1, 1000}).is_ok());
  EXPECT_TRUE(s->prune_ended(999, 100)->batches.empty());
  auto first = s->prune_ended(1000, 100);  // ended at 1000 or earlier: batch_done only
  ASSERT_TRUE(first.is_ok()) << first.status().to_string();
  EXPECT_EQ(first->batches, std::vector<std::string>{"batch_done"});
  EXPECT_EQ(first->lines, 3);
  // Gone like an id that never existed: GET answers 404, lists skip it.
  EXPECT_FALSE(s->get_batch("batch_done")->has_value());
  EXPECT_TRUE(s->line_results("batch_done", 0, 100)->empty());
  EXPECT_EQ(listed(*s), (std::vector<std::string>{"batch_cancelled", "batch_expired", "batch_failed"}));
  auto rest = s->prune_ended(2000, 100);
  ASSERT_TRUE(rest.is_ok());
  std::sort(rest->batches.begin(), rest->batches.end());
  EXPECT_EQ(rest->batches, (std::vector<std::string>{"batch_cancelled", "batch_expired", "batch_failed"}));
  EXPECT_EQ(rest->lines, 3);
  EXPECT_TRUE(listed(*s).empty());
  EXPECT_TRUE(s->get_file("file-out")->has_value());
  auto again = s->prune_ended(1LL << 40, 100);
  EXPECT_TRUE(again->batches.empty());
  EXPECT_EQ(again->lines, 0);
}

TEST_P(BatchRetentionTest, ABatchThatHasNotEndedIsNeverPruned) {
  auto s = open();
  ASSERT_NE(s, nullptr);
  ASSERT_TRUE(s->insert_batch(validating("batch_validating")).is_ok());
  make_batch(*s, "batch_running", 3);
  // Two lines claimed (their leases long gone by the time of the pass), one of them committed.
  auto claimed = s->claim_lines("a", {"m"}, 2, 1000, 2000);
  ASSERT_EQ(claimed->size(), 2u);
  ASSERT_TRUE(s->commit_line("batch_running", (*claimed)[1].line, (*claimed)[1].token, false, "ok").value());
  make_batch(*s, "batch_finalizing", 1);
  ASSERT_TRUE(s->mark_finalizing("batch_finalizing", 300).is_ok());
  make_batch(*s, "batch_cancelling", 2);
  ASSERT_TRUE(s->request_cancel("batch_cancelling", 300).is_ok());
  ended(*s, "batch_done", 2, "completed", 5000);
  auto pass = s->prune_ended(1LL << 40, 100);
  ASSERT_TRUE(pass.is_ok());
  EXPECT_EQ(pass->batches, std::vector<std::string>{"batch_done"});
  EXPECT_EQ(pass->lines, 2);
  EXPECT_EQ(listed(*s), (std::vector<std::string>{"batch_cancelling", "batch_finalizing", "batch_running",
                                                  "batch_validating"}));
  EXPECT_EQ(s->line_results("batch_running", 0, 100)->size(), 3u);
  EXPECT_EQ(s->line_results("batch_cancelling", 0, 100)->size(), 2u);
  EXPECT_EQ(s->line_results("batch_finalizing", 0, 100)->size(), 1u);
  // The running line still commits under its claim.
  EXPECT_TRUE(s->commit_line("batch_running", (*claimed)[0].line, (*claimed)[0].token, false, "ok").value());
}

TEST_P(BatchRetentionTest, FinishedDeliveriesGoButOneStillBeingRetriedStays) {
  auto s = open();
  ASSERT_NE(s, nullptr);
  ended(*s, "batch_1", 1, "completed", 1000,
        {event("evt_ok", "batch_1", 1000), event("evt_gaveup", "batch_1", 1000), event("evt_retry", "batch_1", 1000),
         event("evt_flight", "batch_1", 1000)});
  auto due = s->claim_deliveries("a", 10, 1000, 1LL << 41);
  ASSERT_EQ(due->size(), 4u);
  for (WebhookDelivery d : *due) {
    d.attempts = 1;
    d.last_attempt_ms = 3000;
    if (d.id == "evt_ok") d.status = "delivered";
    if (d.id == "evt_gaveup") {
      d.status = "failed";
      d.last_attempt_ms = 4000;
    }
    if (d.id == "evt_retry") {
      d.status = "pending";
      d.next_attempt_ms = 1LL << 40;
    }
    if (d.id == "evt_flight") continue;  // claimed, its attempt under way: still pending
    ASSERT_TRUE(s->record_attempt(d).is_ok());
  }
  auto count = [&] { return s->list_deliveries(Page{"", 100}, "").value().first.size(); };
  EXPECT_EQ(s->prune_ended(2999, 100)->deliveries, 0);
  EXPECT_EQ(s->prune_ended(3000, 100)->deliveries, 1);  // evt_ok, delivered at 3000
  EXPECT_EQ(count(), 3u);
  EXPECT_EQ(s->prune_ended(1LL << 40, 100)->deliveries, 1);  // evt_gaveup
  EXPECT_EQ(s->prune_ended(1LL << 41, 100)->deliveries, 0);
  std::set<std::string> left;
  auto page = s->list_deliveries(Page{"", 100}, "");
  ASSERT_TRUE(page.is_ok());
  for (const auto& d : page->first) left.insert(d.id);
  EXPECT_EQ(left, (std::set<std::string>{"evt_flight", "evt_retry"}));
}

TEST_P(BatchRetentionTest, APassDeletesAtMostItsLimitOfEachTable) {
  auto s = open();
  ASSERT_NE(s, nullptr);
  std::vector<WebhookDelivery> events;
  for (int i = 0; i < 5; ++i) events.push_back(event("evt_" + std::to_string(i), "batch_big", 1000));
  ended(*s, "batch_big", 7, "completed", 1000, events);
  auto claimed = s->claim_deliveries("a", 10, 1000, 2000);
  ASSERT_TRUE(claimed.is_ok());
  for (WebhookDelivery d : *claimed) {
    d.status = "delivered";
    d.attempts = 1;
    d.last_attempt_ms = 1000;
    ASSERT_TRUE(s->record_attempt(d).is_ok());
  }
  // Lines first, three a pass; the batch stays readable until its last line is gone, then goes in
  // the same pass.
  auto p1 = s->prune_ended(5000, 3);
  EXPECT_EQ(p1->lines, 3);
  EXPECT_TRUE(p1->batches.empty());
  EXPECT_EQ(p1->deliveries, 3);
  EXPECT_TRUE(s->get_batch("batch_big")->has_value());
  auto p2 = s->prune_ended(5000, 3);
  EXPECT_EQ(p2->lines, 3);
  EXPECT_TRUE(p2->batches.empty());
  EXPECT_EQ(p2->deliveries, 2);
  auto p3 = s->prune_ended(5000, 3);
  EXPECT_EQ(p3->lines, 1);
  EXPECT_EQ(p3->batches, std::vector<std::string>{"batch_big"});
  EXPECT_EQ(p3->deliveries, 0);
  EXPECT_FALSE(s->get_batch("batch_big")->has_value());
}

// A database that ended batches before version 6 gets their ended_ms from their *_at times.
TEST_P(BatchRetentionTest, MigrationSixDatesTheBatchesThatHadAlreadyEnded) {
  {
    auto s = open();
    ASSERT_NE(s, nullptr);
    ended(*s, "batch_old", 1, "expired", 1500);
    make_batch(*s, "batch_running", 1);
  }
  {
    auto c = pg() ? open_postgres(database()) : open_sqlite(database());
    ASSERT_TRUE(c.is_ok());
    ASSERT_TRUE((*c)->exec("DROP INDEX batches_ended; DROP INDEX webhook_ended;"
                           "ALTER TABLE batches DROP COLUMN ended_ms;"
                           "DELETE FROM kiln_schema_migrations WHERE version = 6")
                    .is_ok());
  }
  auto s = open();  // applies 6 again
  ASSERT_NE(s, nullptr);
  EXPECT_TRUE(s->prune_ended(1499, 100)->batches.empty());
  EXPECT_EQ(s->prune_ended(1500, 100)->batches, std::vector<std::string>{"batch_old"});
  EXPECT_TRUE(s->get_batch("batch_running")->has_value());
}

// Several nodes prune at once: each row is deleted by one of them (DELETE ... RETURNING over rows
// taken FOR UPDATE SKIP LOCKED on PostgreSQL; SQLite serializes writers).
TEST_P(BatchRetentionTest, TwoHandlesPruningAtOnceDeleteEachRowOnce) {
  constexpr int kBatches = 40, kLines = 5, kEvents = 30;
  {
    auto s = open();
    ASSERT_NE(s, nullptr);
    std::vector<WebhookDelivery> events;
    for (int i = 0; i < kEvents; ++i) events.push_back(event("evt_" + std::to_string(i), "batch_0", 1000));
    for (int i = 0; i < kBatches; ++i) {
      ended(*s, "batch_" + std::to_string(i), kLines, "completed", 1000 + i, i == 0 ? events : std::vector<WebhookDelivery>{});
    }
    auto claimed = s->claim_deliveries("a", kEvents, 1000, 2000);
    ASSERT_TRUE(claimed.is_ok());
    for (WebhookDelivery d : *claimed) {
      d.status = "delivered";
      d.last_attempt_ms = 1000;
      ASSERT_TRUE(s->record_attempt(d).is_ok());
    }
  }
  struct Tally {
    std::vector<std::string> batches;
    int64_t lines = 0, deliveries = 0;
    std::string error;
  };
  Tally tally[2];
  auto prune = [&](int k) {
    auto s = open();
    if (s == nullptr) return;
    for (;;) {
      auto p = s->prune_ended(10000, 7);
      if (!p.is_ok()) {
        tally[k].error = p.status().to_string();
        return;
      }
      tally[k].batches.insert(tally[k].batches.end(), p->batches.begin(), p->batches.end());
      tally[k].lines += p->lines;
      tally[k].deliveries += p->deliveries;
      if (p->batches.empty() && p->lines == 0 && p->deliveries == 0) return;
    }
  };
  std::thread a(prune, 0), b(prune, 1);
  a.join();
  b.join();
  EXPECT_EQ(tally[0].error, "");
  EXPECT_EQ(tally[1].error, "");
  std::vector<std::string> all = tally[0].batches;
  all.insert(all.end(), tally[1].batches.begin(), tally[1].batches.end());
  EXPECT_EQ(all.size(), static_cast<size_t>(kBatches));
  EXPECT_EQ(std::set<std::string>(all.begin(), all.end()).size(), static_cast<size_t>(kBatches));
  EXPECT_EQ(tally[0].lines + tally[1].lines, kBatches * kLines);
  EXPECT_EQ(tally[0].deliveries + tally[1].deliveries, kEvents);
  auto s = open();
  EXPECT_TRUE(listed(*s).empty());
  EXPECT_TRUE(s->list_deliveries(Page{"", 100}, "").value().first.empty());
}

KILN_SQL_BACKENDS(BatchRetentionTest);

}  // namespace
}  // namespace kiln::jobs
