// The files that make a `kiln make-model` checkpoint an embedding model or a reranker
// (model_kind.h reads them back), written beside its config.json and tokenizer.json.
#pragma once

#include <filesystem>
#include <string>

#include "kiln/core/status.h"
#include "kiln/model/model_kind.h"

namespace kiln::model {

// kEmbed: the sentence-transformers files of Qwen3-Embedding (modules.json, 1_Pooling/config.json
// with last-token pooling, a Normalize module, sentence_bert_config.json,
// config_sentence_transformers.json) and a tokenizer.json whose post-processor appends
// <|endoftext|>, as Qwen3-Embedding's does. kRerank: config.json declares the sequence-classifier
// architecture with "classifier_from_token": ["no", "yes"]. kGenerate: removes such files an
// earlier run may have left. `eos_token` is the token the embedding tokenizer appends.
Status write_task_files(const std::filesystem::path& dir, ModelKind kind, const std::string& eos_token);

// The checkpoint's tensor name for `name` ("model.layers.0..."): Qwen3-Embedding's are saved from
// the bare decoder, without the "model." prefix.
std::string task_tensor_name(ModelKind kind, const std::string& name);

}  // namespace kiln::model
