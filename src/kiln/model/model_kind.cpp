#include "kiln/model/model_kind.h"

#include <nlohmann/json.hpp>

#include "kiln/core/file.h"
#include "kiln/core/str.h"

namespace kiln::model {
namespace {

using nlohmann::json;

constexpr std::string_view kPoolingType = "sentence_transformers.models.Pooling";
constexpr std::string_view kNormalizeType = "sentence_transformers.models.Normalize";

Result<json> parse(std::string_view text, std::string_view source) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return invalid_argument(str_cat(source, ": not valid JSON"));
  return j;
}

bool flag(const json& obj, const char* key) {
  auto it = obj.find(key);
  return it != obj.end() && it->is_boolean() && it->get<bool>();
}

// The Pooling module's directory in modules.json ("" when there is none).
Result<std::string> pooling_path(const json& modules) {
  if (!modules.is_array()) return invalid_argument("modules.json: must be a list of modules");
  for (const json& m : modules) {
    if (!m.is_object()) return invalid_argument("modules.json: every module must be an object");
    auto type = m.find("type");
    if (type != m.end() && type->is_string() && *type == kPoolingType) {
      auto path = m.find("path");
      if (path == m.end() || !path->is_string()) return invalid_argument("modules.json: the Pooling module has no path");
      return path->get<std::string>();
    }
  }
  return std::string();
}

bool has_module(const json& modules, std::string_view type) {
  for (const json& m : modules) {
    auto t = m.find("type");
    if (t != m.end() && t->is_string() && *t == type) return true;
  }
  return false;
}

Status read_pooling(std::string_view text, std::string_view source, ModelTask* task) {
  KILN_ASSIGN_OR_RETURN(json p, parse(text, source));
  if (!p.is_object()) return invalid_argument(str_cat(source, ": must be an object"));
  const bool last = flag(p, "pooling_mode_lasttoken"), mean = flag(p, "pooling_mode_mean_tokens");
  for (const char* unsupported : {"pooling_mode_cls_token", "pooling_mode_max_tokens", "pooling_mode_mean_sqrt_len_tokens",
                                  "pooling_mode_weightedmean_tokens"}) {
    if (flag(p, unsupported)) {
      return unimplemented(str_cat(source, ": '", unsupported,
                                   "' pooling is not supported (kiln pools decoder models by last token or mean)"));
    }
  }
  if (last == mean) {
    return invalid_argument(str_cat(source, ": exactly one of 'pooling_mode_lasttoken' and 'pooling_mode_mean_tokens' must be true"));
  }
  task->pooling = last ? Pooling::kLastToken : Pooling::kMean;
  return Status::ok();
}

Status read_rerank_config(const json& config, ModelTask* task) {
  auto arch = config.find("architectures");
  if (arch == config.end() || !arch->is_array() || arch->empty() || !(*arch)[0].is_string()) return Status::ok();
  const std::string name = (*arch)[0].get<std::string>();
  constexpr std::string_view kSuffix = "ForSequenceClassification";
  if (name.size() < kSuffix.size() || name.compare(name.size() - kSuffix.size(), kSuffix.size(), kSuffix) != 0) {
    return Status::ok();
  }
  auto tokens = config.find("classifier_from_token");
  if (tokens == config.end() || !tokens->is_array() || tokens->size() != 2 || !(*tokens)[0].is_string() ||
      !(*tokens)[1].is_string()) {
    return unimplemented(str_cat("config.json: architecture '", name,
                                 "' needs \"classifier_from_token\": [\"no\", \"yes\"] (kiln scores rerankers from "
                                 "two tokens' logits; classification heads of their own are not supported)"));
  }
  task->kind = ModelKind::kRerank;
  task->no_token = (*tokens)[0].get<std::string>();
  task->yes_token = (*tokens)[1].get<std::string>();
  return Status::ok();
}

}  // namespace

std::string_view model_kind_name(ModelKind kind) {
  switch (kind) {
    case ModelKind::kGenerate: return "generate";
    case ModelKind::kEmbed: return "embed";
    case ModelKind::kRerank: return "rerank";
  }
  return "generate";
}

bool parse_model_kind(std::string_view name, ModelKind* out) {
  for (ModelKind k : {ModelKind::kGenerate, ModelKind::kEmbed, ModelKind::kRerank}) {
    if (name == model_kind_name(k)) {
      *out = k;
      return true;
    }
  }
  return false;
}

std::string_view pooling_name(Pooling pooling) { return pooling == Pooling::kMean ? "mean" : "lasttoken"; }

Result<ModelTask> parse_model_task(std::string_view modules_json, std::string_view pooling_json,
                                   std::string_view config_json) {
  ModelTask task;
  if (!config_json.empty()) {
    KILN_ASSIGN_OR_RETURN(json config, parse(config_json, "config.json"));
    if (config.is_object()) KILN_RETURN_IF_ERROR(read_rerank_config(config, &task));
  }
  if (modules_json.empty() || task.kind == ModelKind::kRerank) return task;
  KILN_ASSIGN_OR_RETURN(json modules, parse(modules_json, "modules.json"));
  KILN_ASSIGN_OR_RETURN(std::string path, pooling_path(modules));
  if (path.empty()) return task;  // a sentence-transformers model without pooling: not an embedder we know
  if (pooling_json.empty()) return invalid_argument(str_cat(path, "/config.json: missing (modules.json names it)"));
  KILN_RETURN_IF_ERROR(read_pooling(pooling_json, str_cat(path, "/config.json"), &task));
  task.kind = ModelKind::kEmbed;
  task.normalize = has_module(modules, kNormalizeType);
  return task;
}

Result<ModelTask> load_model_task(const std::filesystem::path& dir) {
  auto read_if = [](const std::filesystem::path& p) -> Result<std::string> {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(p, ec)) return std::string();
    return read_file(p);
  };
  KILN_ASSIGN_OR_RETURN(std::string config, read_if(dir / "config.json"));
  KILN_ASSIGN_OR_RETURN(std::string modules, read_if(dir / "modules.json"));
  std::string pooling;
  if (!modules.empty()) {
    auto j = json::parse(modules, nullptr, false);
    if (!j.is_discarded()) {
      auto path = pooling_path(j);
      if (path.is_ok() && !path->empty()) {
        // The module path comes from the checkpoint: keep it inside the model directory.
        const std::filesystem::path rel = std::filesystem::path(*path).lexically_normal();
        if (rel.is_absolute() || (!rel.empty() && *rel.begin() == "..")) {
          return invalid_argument(str_cat("modules.json: Pooling path '", *path, "' leaves the model directory"));
        }
        KILN_ASSIGN_OR_RETURN(pooling, read_if(dir / rel / "config.json"));
      }
    }
  }
  return parse_model_task(modules, pooling, config);
}

}  // namespace kiln::model
