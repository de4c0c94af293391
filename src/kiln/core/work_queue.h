// One thread that runs submitted tasks in order with a resource it owns (a database connection):
// handlers hand it blocking work (queries, file copies) and post the answer back to their
// exchange. At most `max_pending` tasks wait; past that submit() refuses (the caller answers 503).
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

namespace kiln {

template <class Resource>
class WorkQueue {
 public:
  // 256 waiting tasks is far more than a burst of API calls needs, and bounds the memory.
  static constexpr size_t kDefaultMaxPending = 256;

  explicit WorkQueue(std::unique_ptr<Resource> resource, size_t max_pending = kDefaultMaxPending)
      : resource_(std::move(resource)), max_pending_(max_pending), thread_([this] { run(); }) {}
  // Runs what was submitted, then stops.
  ~WorkQueue() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  WorkQueue(const WorkQueue&) = delete;
  WorkQueue& operator=(const WorkQueue&) = delete;

  bool submit(std::function<void(Resource&)> fn) {
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (stop_ || queue_.size() >= max_pending_) return false;
      queue_.push_back(std::move(fn));
    }
    cv_.notify_one();
    return true;
  }

 private:
  void run() {
    std::unique_lock<std::mutex> lk(mu_);
    while (true) {
      cv_.wait(lk, [&] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;
      auto fn = std::move(queue_.front());
      queue_.pop_front();
      lk.unlock();
      fn(*resource_);
      lk.lock();
    }
  }

  std::unique_ptr<Resource> resource_;
  const size_t max_pending_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void(Resource&)>> queue_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace kiln
