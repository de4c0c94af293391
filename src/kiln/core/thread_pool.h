// A fixed pool of worker threads for data-parallel CPU kernels.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace kiln {

class ThreadPool {
 public:
  // num_threads <= 0 means one per hardware thread.
  explicit ThreadPool(int num_threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int num_threads() const { return static_cast<int>(workers_.size()) + 1; }

  // Runs fn(begin, end) over [0, n) split into contiguous pieces of at least `grain` items
  // (a few per thread, taken in order by whichever thread is free), on the pool and the calling
  // thread; returns when all are done. Not reentrant.
  void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

 private:
  static constexpr int64_t kPiecesPerThread = 4;
  // How long a thread polls before it sleeps: a model's ops follow each other within
  // microseconds, and a sleep and wake-up through the kernel costs more than that.
  static constexpr std::chrono::microseconds kSpin{50};

  // Polls `done` until it holds or kSpin has passed; returns whether it holds.
  template <class Done>
  static bool spin_until(Done done);

  void worker_loop(int index);
  void run_pieces(const std::function<void(int64_t, int64_t)>& fn, int64_t n, int64_t piece);

  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable cv_work_, cv_done_;
  const std::function<void(int64_t, int64_t)>* fn_ = nullptr;
  int64_t n_ = 0, piece_ = 0;
  std::atomic<int64_t> next_{0};  // first item of the next piece to hand out
  int helpers_ = 0;               // workers 1 .. helpers_ take part in the current loop
  std::atomic<uint64_t> generation_{0};  // bumped (under mu_) when a loop starts
  std::atomic<int> pending_{0};          // helpers still working on the current loop
  bool stop_ = false;
};

}  // namespace kiln
