// Loading one model for the pool: the engine, tokenizer, chat template and configs, and its worker,
// reporting the phase it is in and what the engine really allocated.
#pragma once

#include <functional>
#include <memory>
#include <string_view>

#include "kiln/pool/model_pool.h"
#include "kiln/pool/single_model_pool.h"
#include "kiln/runtime/engine.h"

namespace kiln::pool {

// Called as loading moves on: the phase ("tokenizer", "weights", "worker") and a fraction 0..1.
using LoadProgress = std::function<void(std::string_view phase, double fraction)>;

struct LoadResult {
  std::shared_ptr<LoadedModel> model;
  runtime::MemoryUsage memory;  // the engine's own figures, read before its worker starts
};

// As load_model (single_model_pool.h), with progress and the engine's memory usage.
Result<LoadResult> load_model_measured(const ModelLoadOptions& options, const LoadProgress& progress = nullptr);

}  // namespace kiln::pool
