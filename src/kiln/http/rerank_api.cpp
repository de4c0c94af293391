#include "kiln/http/rerank_api.h"

#include <algorithm>
#include <numeric>

#include "kiln/core/clock.h"
#include "kiln/core/str.h"
#include "kiln/http/json_fields.h"
#include "kiln/http/openai_response.h"

namespace kiln::http {
namespace {

std::optional<ApiError> read_model(const Json& body, GenerationParams* params) {
  auto model = body.find("model");
  if (model == body.end() || model->is_null()) {
    return invalid_param("model", "you must provide a model parameter.", "missing_required_parameter");
  }
  return read_string(body, "model", &params->model);
}

std::optional<ApiError> read_required_string(const Json& body, const char* name, std::string* out) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) {
    return invalid_param(name, str_cat("you must provide a ", name, " parameter."), "missing_required_parameter");
  }
  KILN_API_CHECK(read_string(body, name, out));
  if (out->empty()) return invalid_param(name, "must not be empty.");
  return std::nullopt;
}

// A string, or a list of strings, as /v1/score's text_1 and text_2 take them.
std::optional<ApiError> read_texts(const Json& body, const char* name, std::vector<std::string>* out) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) {
    return invalid_param(name, str_cat("you must provide a ", name, " parameter."), "missing_required_parameter");
  }
  if (it->is_string()) {
    out->push_back(it->get<std::string>());
  } else if (it->is_array()) {
    for (size_t i = 0; i < it->size(); ++i) {
      if (!(*it)[i].is_string()) return invalid_type(str_cat(name, "[", i, "]"), "a string", json_type_phrase((*it)[i]));
      out->push_back((*it)[i].get<std::string>());
    }
  } else {
    return invalid_type(name, "a string or an array of strings", json_type_phrase(*it));
  }
  if (out->empty()) return invalid_param(name, "must not be an empty array.");
  if (out->size() > kMaxRerankDocuments) {
    return invalid_param(name, str_cat("at most ", kMaxRerankDocuments, " texts per request, got ", out->size(), "."));
  }
  return std::nullopt;
}

Json usage_json(int64_t prompt_tokens) { return {{"prompt_tokens", prompt_tokens}, {"total_tokens", prompt_tokens}}; }

}  // namespace

std::optional<ApiError> parse_rerank_request(std::string_view text, RerankRequest* out) {
  Json body;
  KILN_API_CHECK(parse_json_body(text, &body));
  KILN_API_CHECK(read_model(body, &out->params));
  KILN_API_CHECK(read_required_string(body, "query", &out->query));
  auto docs = body.find("documents");
  if (docs == body.end() || docs->is_null()) {
    return invalid_param("documents", "you must provide a documents parameter.", "missing_required_parameter");
  }
  if (!docs->is_array()) return invalid_type("documents", "an array", json_type_phrase(*docs));
  if (docs->empty()) return invalid_param("documents", "must not be an empty array.");
  if (docs->size() > kMaxRerankDocuments) {
    return invalid_param("documents", str_cat("at most ", kMaxRerankDocuments, " documents per request, got ",
                                              docs->size(), "."));
  }
  for (size_t i = 0; i < docs->size(); ++i) {
    const Json& d = (*docs)[i];
    const std::string param = str_cat("documents[", i, "]");
    if (d.is_string()) {
      out->documents.push_back(d.get<std::string>());
    } else if (d.is_object() && d.contains("text") && d["text"].is_string()) {
      out->documents.push_back(d["text"].get<std::string>());  // Cohere's {"text": ...}
    } else {
      return invalid_type(param, "a string or an object with a string 'text'", json_type_phrase(d));
    }
  }
  KILN_API_CHECK(read_int(body, "top_n", 1, INT32_MAX, &out->top_n));
  KILN_API_CHECK(read_bool(body, "return_documents", &out->return_documents));
  KILN_API_CHECK(read_string(body, "instruction", &out->instruction));
  return std::nullopt;
}

std::optional<ApiError> parse_score_request(std::string_view text, ScoreRequest* out) {
  Json body;
  KILN_API_CHECK(parse_json_body(text, &body));
  KILN_API_CHECK(read_model(body, &out->params));
  std::vector<std::string> t1, t2;
  KILN_API_CHECK(read_texts(body, "text_1", &t1));
  KILN_API_CHECK(read_texts(body, "text_2", &t2));
  if (t1.size() != 1 && t1.size() != t2.size()) {
    return invalid_param("text_1", str_cat("must be one text or as many as text_2 (", t2.size(), "), got ", t1.size(), "."));
  }
  for (size_t i = 0; i < t2.size(); ++i) out->pairs.push_back({t1.size() == 1 ? t1[0] : t1[i], t2[i]});
  KILN_API_CHECK(read_string(body, "instruction", &out->instruction));
  return std::nullopt;
}

std::string render_rerank(const RerankRequest& req, const std::vector<double>& scores, std::string_view model,
                          int64_t prompt_tokens) {
  std::vector<size_t> order(scores.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return scores[a] > scores[b]; });
  if (req.top_n && static_cast<size_t>(*req.top_n) < order.size()) order.resize(static_cast<size_t>(*req.top_n));
  Json results = Json::array();
  for (size_t i : order) {
    Json r = {{"index", i}, {"relevance_score", scores[i]}};
    if (req.return_documents) r["document"] = {{"text", req.documents[i]}};
    results.push_back(std::move(r));
  }
  Json body = {{"id", make_completion_id("rerank-")},
               {"model", std::string(model)},
               {"usage", usage_json(prompt_tokens)},
               {"results", std::move(results)}};
  return body.dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::string render_score(const std::vector<double>& scores, std::string_view model, int64_t prompt_tokens) {
  Json data = Json::array();
  for (size_t i = 0; i < scores.size(); ++i) data.push_back({{"index", i}, {"object", "score"}, {"score", scores[i]}});
  Json body = {{"id", make_completion_id("score-")},
               {"object", "list"},
               {"created", unix_time_seconds()},
               {"model", std::string(model)},
               {"data", std::move(data)},
               {"usage", usage_json(prompt_tokens)}};
  return body.dump(-1, ' ', false, Json::error_handler_t::replace);
}

}  // namespace kiln::http
