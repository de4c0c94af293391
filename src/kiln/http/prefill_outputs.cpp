#include "kiln/http/prefill_outputs.h"

#include <atomic>
#include <memory>

#include "kiln/core/str.h"

namespace kiln::http {
namespace {

class PrefillSession : public std::enable_shared_from_this<PrefillSession> {
 public:
  PrefillSession(ExchangePtr ex, pool::ModelLease lease, std::vector<std::vector<int32_t>> prompts,
                 serve::RequestOutput output, std::function<void(PrefillOutputs*, std::optional<ApiError>)> done)
      : ex_(std::move(ex)), lease_(std::move(lease)), prompts_(std::move(prompts)), output_(output),
        done_(std::move(done)) {
    result_.outputs.resize(prompts_.size());
  }

  void start() {
    auto self = shared_from_this();
    ex_->on_client_gone([self] { self->cancel_all(); });
    if (prompts_.empty()) return finish(std::nullopt);
    fill_window();
  }

 private:
  struct InFlight {
    size_t index = 0;
    std::shared_ptr<serve::TokenStream> stream;
  };

  void fill_window() {
    while (!finished_ && next_ < prompts_.size() && in_flight_.size() < kPrefillWindow) {
      serve::Request r;
      r.id = ex_->request_id();
      r.prompt = std::move(prompts_[next_]);
      r.output = output_;
      serve::SubmitResult sub = lease_.worker().submit(std::move(r));
      if (!sub.ok()) {
        ApiError e = api_error_from_status(sub.status, sub.status.param() == "prompt" ? "input" : sub.status.param());
        if (sub.retry_after_seconds > 0) e.retry_after_seconds = sub.retry_after_seconds;
        cancel_all();
        return finish(e);
      }
      std::weak_ptr<PrefillSession> weak = shared_from_this();
      ExchangePtr ex = ex_;
      sub.stream->set_notify([weak, ex] {
        auto me = weak.lock();
        if (!me || me->wake_pending_.exchange(true)) return;
        ex->post([me] {
          me->wake_pending_ = false;
          me->drain();
        });
      });
      in_flight_.push_back({next_, std::move(sub.stream)});
      ++next_;
    }
  }

  void drain() {
    if (finished_) return;
    for (size_t i = 0; i < in_flight_.size();) {
      serve::StreamChunk chunk = in_flight_[i].stream->take();
      if (!chunk.done) {
        ++i;
        continue;
      }
      if (!chunk.error.is_ok()) {
        cancel_all();
        return finish(api_error_from_status(chunk.error));
      }
      result_.prompt_tokens += chunk.usage.prompt_tokens;
      result_.outputs[in_flight_[i].index] = std::move(chunk.output);
      in_flight_.erase(in_flight_.begin() + static_cast<ptrdiff_t>(i));
    }
    if (in_flight_.empty() && next_ == prompts_.size()) return finish(std::nullopt);
    fill_window();
  }

  void cancel_all() {
    for (const auto& f : in_flight_) f.stream->cancel();
  }

  void finish(std::optional<ApiError> error) {
    if (finished_) return;
    finished_ = true;
    in_flight_.clear();
    if (ex_->client_gone() || ex_->finished()) return;
    done_(&result_, std::move(error));
  }

  ExchangePtr ex_;
  pool::ModelLease lease_;
  std::vector<std::vector<int32_t>> prompts_;
  serve::RequestOutput output_;
  std::function<void(PrefillOutputs*, std::optional<ApiError>)> done_;
  PrefillOutputs result_;
  std::vector<InFlight> in_flight_;
  size_t next_ = 0;
  bool finished_ = false;
  std::atomic<bool> wake_pending_{false};
};

}  // namespace

void run_prefill_outputs(const ExchangePtr& ex, pool::ModelLease lease, std::vector<std::vector<int32_t>> prompts,
                         serve::RequestOutput output,
                         std::function<void(PrefillOutputs*, std::optional<ApiError>)> done) {
  auto s = std::make_shared<PrefillSession>(ex, std::move(lease), std::move(prompts), output, std::move(done));
  s->start();
}

}  // namespace kiln::http
