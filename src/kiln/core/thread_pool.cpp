#include "kiln/core/thread_pool.h"

#include <algorithm>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

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

template <class Done>
bool ThreadPool::spin_until(Done done) {
  const auto deadline = std::chrono::steady_clock::now() + kSpin;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
#if defined(__x86_64__)
    _mm_pause();
#endif
  }
  return true;
}

void ThreadPool::parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(1, grain);
  const int64_t max_pieces = (n + grain - 1) / grain;
  if (max_pieces <= 1 || workers_.empty()) {
    fn(0, n);
    return;
  }
  // A few pieces per thread, handed out as threads ask: a thread that the OS holds up (another
  // process or an HTTP thread on its core) leaves its share to the others instead of stalling
  // the whole loop.
  const int64_t pieces = std::min<int64_t>(max_pieces, int64_t{num_threads()} * kPiecesPerThread);
  const int64_t piece = std::max(grain, (n + pieces - 1) / pieces);
  {
    std::lock_guard<std::mutex> lock(mu_);
    fn_ = &fn;
    n_ = n;
    piece_ = piece;
    next_.store(0, std::memory_order_relaxed);
    helpers_ = static_cast<int>(std::min<int64_t>(static_cast<int64_t>(workers_.size()), (n + piece - 1) / piece - 1));
    pending_.store(helpers_);
    generation_.fetch_add(1);
  }
  cv_work_.notify_all();  // enters the kernel only for a worker that went to sleep
  run_pieces(fn, n, piece);
  if (!spin_until([this] { return pending_.load() == 0; })) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_done_.wait(lock, [this] { return pending_.load() == 0; });
  }
  std::lock_guard<std::mutex> lock(mu_);
  fn_ = nullptr;
}

void ThreadPool::run_pieces(const std::function<void(int64_t, int64_t)>& fn, int64_t n, int64_t piece) {
  while (true) {
    const int64_t begin = next_.fetch_add(piece, std::memory_order_relaxed);
    if (begin >= n) return;
    fn(begin, std::min(n, begin + piece));
  }
}

void ThreadPool::worker_loop(int index) {
  uint64_t seen = 0;
  while (true) {
    spin_until([&] { return generation_.load() != seen; });
    std::unique_lock<std::mutex> lock(mu_);
    cv_work_.wait(lock, [&] { return stop_ || generation_.load() != seen; });
    if (stop_) return;
    seen = generation_.load();
    if (index > helpers_) continue;
    const auto* fn = fn_;
    const int64_t n = n_, piece = piece_;
    lock.unlock();
    run_pieces(*fn, n, piece);
    if (pending_.fetch_sub(1) == 1) {
      lock.lock();  // the caller checks pending_ under mu_ before it sleeps: no lost wake-up
      cv_done_.notify_one();
    }
  }
}

}  // namespace kiln
