#include "kiln/model/task_files.h"

#include <nlohmann/json.hpp>

#include "kiln/core/file.h"
#include "kiln/core/str.h"

namespace kiln::model {
namespace {

namespace fs = std::filesystem;
using nlohmann::ordered_json;

constexpr const char* kTaskFiles[] = {"modules.json", "sentence_bert_config.json", "config_sentence_transformers.json",
                                      "1_Pooling/config.json"};

Result<ordered_json> read_json(const fs::path& p) {
  KILN_ASSIGN_OR_RETURN(std::string text, read_file(p));
  ordered_json j = ordered_json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return invalid_argument(str_cat(p.string(), ": not a JSON object"));
  return j;
}

Status write_json(const fs::path& p, const ordered_json& j) { return write_file_atomic(p, j.dump(2) + "\n"); }

Status write_embedding_files(const fs::path& dir, const std::string& eos_token) {
  const ordered_json modules = ordered_json::array(
      {{{"idx", 0}, {"name", "0"}, {"path", ""}, {"type", "sentence_transformers.models.Transformer"}},
       {{"idx", 1}, {"name", "1"}, {"path", "1_Pooling"}, {"type", "sentence_transformers.models.Pooling"}},
       {{"idx", 2}, {"name", "2"}, {"path", "2_Normalize"}, {"type", "sentence_transformers.models.Normalize"}}});
  KILN_RETURN_IF_ERROR(write_json(dir / "modules.json", modules));
  KILN_ASSIGN_OR_RETURN(ordered_json config, read_json(dir / "config.json"));
  std::error_code ec;
  fs::create_directories(dir / "1_Pooling", ec);
  if (ec) return failed_precondition(str_cat((dir / "1_Pooling").string(), ": cannot create: ", ec.message()));
  const ordered_json pooling = {{"word_embedding_dimension", config.value("hidden_size", 0)},
                                {"pooling_mode_cls_token", false},
                                {"pooling_mode_mean_tokens", false},
                                {"pooling_mode_max_tokens", false},
                                {"pooling_mode_mean_sqrt_len_tokens", false},
                                {"pooling_mode_weightedmean_tokens", false},
                                {"pooling_mode_lasttoken", true},
                                {"include_prompt", true}};
  KILN_RETURN_IF_ERROR(write_json(dir / "1_Pooling" / "config.json", pooling));
  KILN_RETURN_IF_ERROR(write_json(dir / "sentence_bert_config.json",
                                  {{"max_seq_length", config.value("max_position_embeddings", 512)},
                                   {"do_lower_case", false}}));
  KILN_RETURN_IF_ERROR(write_json(
      dir / "config_sentence_transformers.json",
      {{"prompts", {{"query", "Instruct: Given a web search query, retrieve relevant passages that answer the query\nQuery:"},
                    {"document", ""}}},
       {"default_prompt_name", nullptr},
       {"similarity_fn_name", "cosine"}}));
  // Qwen3-Embedding's tokenizer appends <|endoftext|> to every input: last-token pooling reads it.
  // Read as an unordered object: ordered_json inserts in linear time, quadratic over a 150k-entry
  // vocabulary, and no reader of tokenizer.json depends on its keys' order.
  KILN_ASSIGN_OR_RETURN(std::string text, read_file(dir / "tokenizer.json"));
  nlohmann::json tok = nlohmann::json::parse(text, nullptr, false);
  if (tok.is_discarded() || !tok.is_object()) return invalid_argument("make-model: tokenizer.json is not a JSON object");
  int64_t eos_id = -1;
  for (const auto& a : tok.value("added_tokens", nlohmann::json::array())) {
    if (a.value("content", "") == eos_token) eos_id = a.value("id", int64_t{-1});
  }
  if (eos_id < 0) return invalid_argument(str_cat("make-model: the tokenizer has no added token ", eos_token));
  const nlohmann::json eos = {{"SpecialToken", {{"id", eos_token}, {"type_id", 0}}}};
  tok["post_processor"] = {
      {"type", "TemplateProcessing"},
      {"single", nlohmann::json::array({{{"Sequence", {{"id", "A"}, {"type_id", 0}}}}, eos})},
      {"pair", nlohmann::json::array({{{"Sequence", {{"id", "A"}, {"type_id", 0}}}}, eos,
                                    {{"Sequence", {{"id", "B"}, {"type_id", 1}}}},
                                    {{"SpecialToken", {{"id", eos_token}, {"type_id", 1}}}}})},
      {"special_tokens", {{eos_token, {{"id", eos_token}, {"ids", {eos_id}}, {"tokens", {eos_token}}}}}}};
  return write_file_atomic(dir / "tokenizer.json", tok.dump() + "\n");
}

}  // namespace

std::string task_tensor_name(ModelKind kind, const std::string& name) {
  if (kind == ModelKind::kEmbed && name.rfind("model.", 0) == 0) return name.substr(6);
  return name;
}

Status write_task_files(const fs::path& dir, ModelKind kind, const std::string& eos_token) {
  std::error_code ec;
  for (const char* f : kTaskFiles) fs::remove(dir / f, ec);
  switch (kind) {
    case ModelKind::kGenerate: return Status::ok();
    case ModelKind::kEmbed: return write_embedding_files(dir, eos_token);
    case ModelKind::kRerank: {
      // vLLM's declaration of an original Qwen3-Reranker checkpoint (lm_head kept): the score is
      // P(yes) over the two tokens' logits.
      KILN_ASSIGN_OR_RETURN(ordered_json config, read_json(dir / "config.json"));
      config["architectures"] = ordered_json::array({"Qwen3ForSequenceClassification"});
      config["classifier_from_token"] = ordered_json::array({"no", "yes"});
      config["is_original_qwen3_reranker"] = true;
      return write_json(dir / "config.json", config);
    }
  }
  return Status::ok();
}

}  // namespace kiln::model
