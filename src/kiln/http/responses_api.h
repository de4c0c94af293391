// OpenAI's Responses API (POST /v1/responses) as a translation: the request's input items,
// instructions, tools, text.format and reasoning become the chat request they mean and run through
// the chat pipeline (chat_handler.h); the answer is rendered as a response object with output
// items, and a stream as the Responses event sequence (docs/responses-api.md).
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "kiln/http/errors.h"
#include "kiln/http/json_fields.h"
#include "kiln/http/openai_request.h"
#include "kiln/http/openai_response.h"

namespace kiln::http {

// Translates a Responses request body into the chat-completions body it means; the 400 in the
// Responses API's terms for the first problem found (previous_response_id and other server-side
// state kiln does not keep included).
std::optional<ApiError> responses_to_chat(const Json& body, Json* chat);

// A chat request's error in the Responses API's names (max_output_tokens, input, text.format, ...).
ApiError responses_error(ApiError e);
// The names a parsed request keeps for later errors (its output format's, when it fails to compile).
void rename_chat_fields(ChatRequest* req);

// Renders a response ("resp_..."), its stream (response.created ... response.completed).
const ResponseRenderer& responses_renderer();

// How one request's response is rendered when it is stored or runs in the background.
struct ResponseOptions {
  std::string id;     // the response's id, chosen before it runs ("": the generation's)
  Json echo;          // request fields the response object repeats (response_echo)
  bool store = false; // what the response says under "store" (and whether on_final runs)
  // Called with the final response object (completed or incomplete) before it is sent, when the
  // response is stored (store, and its model does not set store_bodies = false).
  std::function<void(const Json& response)> on_final;
};
std::shared_ptr<const ResponseRenderer> make_responses_renderer(ResponseOptions options);

// The request fields a response object repeats: instructions, tools, tool_choice, temperature,
// top_p, text, reasoning, metadata, max_output_tokens, previous_response_id, ...
Json response_echo(const Json& body);
// A response object (OpenAI's Response schema) with the fields of `echo` over the defaults.
Json response_object(const std::string& id, int64_t created, const std::string& model, const std::string& status,
                     Json output, Json usage, const Json& echo);

}  // namespace kiln::http
