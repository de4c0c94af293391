// Takes job records off the request path and writes them in batches on its own thread.
//
// record() never blocks: it appends to a bounded queue and returns. The writer thread coalesces
// the queued snapshots of each job (only the newest is written), writes up to `max_batch` jobs in
// one transaction, and when the database fails keeps the batch and retries it after a backoff,
// while new records wait in the queue; a record that finds the queue full is dropped (a final
// snapshot first takes the place of a waiting intermediate one). Nothing is
// lost silently: every drop is counted in /metrics (kiln_jobs_dropped_total) and logged (at most
// once per interval, with the count). The same thread prunes jobs older than the retention, a
// small batch between writes, so pruning never holds the database for long.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "kiln/jobs/store.h"
#include "kiln/metrics/metrics.h"

namespace kiln::jobs {

int64_t system_now_ms();

struct RecorderOptions {
  size_t capacity = 10000;  // records waiting to be written; past it new records are dropped
  size_t max_batch = 256;   // jobs per transaction
  std::chrono::milliseconds retry_backoff{1000};
  int max_attempts = 10;    // a batch that failed this often is dropped (and counted)
  int64_t retention_ms = 7LL * 24 * 3600 * 1000;  // 0: keep jobs forever
  std::chrono::milliseconds prune_interval{60000};
  int prune_batch = 500;
  std::function<int64_t()> now_ms = system_now_ms;  // the wall clock retention is measured on
};

class JobRecorder {
 public:
  JobRecorder(std::unique_ptr<JobStore> store, metrics::Registry* registry, RecorderOptions options = {});
  // Writes what is queued (one attempt), then stops the writer.
  ~JobRecorder();
  JobRecorder(const JobRecorder&) = delete;
  JobRecorder& operator=(const JobRecorder&) = delete;

  // Never blocks on the database. False when the record was dropped (the queue is full).
  bool record(Job job);
  // Waits until every record queued before the call is written or dropped (tests, shutdown).
  void flush();
  // Runs a retention pass now (the next one is otherwise due prune_interval after the last);
  // flush() also waits for it.
  void prune_now();

  size_t pending() const;
  int64_t dropped() const;
  int64_t written() const;
  int64_t pruned() const;

 private:
  void run();
  void write_batch();
  void prune_step();
  void note_drop(size_t n, const char* why);

  std::unique_ptr<JobStore> store_;
  metrics::Registry* registry_;
  RecorderOptions opt_;
  metrics::Labels labels_;
  metrics::Counter* written_metric_ = nullptr;
  metrics::Counter* dropped_full_ = nullptr;
  metrics::Counter* dropped_failed_ = nullptr;
  metrics::Counter* errors_metric_ = nullptr;
  metrics::Counter* pruned_metric_ = nullptr;
  metrics::Histogram* latency_ = nullptr;

  mutable std::mutex mu_;
  std::condition_variable cv_, done_cv_;
  std::deque<Job> queue_;
  std::vector<Job> batch_;  // being written (or retried); only the writer touches it
  size_t batch_size_ = 0;   // batch_.size(), readable under mu_
  uint64_t pushed_ = 0;     // records accepted
  uint64_t settled_ = 0;    // records written, coalesced into a newer one, or dropped
  uint64_t batch_records_ = 0;  // records (before coalescing) the current batch settles
  bool stop_ = false;
  bool prune_requested_ = false;
  bool pruning_ = false;    // a retention pass is under way (more batches to delete)
  int failures_ = 0;
  int64_t dropped_ = 0, written_ = 0, pruned_ = 0;
  int64_t last_prune_ms_ = 0;
  std::chrono::steady_clock::time_point last_drop_log_{};
  int64_t drops_since_log_ = 0;
  std::thread thread_;
};

}  // namespace kiln::jobs
