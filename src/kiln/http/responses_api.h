// OpenAI's Responses API (POST /v1/responses) as a translation: the request's input items,
// instructions, tools, text.format and reasoning become the chat request they mean and run through
// the chat pipeline (chat_handler.h); the answer is rendered as a response object with output
// items, and a stream as the Responses event sequence (docs/responses-api.md).
#pragma once

#include <optional>

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

}  // namespace kiln::http
