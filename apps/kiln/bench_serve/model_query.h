// Asks the server which model it serves, for runs that do not name one.
#pragma once

#include <string>

#include "bench_serve/target.h"
#include "kiln/core/status.h"

namespace kiln::bench_serve {

// GET {api_base}/models and returns the first model's id.
Result<std::string> fetch_first_model_id(const Target& target, const std::string& api_key, double timeout_s);

}  // namespace kiln::bench_serve
