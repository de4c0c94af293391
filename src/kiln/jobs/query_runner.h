// Runs job-store reads (list, get, stats, export pages) on one thread with its own connection, so
// an HTTP thread never waits for the database: a handler submits a query and posts the answer
// back to its exchange. At most `max_pending` queries wait; past that submit() refuses (503).
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "kiln/jobs/store.h"

namespace kiln::jobs {

class JobQueries {
 public:
  explicit JobQueries(std::unique_ptr<JobStore> store, size_t max_pending = 256);
  // Runs what was submitted, then stops.
  ~JobQueries();
  JobQueries(const JobQueries&) = delete;
  JobQueries& operator=(const JobQueries&) = delete;

  // `fn` runs later on the query thread with the store. False when too many queries wait.
  bool submit(std::function<void(JobStore&)> fn);

 private:
  void run();

  std::unique_ptr<JobStore> store_;
  const size_t max_pending_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void(JobStore&)>> queue_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace kiln::jobs
