#include "kiln/serve/step_masker.h"

#include <algorithm>
#include <atomic>
#include <exception>
#include <span>

#include "kiln/core/log.h"

namespace kiln::serve {

// One start()'s work. A thread that wakes late for an old batch finds its counter spent and
// leaves, so a new batch never sees an old one's jobs.
struct StepMasker::Batch {
  std::vector<TokenConstraint*> jobs;  // job i fills mask row i
  uint32_t* words = nullptr;
  size_t words_per_row = 0;
  std::atomic<size_t> next{0};
  std::atomic<size_t> done{0};
};

StepMasker::StepMasker(int num_threads)
    : num_threads_(num_threads > 0 ? num_threads
                                   : std::clamp(static_cast<int>(std::thread::hardware_concurrency()) / 2, 1, 4)) {}

StepMasker::~StepMasker() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_work_.notify_all();
  for (std::thread& t : threads_) t.join();
}

void StepMasker::run(Batch& b) {
  for (size_t i = b.next.fetch_add(1); i < b.jobs.size(); i = b.next.fetch_add(1)) {
    const std::span<uint32_t> row(b.words + i * b.words_per_row, b.words_per_row);
    try {
      b.jobs[i]->fill_mask(row);
    } catch (const std::exception& e) {
      // Nothing allowed: the sampler reports it and the scheduler fails just this sequence.
      log_error("token mask failed: ", e.what());
      std::fill(row.begin(), row.end(), 0u);
    }
    if (b.done.fetch_add(1) + 1 == b.jobs.size()) {
      std::lock_guard<std::mutex> lock(mu_);
      cv_done_.notify_all();
    }
  }
}

void StepMasker::thread_main() {
  uint64_t seen = 0;
  while (true) {
    std::shared_ptr<Batch> b;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_work_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
      b = batch_;
    }
    if (b != nullptr) run(*b);  // null: the batch was finished before this thread woke
  }
}

void StepMasker::start(const SchedulerOutput& out, int64_t vocab_size, runtime::StepPlan* plan) {
  auto b = std::make_shared<Batch>();
  std::vector<int32_t> row_of_sample;
  for (const ScheduledSequence& e : out.seqs) {
    if (!e.samples) continue;
    TokenConstraint* c = e.seq->constraint.get();
    row_of_sample.push_back(c != nullptr ? static_cast<int32_t>(b->jobs.size()) : -1);
    if (c != nullptr) b->jobs.push_back(c);
  }
  if (b->jobs.empty()) return;
  // The engine has dropped the previous step's plan; if something still held the masks, a fresh
  // set is safer than writing under it.
  if (masks_ == nullptr || masks_.use_count() > 1) masks_ = std::make_shared<runtime::TokenMasks>();
  runtime::TokenMasks& m = *masks_;
  m.words_per_row = static_cast<int32_t>((vocab_size + 31) / 32);
  m.row_of_sample = std::move(row_of_sample);
  m.words.resize(b->jobs.size() * static_cast<size_t>(m.words_per_row));
  b->words = m.words.data();
  b->words_per_row = static_cast<size_t>(m.words_per_row);
  m.wait = [this]() -> Status {
    finish();
    return Status::ok();
  };
  {
    std::lock_guard<std::mutex> lock(mu_);
    batch_ = b;
    ++generation_;
    while (static_cast<int>(threads_.size()) < num_threads_) threads_.emplace_back([this] { thread_main(); });
  }
  cv_work_.notify_all();
  plan->masks = masks_;
}

void StepMasker::finish() {
  std::shared_ptr<Batch> b;
  {
    std::lock_guard<std::mutex> lock(mu_);
    b = batch_;
  }
  if (b == nullptr) return;
  run(*b);  // the waiting thread takes masks too
  std::unique_lock<std::mutex> lock(mu_);
  cv_done_.wait(lock, [&] { return b->done.load() == b->jobs.size(); });
  if (batch_ == b) batch_.reset();
}

}  // namespace kiln::serve
