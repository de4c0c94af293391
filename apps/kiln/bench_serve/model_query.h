// Asks the server which model it serves, for runs that do not name one, and what kiln says about
// the engine behind a model.
#pragma once

#include <string>

#include "bench_serve/target.h"
#include "kiln/core/status.h"

namespace kiln::bench_serve {

// GET {api_base}/models and returns the first model's id.
Result<std::string> fetch_first_model_id(const Target& target, const std::string& api_key, double timeout_s);

// GET {api_base}/models and returns the `device` kiln lists for a loaded `model` (its device and
// weight dtype, e.g. "cpu (2 threads, avx512_bf16, bf16 weights)"); empty when the server says
// nothing of it (another server, a model not loaded) or cannot be asked.
std::string fetch_model_device(const Target& target, const std::string& api_key, double timeout_s,
                               const std::string& model);

}  // namespace kiln::bench_serve
