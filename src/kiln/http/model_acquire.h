// Getting a model for a generation request. A model that is not loaded is loaded by the pool
// first; while that takes, a streamed request's SSE response starts and a keep-alive comment goes
// out every sse_keepalive, so that proxies and clients do not time it out.
#pragma once

#include <functional>
#include <string>

#include "kiln/http/app.h"
#include "kiln/http/openai_request.h"

namespace kiln::http {

// Acquires `params.model` (with the request's keep_alive) and runs `then` on the exchange's strand.
void acquire_model(const AppContext& ctx, const ExchangePtr& ex, const GenerationParams& params,
                   std::function<void(Result<pool::ModelLease>)> then);

}  // namespace kiln::http
