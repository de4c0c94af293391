// The token masks of a step's constrained samples, computed on a few threads of the worker's own
// while the engine thread runs the forward pass (which does not need them: only sampling does).
// The engine waits for them just before it samples (runtime::TokenMasks::wait), so a constrained
// batch costs the engine thread only the part of the mask work that outlasts the forward pass;
// the thread that waits takes masks too instead of idling.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "kiln/runtime/step.h"
#include "kiln/serve/scheduler.h"

namespace kiln::serve {

class StepMasker {
 public:
  // num_threads <= 0: half the hardware threads, at most 4. Threads start on first use.
  explicit StepMasker(int num_threads = 0);
  ~StepMasker();
  StepMasker(const StepMasker&) = delete;
  StepMasker& operator=(const StepMasker&) = delete;

  // Gives `plan` the masks of the samples of `out` whose sequence has a constraint (none: leaves
  // plan->masks null) and starts filling them. Until finish() returns, those constraints belong
  // to the mask threads.
  void start(const SchedulerOutput& out, int64_t vocab_size, runtime::StepPlan* plan);
  // Returns once every mask of the last start() is written (at once if the engine has waited).
  void finish();

  int num_threads() const { return num_threads_; }

 private:
  struct Batch;
  void run(Batch& b);
  void thread_main();

  const int num_threads_;
  std::vector<std::thread> threads_;
  std::shared_ptr<runtime::TokenMasks> masks_;  // reused from step to step
  std::mutex mu_;
  std::condition_variable cv_work_, cv_done_;
  std::shared_ptr<Batch> batch_;  // the last start()'s; threads hold it while they work on it
  uint64_t generation_ = 0;
  bool stop_ = false;
};

}  // namespace kiln::serve
