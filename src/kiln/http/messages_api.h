// Anthropic's Messages API (POST /v1/messages, /v1/messages/count_tokens) as a translation: the
// request becomes the chat request it means (system, messages, tools, tool_choice, thinking,
// sampling) and runs through the chat pipeline (chat_handler.h); the answer and its stream are
// rendered in Anthropic's shapes, errors in its envelope (docs/messages-api.md).
#pragma once

#include <optional>

#include "kiln/http/errors.h"
#include "kiln/http/json_fields.h"
#include "kiln/http/openai_response.h"

namespace kiln::http {

// Translates a Messages request body into the chat-completions body it means. `count_only`
// (count_tokens): max_tokens is not required and sampling fields are not read. The 400 in the
// Messages API's terms for the first problem found.
std::optional<ApiError> messages_to_chat(const Json& body, bool count_only, Json* chat);

// A chat request's error in the Messages API's names (max_tokens, stop_sequences, ...).
ApiError messages_error(ApiError e);

// Renders a message ("msg_..."), its stream (message_start ... message_stop) and its errors.
const ResponseRenderer& messages_renderer();
const ErrorFormat& anthropic_error_format();

// Anthropic's error type for an HTTP status ("invalid_request_error", "overloaded_error", ...).
const char* anthropic_error_type(int status);

}  // namespace kiln::http
