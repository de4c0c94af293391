// The model registry: what `kiln serve` can serve. Model directories under --models-dir, the
// Hugging Face cache, and models named in kiln.toml ([models."alias"]). A model's id is its
// registry name ("name", "org/name" or the alias), never a path taken from a request.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string_view>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/core/status.h"
#include "kiln/model/model_kind.h"
#include "kiln/runtime/weight_dtype.h"

namespace kiln::pool {

using Millis = std::chrono::milliseconds;

// Per-model settings (kiln.toml); an unset field takes the server's default.
struct ModelSettings {
  std::optional<int64_t> context_length;   // max_model_len
  std::optional<int32_t> max_seqs;
  std::optional<runtime::WeightDType> dtype;  // how the CPU stores linear weights (--dtype)
  std::optional<int64_t> kv_cache_bytes;   // the model's KV cache size
  bool kv_rest = false;                    // kv_cache_memory = "rest": what the budget leaves
  std::optional<double> kv_share;          // or: this share of the memory budget
  bool pinned = false;                     // loaded at start and never unloaded by the pool
  std::optional<Millis> keep_alive;        // idle time before unloading; negative: never
  // Default sampling, over the model's generation_config.json.
  std::optional<double> temperature;
  std::optional<double> top_p;
  std::optional<int64_t> top_k;
  std::optional<double> min_p;
  std::optional<double> repetition_penalty;
  // Output parsers (docs/tool-calling-api.md): a family name, "none", or unset to detect it from
  // the chat template and tokenizer.
  std::optional<std::string> tool_parser;
  std::optional<std::string> reasoning_parser;
  // Keep request and response bodies in the job store (docs/jobs.md); unset: --store-bodies.
  std::optional<bool> store_bodies;
  // What the model serves, over what its files say (docs/embeddings.md): a downloaded
  // Qwen3-Reranker's files look like a chat model's.
  std::optional<model::ModelKind> kind;
};

// Checks a tool_parser / reasoning_parser setting: a known family name or "none".
Status check_output_parser_setting(std::string_view kind, std::string_view value);

enum class ModelSource { kConfig, kModelsDir, kHuggingFaceCache };
std::string_view model_source_name(ModelSource s);  // "config", "models_dir", "hf_cache"

struct ModelEntry {
  std::string id;
  std::filesystem::path dir;
  ModelSource source = ModelSource::kModelsDir;
  ModelSettings settings;
  std::string owned_by = "kiln";
  std::string description;
  int64_t created = 0;  // unix seconds (the directory's modification time)
  // What it serves, from its files when scanned; a model whose files cannot say stays kGenerate
  // here and fails its load with the reason.
  model::ModelKind kind = model::ModelKind::kGenerate;
};

// One value of a settings file: the text of a scalar, or the items of an array, and its line.
struct SettingValue {
  std::vector<std::string> items;
  bool is_array = false;
  int line = 0;
};

// Reads the [models."alias"] tables of a settings file: keys "models.<alias>.<setting>" (the
// alias may contain dots and slashes; settings never do). `path` is required; relative paths are
// taken from `base_dir` (the settings file's directory). Errors name the file, line and key.
Result<std::vector<ModelEntry>> parse_model_tables(const std::map<std::string, SettingValue>& values,
                                                   std::string_view source, const std::filesystem::path& base_dir);

// "30s", "5m", "1h", "7d", "250ms", a bare number of seconds, or a negative value (forever).
Result<Millis> parse_duration(std::string_view text);
// "-1" -> "forever", else e.g. "5m" / "30s" / "250ms".
std::string format_duration(Millis d);

// True when `dir` holds config.json and model.safetensors or model.safetensors.index.json.
bool is_model_dir(const std::filesystem::path& dir);

// Model directories under `root`: root/NAME (id "NAME") and root/ORG/NAME (id "ORG/NAME").
// Hidden entries (".name") are skipped.
std::vector<ModelEntry> scan_models_dir(const std::filesystem::path& root);

// Snapshots in a Hugging Face hub cache (`hub` is e.g. ~/.cache/huggingface/hub):
// models--ORG--NAME/snapshots/REV with id "ORG/NAME"; REV is refs/main's, else the newest snapshot.
std::vector<ModelEntry> scan_hf_cache(const std::filesystem::path& hub);

// $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub.
std::filesystem::path default_hf_hub_dir();

struct RegistryScan {
  std::vector<std::filesystem::path> models_dirs;
  std::optional<std::filesystem::path> hf_hub;  // nullopt: the HF cache is not scanned
  std::vector<ModelEntry> configured;           // kiln.toml and --model: they win over scanned ones
};

// Every servable model, by id: configured entries first, then the models dirs in order, then the
// HF cache; a later entry with an id already taken is skipped (and noted in `notes`).
std::vector<ModelEntry> scan_registry(const RegistryScan& scan, std::vector<std::string>* notes = nullptr);

// What the pool calls at start and on every rescan (SIGHUP, POST /v1/admin/models/rescan): it
// re-reads the settings file and scans the directories.
using RegistrySource = std::function<Result<std::vector<ModelEntry>>()>;

}  // namespace kiln::pool
