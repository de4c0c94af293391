// Runs prompts that generate nothing (embeddings, rerank scores) on a model's engine worker and
// collects one vector per prompt. Each prompt is one serve::Request with a prefill-only output;
// at most kPrefillWindow of them are in the worker at once, so that a request with thousands of
// inputs neither fills the worker's queue (--max-queue) nor holds back other clients' requests.
//
// Threading as for generation.h: everything runs on the exchange's strand, woken by the token
// streams' notify callbacks; a client that goes away cancels what is in flight.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "kiln/http/app.h"
#include "kiln/http/errors.h"
#include "kiln/pool/model_pool.h"
#include "kiln/serve/request.h"

namespace kiln::http {

inline constexpr size_t kPrefillWindow = 64;

struct PrefillOutputs {
  std::vector<std::vector<float>> outputs;  // [prompts], in prompt order
  int64_t prompt_tokens = 0;
};

// Calls `done` once, on the strand: with the outputs, or with the error to answer (the worker's
// 503 with Retry-After when its queue is full, a 400 naming "input" for a refused prompt, a 500
// for an engine failure). Not called when the client went away.
void run_prefill_outputs(const ExchangePtr& ex, pool::ModelLease lease, std::vector<std::vector<int32_t>> prompts,
                         serve::RequestOutput output,
                         std::function<void(PrefillOutputs*, std::optional<ApiError>)> done);

}  // namespace kiln::http
