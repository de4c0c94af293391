#include "kiln/jobs/rate_sync.h"

#include <cstdlib>

#include "kiln/core/log.h"
#include "kiln/core/str.h"
#include "kiln/jobs/recorder.h"

namespace kiln::jobs {

namespace {

// Rows of node runs that have not synced for this long are deleted.
constexpr int64_t kStaleMs = 3600 * 1000;
// Each read takes the rows updated since the previous one, less this much for clocks that differ
// between nodes (updated_ms is the writer's clock); a row read twice adds nothing the second time.
constexpr int64_t kClockSlackMs = 60 * 1000;

int64_t to_i64(const std::optional<std::string>& v) { return v ? std::strtoll(v->c_str(), nullptr, 10) : 0; }

}  // namespace

RateLimitSync::RateLimitSync(RateLimiter& limiter, std::unique_ptr<SqlConn> conn, RateSyncOptions options)
    : limiter_(limiter), conn_(std::move(conn)), options_(std::move(options)), started_ms_(system_now_ms()) {
  if (options_.interval.count() > 0) thread_ = std::thread([this] { run(); });
}

RateLimitSync::~RateLimitSync() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

int64_t RateLimitSync::failures() const {
  std::lock_guard<std::mutex> lk(mu_);
  return failures_;
}

void RateLimitSync::run() {
  std::unique_lock<std::mutex> lk(mu_);
  bool failing = false;
  while (!cv_.wait_for(lk, options_.interval, [this] { return stop_; })) {
    lk.unlock();
    Status s = sync_once();
    lk.lock();
    if (!s.is_ok()) {
      if (failures_++ == 0 || !failing) log_warn("rate limits: syncing with the other nodes failed: ", s.message());
      failing = true;
    } else if (failing) {
      log_info("rate limits: syncing with the other nodes again");
      failing = false;
    }
  }
}

Status RateLimitSync::sync_once() {
  const int64_t now = system_now_ms();
  for (auto& u : limiter_.changed_usage()) {
    ClientUsage& owed = unsent_[u.client];
    owed.client = u.client;
    owed.requests += u.requests;
    owed.tokens += u.tokens;
  }
  if (!unsent_.empty()) {
    KILN_RETURN_IF_ERROR(conn_->exec("BEGIN"));
    for (const auto& [client, u] : unsent_) {
      auto r = conn_->query(
          "INSERT INTO kiln_rate_usage (node, client, requests, tokens, created_ms, updated_ms) "
          "VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (node, client) DO UPDATE SET "
          "requests = kiln_rate_usage.requests + excluded.requests, tokens = kiln_rate_usage.tokens + excluded.tokens, "
          "updated_ms = excluded.updated_ms",
          {options_.node, client, u.requests, u.tokens, now});
      if (!r.is_ok()) {
        (void)conn_->exec("ROLLBACK");
        return r.status();
      }
    }
    KILN_RETURN_IF_ERROR(conn_->exec("COMMIT"));
    unsent_.clear();
  }
  if (now - last_prune_ms_ > 60000) {
    // An integer written into the statement: nothing a client sends reaches it.
    KILN_RETURN_IF_ERROR(conn_->exec(str_cat("DELETE FROM kiln_rate_usage WHERE updated_ms < ", now - kStaleMs)));
    last_prune_ms_ = now;
  }
  auto rows = conn_->query(
      "SELECT node, client, requests, tokens, created_ms, updated_ms FROM kiln_rate_usage WHERE node <> $1 AND updated_ms >= $2",
      {options_.node, last_read_ms_ - kClockSlackMs});
  if (!rows.is_ok()) return rows.status();
  last_read_ms_ = now;
  for (const auto& r : *rows) {
    auto key = std::make_pair(r[0].value_or(""), r[1].value_or(""));
    const int64_t requests = to_i64(r[2]), tokens = to_i64(r[3]);
    auto it = seen_.find(key);
    if (it == seen_.end()) {
      // A row from before this run began holds consumption that this run's full buckets never
      // knew of and that has mostly refilled: it is the baseline. One begun since counts whole.
      const bool new_row = to_i64(r[4]) >= started_ms_ - options_.interval.count();
      it = seen_.emplace(key, new_row ? Seen{} : Seen{requests, tokens, 0}).first;
    }
    const int64_t dr = requests - it->second.requests, dt = tokens - it->second.tokens;
    if (dr != 0 || dt != 0) limiter_.apply_remote(key.second, dr, dt);
    it->second = {requests, tokens, to_i64(r[5])};
  }
  // Rows the prune deletes are forgotten here too.
  std::erase_if(seen_, [&](const auto& kv) { return kv.second.updated_ms < now - kStaleMs - kClockSlackMs; });
  return Status();
}

}  // namespace kiln::jobs
