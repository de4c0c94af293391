// The conversation pipeline behind every API that takes one: chat completions, OpenAI's Responses
// API and Anthropic's Messages API. Those parse their own request into a ChatRequest (translating
// only) and hand it here; the model, its template, its output parsers, tool and grammar
// enforcement and the generation are the same for all, and only the renderer differs.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "kiln/http/app.h"
#include "kiln/http/openai_request.h"
#include "kiln/http/openai_response.h"

namespace kiln::http {

// Acquires the request's model, renders and tokenizes the conversation and generates the answer,
// rendered by `api` under an id of `id_prefix` and 24 random characters.
void serve_chat(const AppContext& ctx, const ExchangePtr& ex, std::shared_ptr<ChatRequest> req,
                const ResponseRenderer& api, const char* id_prefix);
// The same with a renderer made for this request (a stored response's), kept alive as long as it.
void serve_chat(const AppContext& ctx, const ExchangePtr& ex, std::shared_ptr<ChatRequest> req,
                std::shared_ptr<const ResponseRenderer> api, const char* id_prefix);

// The same up to the prompt's tokens, which `counted` receives (on the exchange's strand) instead
// of a generation; errors are answered on `ex`.
void count_chat_tokens(const AppContext& ctx, const ExchangePtr& ex, std::shared_ptr<ChatRequest> req,
                       std::function<void(int64_t tokens)> counted);

}  // namespace kiln::http
