#include "kiln/serve/token_stream.h"

namespace kiln::serve {

TokenStream::TokenStream(std::string request_id, int32_t num_choices, SteadyTime submitted)
    : request_id_(std::move(request_id)),
      num_choices_(num_choices),
      submitted_(submitted),
      early_finish_(static_cast<size_t>(num_choices), FinishReason::kNone),
      early_finish_applied_(static_cast<size_t>(num_choices), false),
      ended_(static_cast<size_t>(num_choices), false),
      delivered_(static_cast<size_t>(num_choices), 0) {
  timing_.submitted = submitted;
}

void TokenStream::set_notify(std::function<void()> notify) {
  std::unique_lock<std::mutex> lock(mu_);
  notify_ = std::move(notify);
  notify_if_ready(lock);
}

void TokenStream::notify_if_ready(std::unique_lock<std::mutex>& lock) {
  const bool ready = done_ || !pending_.tokens.empty() || !pending_.finished.empty();
  std::function<void()> fn = ready ? notify_ : nullptr;
  lock.unlock();
  if (ready) cv_.notify_all();
  if (fn) fn();
}

StreamChunk TokenStream::take() {
  std::lock_guard<std::mutex> lock(mu_);
  StreamChunk out;
  out.tokens.swap(pending_.tokens);
  out.finished.swap(pending_.finished);
  out.done = pending_.done;
  out.error = pending_.error;
  out.usage = pending_.usage;
  out.timing = pending_.timing;
  out.output.swap(pending_.output);
  return out;
}

StreamChunk TokenStream::wait_take(std::chrono::milliseconds timeout) {
  {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, timeout, [&] { return done_ || !pending_.tokens.empty() || !pending_.finished.empty(); });
  }
  return take();
}

bool TokenStream::done() const {
  std::lock_guard<std::mutex> lock(mu_);
  return done_;
}

void TokenStream::cancel() { cancel_requested_.store(true, std::memory_order_release); }

void TokenStream::finish_choice(int32_t choice, FinishReason reason) {
  if (choice < 0 || choice >= num_choices_ || reason == FinishReason::kNone) return;
  std::lock_guard<std::mutex> lock(mu_);
  const size_t c = static_cast<size_t>(choice);
  if (ended_[c] || early_finish_[c] != FinishReason::kNone) return;
  early_finish_[c] = reason;
}

std::vector<std::pair<int32_t, FinishReason>> TokenStream::take_finish_requests() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::pair<int32_t, FinishReason>> out;
  for (size_t c = 0; c < early_finish_.size(); ++c) {
    if (early_finish_[c] != FinishReason::kNone && !early_finish_applied_[c] && !ended_[c]) {
      early_finish_applied_[c] = true;
      out.emplace_back(static_cast<int32_t>(c), early_finish_[c]);
    }
  }
  return out;
}

void TokenStream::mark_scheduled(SteadyTime now) {
  std::lock_guard<std::mutex> lock(mu_);
  if (timing_.first_scheduled == SteadyTime{}) timing_.first_scheduled = now;
}

void TokenStream::push_tokens(std::vector<StreamToken> tokens, SteadyTime now) {
  std::unique_lock<std::mutex> lock(mu_);
  if (done_) return;
  for (StreamToken& t : tokens) {
    if (t.choice < 0 || t.choice >= num_choices_) continue;
    const size_t c = static_cast<size_t>(t.choice);
    if (ended_[c] || early_finish_[c] != FinishReason::kNone) continue;
    ++delivered_[c];
    pending_.tokens.push_back(std::move(t));
  }
  if (!pending_.tokens.empty() && timing_.first_token == SteadyTime{}) timing_.first_token = now;
  notify_if_ready(lock);
}

void TokenStream::push_finished(int32_t choice, FinishReason reason) {
  std::unique_lock<std::mutex> lock(mu_);
  if (done_ || choice < 0 || choice >= num_choices_) return;
  const size_t c = static_cast<size_t>(choice);
  if (ended_[c]) return;
  ended_[c] = true;
  if (early_finish_[c] != FinishReason::kNone) reason = early_finish_[c];
  pending_.finished.emplace_back(choice, reason);
  notify_if_ready(lock);
}

void TokenStream::complete(Usage usage, Status error, SteadyTime now, std::vector<float> output) {
  std::unique_lock<std::mutex> lock(mu_);
  if (done_) return;
  done_ = true;
  const FinishReason fallback = error.code() == StatusCode::kCancelled ? FinishReason::kCancelled : FinishReason::kError;
  usage.completion_tokens = 0;
  for (size_t c = 0; c < ended_.size(); ++c) {
    usage.completion_tokens += delivered_[c];
    if (ended_[c]) continue;
    ended_[c] = true;
    pending_.finished.emplace_back(static_cast<int32_t>(c),
                                   early_finish_[c] != FinishReason::kNone ? early_finish_[c] : fallback);
  }
  timing_.finished = now;
  timing_.steps = steps_.load();
  pending_.done = true;
  pending_.error = std::move(error);
  pending_.usage = usage;
  pending_.timing = timing_;
  pending_.output = std::move(output);
  notify_if_ready(lock);
}

}  // namespace kiln::serve
