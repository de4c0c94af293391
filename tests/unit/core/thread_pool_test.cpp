// ThreadPool::parallel_for covers every item exactly once, in contiguous pieces of at least the
// grain, on any number of threads, loop after loop.
#include "kiln/core/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

namespace kiln {
namespace {

TEST(ThreadPoolTest, CoversEveryItemOnceInPiecesOfAtLeastTheGrain) {
  for (int threads : {1, 2, 3, 8}) {
    ThreadPool pool(threads);
    for (int64_t n : {1, 2, 7, 64, 1000, 4099}) {
      for (int64_t grain : {1, 3, 64, 5000}) {
        std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
        std::mutex mu;
        std::vector<std::pair<int64_t, int64_t>> pieces;
        pool.parallel_for(n, grain, [&](int64_t b, int64_t e) {
          for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)]++;
          std::lock_guard<std::mutex> lock(mu);
          pieces.emplace_back(b, e);
        });
        for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[static_cast<size_t>(i)].load(), 1) << n << " " << grain << " " << i;
        for (auto [b, e] : pieces) {
          ASSERT_LT(b, e);
          // Only the last piece may be shorter than the grain.
          if (e != n) {
            EXPECT_GE(e - b, std::min(grain, n)) << n << " " << grain;
          }
        }
      }
    }
  }
}

TEST(ThreadPoolTest, AThreadHeldUpLeavesItsShareToTheOthers) {
  ThreadPool pool(2);
  std::atomic<int> done{0}, by_caller{0};
  std::atomic<bool> stalled{false};
  const auto caller = std::this_thread::get_id();
  pool.parallel_for(64, 1, [&](int64_t b, int64_t e) {
    const int items = static_cast<int>(e - b);
    if (std::this_thread::get_id() == caller) {
      by_caller += items;
    } else if (!stalled.exchange(true)) {
      // The worker's first piece stalls until every other item is done.
      while (done.load() < 64 - items) std::this_thread::yield();
    }
    done += items;
  });
  EXPECT_EQ(done.load(), 64);
  // Halves fixed in advance would leave the caller 32 items; here it takes all but one piece.
  EXPECT_GT(by_caller.load(), 32);
}

}  // namespace
}  // namespace kiln
