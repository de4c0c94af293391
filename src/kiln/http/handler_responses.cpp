// POST /v1/responses: OpenAI's Responses API, translated into a chat request and served by the
// chat pipeline (responses_api.h, docs/responses-api.md).
#include <memory>

#include "kiln/http/chat_handler.h"
#include "kiln/http/handlers.h"
#include "kiln/http/responses_api.h"

namespace kiln::http {

void handle_responses(const AppContext& ctx, const ExchangePtr& ex) {
  Json body;
  if (auto e = parse_json_body(ex->request().body, &body)) return ex->respond_error(*e);
  Json chat;
  if (auto e = responses_to_chat(body, &chat)) return ex->respond_error(*e);
  auto req = std::make_shared<ChatRequest>();
  if (auto e = parse_chat_body(chat, req.get())) return ex->respond_error(responses_error(*e));
  rename_chat_fields(req.get());
  serve_chat(ctx, ex, std::move(req), responses_renderer(), "resp_");
}

}  // namespace kiln::http
