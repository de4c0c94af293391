#include "kiln/jobs/query_runner.h"

namespace kiln::jobs {

JobQueries::JobQueries(std::unique_ptr<JobStore> store, size_t max_pending)
    : store_(std::move(store)), max_pending_(max_pending), thread_([this] { run(); }) {}

JobQueries::~JobQueries() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

bool JobQueries::submit(std::function<void(JobStore&)> fn) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (stop_ || queue_.size() >= max_pending_) return false;
    queue_.push_back(std::move(fn));
  }
  cv_.notify_one();
  return true;
}

void JobQueries::run() {
  std::unique_lock<std::mutex> lk(mu_);
  while (true) {
    cv_.wait(lk, [&] { return stop_ || !queue_.empty(); });
    if (queue_.empty()) return;
    auto fn = std::move(queue_.front());
    queue_.pop_front();
    lk.unlock();
    fn(*store_);
    lk.lock();
  }
}

}  // namespace kiln::jobs
