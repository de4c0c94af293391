// What a checkpoint is for: generating text, embedding it, or scoring (reranking) it, read from
// its files. Embedding models are recognised by their sentence-transformers files (modules.json
// with a Pooling module, whose config says how to pool), rerankers by a sequence-classification
// architecture whose scores come from two tokens' logits (the Qwen3-Reranker layout, as vLLM
// declares it: "classifier_from_token": ["no", "yes"]).
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "kiln/core/status.h"

namespace kiln::model {

enum class ModelKind { kGenerate, kEmbed, kRerank };

std::string_view model_kind_name(ModelKind kind);  // "generate", "embed", "rerank"
bool parse_model_kind(std::string_view name, ModelKind* out);

// How an embedding model turns its tokens' hidden states into one vector.
enum class Pooling { kLastToken, kMean };
std::string_view pooling_name(Pooling pooling);  // "lasttoken", "mean"

struct ModelTask {
  ModelKind kind = ModelKind::kGenerate;
  // kEmbed: the sentence-transformers Pooling module's mode, and whether a Normalize module
  // follows it (the vector is then scaled to unit length).
  Pooling pooling = Pooling::kLastToken;
  bool normalize = false;
  // kRerank: the tokens whose logits at the last position make the score, P(yes) =
  // sigmoid(logit(yes) - logit(no)).
  std::string no_token = "no";
  std::string yes_token = "yes";
};

// Reads modules.json (and the Pooling module's config.json) and config.json of `model_dir`.
// Files that say nothing of a kind give kGenerate; a kind kiln cannot serve (CLS or max pooling,
// a classification head of its own) is an error naming the file and field.
Result<ModelTask> load_model_task(const std::filesystem::path& model_dir);

// The same from the files' texts (empty: the file is absent); for tests.
Result<ModelTask> parse_model_task(std::string_view modules_json, std::string_view pooling_json,
                                   std::string_view config_json);

}  // namespace kiln::model
