#include "kiln/http/model_acquire.h"

#include <memory>

#include "kiln/http/sse.h"

namespace kiln::http {

namespace {

struct Wait {
  bool answered = false;  // on the strand only
};

void keep_alive_while_loading(const AppContext& ctx, const ExchangePtr& ex, std::shared_ptr<Wait> wait) {
  ex->post_after(ctx.options->sse_keepalive, [&ctx, ex, wait] {
    if (wait->answered || ex->finished()) return;
    ex->start_stream();
    ex->send(sse_comment("loading model"));
    keep_alive_while_loading(ctx, ex, wait);
  });
}

}  // namespace

void acquire_model(const AppContext& ctx, const ExchangePtr& ex, const GenerationParams& params,
                   std::function<void(Result<pool::ModelLease>)> then) {
  auto wait = std::make_shared<Wait>();
  pool::AcquireOptions options;
  if (params.keep_alive_ms) options.keep_alive = pool::Millis(*params.keep_alive_ms);
  ctx.pool->acquire(params.model, options, [ex, wait, then = std::move(then)](Result<pool::ModelLease> lease) mutable {
    ex->post([wait, then = std::move(then), lease = std::move(lease)]() mutable {
      wait->answered = true;
      then(std::move(lease));
    });
  });
  if (params.stream) keep_alive_while_loading(ctx, ex, wait);
}

}  // namespace kiln::http
