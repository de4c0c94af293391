// Getting a model for a generation request. A model that is not loaded is loaded by the pool
// first; while that takes, a streamed request's SSE response starts and a keep-alive comment goes
// out every sse_keepalive, so that proxies and clients do not time it out.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "kiln/http/app.h"
#include "kiln/http/openai_request.h"

namespace kiln::http {

// Acquires `params.model` (with the request's keep_alive) and runs `then` on the exchange's strand.
// A failure reaches `then` as client_facing_status() makes it; a model of another kind than the
// endpoint serves (`kind`) reaches it as an invalid-argument status naming "model".
void acquire_model(const AppContext& ctx, const ExchangePtr& ex, const GenerationParams& params,
                   std::function<void(Result<pool::ModelLease>)> then,
                   model::ModelKind kind = model::ModelKind::kGenerate);

// The 400 for a request to a model of the wrong kind: which endpoints that model serves.
Status wrong_model_kind(std::string_view requested, model::ModelKind has);

// A model's error (a failed load, a missing chat template) as an API client may see it, for a
// request that named the model `requested`: that name goes back as the client sent it (through
// echo_value), the model's directory becomes that name, and any other absolute path keeps only
// its last component. Paths stay in the server log, where the pool logs the failure in full.
// `model_dir` may be empty when unknown.
std::string client_facing_message(std::string_view message, std::string_view requested,
                                  std::string_view model_dir = "");

}  // namespace kiln::http
