// Rate limits across nodes (docs/jobs.md, "Rate limits"): every `interval` this node adds what its
// clients consumed since the last sync to its row of kiln_rate_usage (one row per node run and
// client, cumulative) and debits from its own buckets what the other nodes' rows grew by since it
// last read them. Runs on its own thread and connection; a failed sync keeps the unsent
// consumption for the next one and never touches a request.
#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

#include "kiln/core/status.h"
#include "kiln/jobs/rate_limiter.h"
#include "kiln/jobs/sql_conn.h"

namespace kiln::jobs {

struct RateSyncOptions {
  std::string node;  // this run's name in the table: unique per process
  std::chrono::milliseconds interval{250};  // 0: no thread; the caller runs sync_once() (tests)
};

class RateLimitSync {
 public:
  // `conn` must reach a database migrated to schema version 2 or later.
  RateLimitSync(RateLimiter& limiter, std::unique_ptr<SqlConn> conn, RateSyncOptions options);
  ~RateLimitSync();
  RateLimitSync(const RateLimitSync&) = delete;
  RateLimitSync& operator=(const RateLimitSync&) = delete;

  // One round: write, then read (the thread calls it every interval).
  Status sync_once();
  int64_t failures() const;

 private:
  void run();

  RateLimiter& limiter_;
  std::unique_ptr<SqlConn> conn_;
  const RateSyncOptions options_;
  const int64_t started_ms_;
  std::map<std::string, ClientUsage> unsent_;  // consumption a failed write still owes
  // What each other node run's row held when last read.
  struct Seen {
    int64_t requests = 0, tokens = 0;
    int64_t updated_ms = 0;
  };
  std::map<std::pair<std::string, std::string>, Seen> seen_;
  int64_t last_prune_ms_ = 0;
  int64_t last_read_ms_ = 0;  // 0: the first read takes every row

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  int64_t failures_ = 0;
  std::thread thread_;
};

}  // namespace kiln::jobs
