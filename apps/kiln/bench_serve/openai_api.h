// The slice of the OpenAI API a load generator speaks: request bodies for /v1/chat/completions
// and /v1/completions, and the fields read back from streamed chunks and whole responses.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "kiln/core/status.h"

namespace kiln::bench_serve {

enum class ApiEndpoint { kChat, kCompletions };

std::string_view endpoint_name(ApiEndpoint endpoint);
// The path below the API base: "/chat/completions" or "/completions".
std::string_view endpoint_path(ApiEndpoint endpoint);

// One request of the workload.
struct RequestSpec {
  std::string prompt;        // sent as the prompt, or as the single user message for chat
  nlohmann::json messages;   // chat messages taken as is from a dataset; null when `prompt` is used
  int max_tokens = 0;
  int prompt_tokens_hint = 0;  // the token length the prompt was built for; 0 when unknown
};

struct BodySettings {
  ApiEndpoint endpoint = ApiEndpoint::kChat;
  std::string model;
  bool stream = true;
  bool ignore_eos = true;
  std::optional<double> temperature;
  nlohmann::json extra_body;  // an object merged over the generated body, or null
};

std::string build_request_body(const RequestSpec& spec, const BodySettings& settings);

// What one streamed chunk or one whole response carries.
struct ResponseInfo {
  std::string text;  // generated text (content, or reasoning for models that stream it apart)
  std::optional<int64_t> prompt_tokens;
  std::optional<int64_t> completion_tokens;
  std::string finish_reason;
  std::string error;  // non-empty when the server reported an error instead of output
};

// Parses the JSON of one `data:` event of a stream (not the final "[DONE]").
Result<ResponseInfo> parse_stream_chunk(std::string_view data, ApiEndpoint endpoint);
// Parses a whole non-streamed response body.
Result<ResponseInfo> parse_response_body(std::string_view body, ApiEndpoint endpoint);
// A short human-readable message from an error response body (the envelope's message when there
// is one, else the start of the body).
std::string describe_error_body(std::string_view body);

}  // namespace kiln::bench_serve
