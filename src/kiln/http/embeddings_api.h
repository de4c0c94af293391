// POST /v1/embeddings as plain structs: the request parsed and checked (400s naming the field),
// and the response rendered in OpenAI's shape (floats, or base64 of little-endian float32).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/http/errors.h"
#include "kiln/http/openai_request.h"

namespace kiln::http {

// OpenAI's own limit on inputs per request.
inline constexpr size_t kMaxEmbeddingInputs = 2048;

struct EmbeddingsRequest {
  GenerationParams params;            // model and keep_alive only
  std::vector<PromptInput> inputs;    // [1, kMaxEmbeddingInputs]; none empty
  bool base64 = false;                // encoding_format "base64"
  std::optional<int64_t> dimensions;  // checked against the model's size later
};

std::optional<ApiError> parse_embeddings_request(std::string_view body, EmbeddingsRequest* out);

// The response body: one `embedding` object per vector, in input order.
std::string render_embeddings(const std::vector<std::vector<float>>& vectors, bool base64, std::string_view model,
                              int64_t prompt_tokens);

// Standard base64 (RFC 4648, with padding).
std::string base64_encode(std::span<const uint8_t> bytes);

}  // namespace kiln::http
