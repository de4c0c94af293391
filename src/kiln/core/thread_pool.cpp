#include "kiln/core/thread_pool.h"

#include <algorithm>

namespace kiln {

ThreadPool::ThreadPool(int num_threads) {
  if (num_threads <= 0) num_threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  for (int i = 1; i < num_threads; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_work_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(1, grain);
  const int64_t max_chunks = std::min<int64_t>(num_threads(), (n + grain - 1) / grain);
  if (max_chunks <= 1 || workers_.empty()) {
    fn(0, n);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    fn_ = &fn;
    n_ = n;
    num_chunks_ = static_cast<int>(max_chunks);
    chunk_ = (n + max_chunks - 1) / max_chunks;
    pending_ = num_chunks_ - 1;
    ++generation_;
  }
  cv_work_.notify_all();
  fn(0, std::min(n, chunk_));  // chunk 0 on the calling thread
  std::unique_lock<std::mutex> lock(mu_);
  cv_done_.wait(lock, [this] { return pending_ == 0; });
  fn_ = nullptr;
}

void ThreadPool::worker_loop(int index) {
  uint64_t seen = 0;
  while (true) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_work_.wait(lock, [&] { return stop_ || generation_ != seen; });
    if (stop_) return;
    seen = generation_;
    if (index >= num_chunks_) continue;
    const auto* fn = fn_;
    const int64_t begin = index * chunk_, end = std::min(n_, begin + chunk_);
    lock.unlock();
    if (begin < end) (*fn)(begin, end);
    lock.lock();
    if (--pending_ == 0) cv_done_.notify_one();
  }
}

}  // namespace kiln
