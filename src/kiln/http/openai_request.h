// OpenAI chat and completion requests parsed into plain structs (no JSON leaves http/). Parsing
// checks every field's type and range and answers with a 400 naming the parameter; checks that
// need the model (token ids in the vocabulary, the context length) happen once it is known.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "kiln/http/errors.h"
#include "kiln/http/json_fields.h"
#include "kiln/http/structured_output.h"
#include "kiln/http/tool_request.h"
#include "kiln/text/jinja/value.h"

namespace kiln::http {

inline constexpr int kMaxChoices = 128;  // OpenAI's limit on n
inline constexpr int kMaxStopStrings = 16;
inline constexpr int kMaxTopLogprobs = 20;
// OpenAI's max_tokens when a /v1/completions request gives none.
inline constexpr int64_t kCompletionsDefaultMaxTokens = 16;

// Fields shared by both endpoints.
struct GenerationParams {
  std::string model;
  std::optional<int64_t> max_tokens;  // max_completion_tokens, else max_tokens; absent: a default
  std::optional<double> temperature;  // absent: the model's generation_config, else 1
  std::optional<double> top_p;
  std::optional<int64_t> top_k;       // 0 or -1: off
  std::optional<double> min_p;
  std::optional<double> repetition_penalty;
  double presence_penalty = 0.0;
  double frequency_penalty = 0.0;
  std::optional<int64_t> seed;
  std::vector<std::string> stop;
  std::vector<int32_t> stop_token_ids;
  int n = 1;
  std::vector<std::pair<int64_t, double>> logit_bias;  // token ids checked against the vocabulary later
  bool stream = false;
  bool include_usage = false;
  std::string user;
  bool ignore_eos = false;
  // Logprobs: -1 none; 0 only the sampled token's; k also the k most likely.
  int num_logprobs = -1;
  // Ollama's keep_alive: how long the model stays loaded once idle after this request, in ms
  // (negative: until evicted; 0: unload when idle). Absent: the model's or the server's.
  std::optional<int64_t> keep_alive_ms;
  // response_format / structured_outputs / grammar / json_schema (structured_output.h).
  std::optional<StructuredOutput> structured;
};

struct ChatRequest {
  GenerationParams params;
  text::jinja::Value messages;  // list of message dicts as templates expect them
  // With tool calls in the history: the same messages with each call's arguments as the client's
  // JSON string, for templates that concatenate them as text (functionary); None otherwise.
  text::jinja::Value messages_text_arguments = text::jinja::Value(nullptr);
  text::jinja::Value tools;     // list of tool dicts, or None (also when tool_choice is none)
  ToolRequest tool;
  std::string reasoning_effort;  // empty: not given
  bool add_generation_prompt = true;
  // Continue the last (assistant) message: the prompt ends inside it, without its end-of-turn.
  bool continue_final_message = false;
  std::string last_role;                // the last message's role
  std::string last_content;             // its text content, for continue_final_message
  std::vector<std::pair<std::string, text::jinja::Value>> template_kwargs;
};

// One prompt of a completion request: text, or token ids.
struct PromptInput {
  bool is_tokens = false;
  std::string text;
  std::vector<int64_t> tokens;  // checked against the vocabulary later
};

// `value` as OpenAI's prompt/input forms: a string, an array of strings, an array of token ids, or
// an array of arrays of token ids (completions' `prompt`, embeddings' `input`). Errors name `param`.
std::optional<ApiError> parse_prompt_inputs(const Json& value, const std::string& param, std::vector<PromptInput>* out);

struct CompletionRequest {
  GenerationParams params;
  std::vector<PromptInput> prompts;
  bool echo = false;
};

// Each returns the 400 for the first problem it finds, or nullopt when `body` is a valid request.
std::optional<ApiError> parse_chat_request(std::string_view body, ChatRequest* out);
// The same from a parsed body: the Responses and Messages APIs translate theirs into this one.
std::optional<ApiError> parse_chat_body(const nlohmann::ordered_json& body, ChatRequest* out);
std::optional<ApiError> parse_completion_request(std::string_view body, CompletionRequest* out);

// How many tokens one prompt's choices may generate. The request's max_tokens must fit the
// context with the prompt; without one, `default_max_tokens` (0: no default) applies, capped by
// what the context leaves. nullopt: the request does not fit (OpenAI's context-length error).
std::optional<int64_t> completion_budget(int64_t prompt_tokens, int64_t max_len, std::optional<int64_t> max_tokens,
                                         int64_t default_max_tokens);

// OpenAI's wording for a body that is not JSON.
ApiError malformed_json_error(const std::string& detail);

}  // namespace kiln::http
