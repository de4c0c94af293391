// POST /v1/rerank (Jina/Cohere style) and POST /v1/score (vLLM's) as plain structs: requests
// parsed and checked (400s naming the field), responses rendered.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/http/errors.h"
#include "kiln/http/openai_request.h"

namespace kiln::http {

inline constexpr size_t kMaxRerankDocuments = 2048;

// One (query, document) pair to score, as the reranker's prompt will hold it.
struct ScorePair {
  std::string query;
  std::string document;
};

struct RerankRequest {
  GenerationParams params;      // model and keep_alive only
  std::string query;
  std::vector<std::string> documents;  // strings, or objects with a "text" field
  std::optional<int64_t> top_n;        // absent: every document
  bool return_documents = true;
  std::string instruction;             // kiln's extension; empty: the model's default task
};

struct ScoreRequest {
  GenerationParams params;
  std::vector<ScorePair> pairs;  // text_1 x text_2: one to many, or pairwise
  std::string instruction;
};

std::optional<ApiError> parse_rerank_request(std::string_view body, RerankRequest* out);
std::optional<ApiError> parse_score_request(std::string_view body, ScoreRequest* out);

// Results by relevance, highest first (ties: lower index first), cut to top_n.
std::string render_rerank(const RerankRequest& req, const std::vector<double>& scores, std::string_view model,
                          int64_t prompt_tokens);
std::string render_score(const std::vector<double>& scores, std::string_view model, int64_t prompt_tokens);

}  // namespace kiln::http
