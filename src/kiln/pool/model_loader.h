// Loading one model for the pool: the engine, tokenizer, chat template and configs, and its worker,
// reporting the phase it is in and what the engine really allocated.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string_view>

#include <filesystem>
#include <string>

#include "kiln/metrics/metrics.h"
#include "kiln/pool/model_pool.h"
#include "kiln/runtime/engine.h"
#include "kiln/serve/engine_worker.h"

namespace kiln::pool {

struct ModelLoadOptions {
  std::filesystem::path dir;
  std::string served_name;          // empty: the directory's name
  runtime::EngineOptions engine;
  serve::EngineWorkerOptions worker;  // model_name, max_model_len, vocab and KV come from the engine
  std::string owned_by = "kiln";
  std::string description;
  // Output parsers: a family name, "none", or empty to detect them (text::detect_output_formats).
  std::string tool_parser;
  std::string reasoning_parser;
  std::optional<bool> store_bodies;  // ModelSettings::store_bodies
  // Overrides the kind the model's files give (kiln.toml `kind`); an embedder declared so without
  // sentence-transformers files pools its last token and normalises.
  std::optional<model::ModelKind> kind;
};

// Called as loading moves on: the phase ("tokenizer", "weights", "worker") and a fraction 0..1.
using LoadProgress = std::function<void(std::string_view phase, double fraction)>;

struct LoadResult {
  std::shared_ptr<LoadedModel> model;
  runtime::MemoryUsage memory;  // the engine's own figures, read before its worker starts
};

// Loads the engine, tokenizer, chat template and configs of `options.dir` and starts its worker,
// reporting progress; returns the model with the engine's memory usage. A model without a chat
// template still serves completions; chat requests get a 400 saying so.
Result<LoadResult> load_model_measured(const ModelLoadOptions& options, const LoadProgress& progress = nullptr);

// Exposes a model's worker counters (queue depth, running sequences, KV usage, ...) as callback
// gauges labelled with the model's id.
void register_model_metrics(metrics::Registry& registry, const std::shared_ptr<LoadedModel>& model);

}  // namespace kiln::pool
