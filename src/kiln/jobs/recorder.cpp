#include "kiln/jobs/recorder.h"

#include <algorithm>
#include <unordered_map>

#include "kiln/core/log.h"

namespace kiln::jobs {

namespace {
// Drops are logged at once, then at most this often (with how many there were since).
constexpr auto kDropLogInterval = std::chrono::seconds(10);
// How often an idle writer looks at the clock for the next retention pass.
constexpr auto kIdleWake = std::chrono::seconds(1);
}  // namespace

int64_t system_now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

JobRecorder::JobRecorder(std::unique_ptr<JobStore> store, metrics::Registry* registry, RecorderOptions options)
    : store_(std::move(store)), registry_(registry), opt_(std::move(options)) {
  labels_ = {{"store", store_->backend()}};
  if (registry_ != nullptr) {
    auto& r = *registry_;
    written_metric_ = &r.counter("kiln_jobs_written_total", "Job records written to the job store.", labels_);
    auto dropped = [&](const char* reason) {
      metrics::Labels l = labels_;
      l.emplace_back("reason", reason);
      return &r.counter("kiln_jobs_dropped_total",
                        "Job records lost: the write queue was full, or the database failed every retry.", l);
    };
    dropped_full_ = dropped("queue_full");
    dropped_failed_ = dropped("write_failed");
    errors_metric_ = &r.counter("kiln_jobs_write_errors_total", "Failed job-store transactions (each is retried).", labels_);
    pruned_metric_ = &r.counter("kiln_jobs_pruned_total", "Jobs deleted by the retention.", labels_);
    latency_ = &r.histogram("kiln_jobs_write_seconds", "Time to write one batch of job records.",
                            metrics::latency_buckets(), labels_);
    r.gauge_fn("kiln_jobs_pending_writes", "Job records waiting to be written.", labels_,
               [this] { return static_cast<double>(pending()); });
  }
  thread_ = std::thread([this] { run(); });
}

JobRecorder::~JobRecorder() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
  if (registry_ != nullptr) registry_->remove_callbacks(labels_);
}

bool JobRecorder::record(Job job) {
  std::lock_guard<std::mutex> lk(mu_);
  ++pushed_;
  if (!stop_ && queue_.size() >= opt_.capacity && is_terminal(job.status)) {
    // A job's final snapshot holds everything its earlier ones did: when the queue is full it
    // takes the place of a waiting queued/running snapshot, so that what is lost is an
    // intermediate state rather than a job left open in the store.
    auto it = std::find_if(queue_.begin(), queue_.end(), [](const Job& q) { return !is_terminal(q.status); });
    if (it != queue_.end()) {
      queue_.erase(it);
      ++settled_;
      note_drop(1, "the write queue is full");
      if (dropped_full_ != nullptr) dropped_full_->inc();
    }
  }
  if (stop_ || queue_.size() >= opt_.capacity) {
    ++settled_;
    note_drop(1, "the write queue is full");
    if (dropped_full_ != nullptr) dropped_full_->inc();
    return false;
  }
  queue_.push_back(std::move(job));
  cv_.notify_one();
  return true;
}

void JobRecorder::flush() {
  std::unique_lock<std::mutex> lk(mu_);
  const uint64_t target = pushed_;
  done_cv_.wait(lk, [&] { return settled_ >= target && !prune_requested_ && !pruning_; });
}

void JobRecorder::prune_now() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (opt_.retention_ms <= 0) return;
    prune_requested_ = true;
  }
  cv_.notify_one();
}

size_t JobRecorder::pending() const {
  std::lock_guard<std::mutex> lk(mu_);
  return queue_.size() + batch_size_;
}
int64_t JobRecorder::dropped() const {
  std::lock_guard<std::mutex> lk(mu_);
  return dropped_;
}
int64_t JobRecorder::written() const {
  std::lock_guard<std::mutex> lk(mu_);
  return written_;
}
int64_t JobRecorder::pruned() const {
  std::lock_guard<std::mutex> lk(mu_);
  return pruned_;
}

// Called with mu_ held.
void JobRecorder::note_drop(size_t n, const char* why) {
  dropped_ += static_cast<int64_t>(n);
  drops_since_log_ += static_cast<int64_t>(n);
  const auto now = std::chrono::steady_clock::now();
  if (now - last_drop_log_ < kDropLogInterval) return;
  log_warn("jobs: ", drops_since_log_, " job record(s) dropped (", why, "); ", dropped_, " in all");
  last_drop_log_ = now;
  drops_since_log_ = 0;
}

void JobRecorder::run() {
  std::unique_lock<std::mutex> lk(mu_);
  while (true) {
    // Take what is queued into the batch; a job's newer snapshot replaces the one waiting.
    std::unordered_map<std::string, size_t> index;
    for (size_t i = 0; i < batch_.size(); ++i) index.emplace(batch_[i].id, i);
    while (!queue_.empty()) {
      Job& j = queue_.front();
      auto it = index.find(j.id);
      if (it != index.end()) {
        batch_[it->second] = std::move(j);
        ++settled_;
      } else if (batch_.size() < opt_.max_batch) {
        index.emplace(j.id, batch_.size());
        batch_.push_back(std::move(j));
      } else {
        break;
      }
      queue_.pop_front();
    }
    batch_size_ = batch_.size();
    if (opt_.retention_ms <= 0) prune_requested_ = false;
    const int64_t now = opt_.now_ms();
    const bool prune_due = opt_.retention_ms > 0 && !stop_ &&
                           (prune_requested_ || pruning_ || now - last_prune_ms_ >= opt_.prune_interval.count());
    if (batch_.empty() && !prune_due) {
      done_cv_.notify_all();
      if (stop_) break;
      cv_.wait_for(lk, kIdleWake);
      continue;
    }
    lk.unlock();
    bool ok = true;
    if (!batch_.empty()) {
      const auto t0 = std::chrono::steady_clock::now();
      Status st = store_->upsert(batch_);
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      ok = st.is_ok();
      if (latency_ != nullptr && ok) latency_->observe(secs);
      lk.lock();
      if (ok) {
        if (failures_ > 0) log_info("jobs: the job store answers again; writing resumed");
        failures_ = 0;
        written_ += static_cast<int64_t>(batch_.size());
        if (written_metric_ != nullptr) written_metric_->inc(static_cast<double>(batch_.size()));
        settled_ += batch_.size();
        batch_.clear();
      } else {
        if (errors_metric_ != nullptr) errors_metric_->inc();
        if (failures_ == 0) log_warn("jobs: writing ", batch_.size(), " job record(s) failed, retrying: ", st.to_string());
        ++failures_;
        if (failures_ >= opt_.max_attempts || stop_) {
          // Stopping (or a batch the database keeps refusing): give it up, counted, so the queue
          // behind it moves; when stopping with the database down, everything queued goes too.
          size_t n = batch_.size();
          settled_ += batch_.size();
          batch_.clear();
          if (stop_) {
            n += queue_.size();
            settled_ += queue_.size();
            queue_.clear();
          }
          if (dropped_failed_ != nullptr) dropped_failed_->inc(static_cast<double>(n));
          note_drop(n, "the job store failed every retry");
          failures_ = 0;
        }
      }
      batch_size_ = batch_.size();
      done_cv_.notify_all();
      lk.unlock();
    }
    if (ok && prune_due) prune_step();
    lk.lock();
    if (!ok && !stop_) cv_.wait_for(lk, opt_.retry_backoff, [&] { return stop_; });
  }
}

void JobRecorder::prune_step() {
  const int64_t now = opt_.now_ms();
  Result<int64_t> n = store_->prune(now - opt_.retention_ms, opt_.prune_batch);
  std::lock_guard<std::mutex> lk(mu_);
  if (n.is_ok()) {
    pruned_ += *n;
    if (pruned_metric_ != nullptr) pruned_metric_->inc(static_cast<double>(*n));
    pruning_ = *n >= opt_.prune_batch;  // more to delete: another small batch after the next writes
  } else {
    log_warn("jobs: retention pass failed: ", n.status().to_string());
    pruning_ = false;
  }
  if (!pruning_) {
    last_prune_ms_ = now;
    prune_requested_ = false;
  }
  done_cv_.notify_all();
}

}  // namespace kiln::jobs
