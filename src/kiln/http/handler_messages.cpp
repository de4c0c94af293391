// POST /v1/messages and /v1/messages/count_tokens: Anthropic's Messages API, translated into a chat
// request and served by the chat pipeline (messages_api.h, docs/messages-api.md). The
// anthropic-version header is accepted whatever it says; x-api-key takes the same keys as /v1.
#include <memory>

#include "kiln/http/chat_handler.h"
#include "kiln/http/handlers.h"
#include "kiln/http/messages_api.h"

namespace kiln::http {

namespace {

// The chat request a Messages body means; false when `ex` was answered with its error.
bool read_request(const ExchangePtr& ex, bool count_only, ChatRequest* req) {
  Json body;
  if (auto e = parse_json_body(ex->request().body, &body)) {
    ex->respond_error(*e);
    return false;
  }
  Json chat;
  if (auto e = messages_to_chat(body, count_only, &chat)) {
    ex->respond_error(*e);
    return false;
  }
  if (auto e = parse_chat_body(chat, req)) {
    ex->respond_error(messages_error(*e));
    return false;
  }
  return true;
}

}  // namespace

void handle_messages(const AppContext& ctx, const ExchangePtr& ex) {
  auto req = std::make_shared<ChatRequest>();
  if (!read_request(ex, /*count_only=*/false, req.get())) return;
  serve_chat(ctx, ex, std::move(req), messages_renderer(), "msg_");
}

void handle_count_tokens(const AppContext& ctx, const ExchangePtr& ex) {
  auto req = std::make_shared<ChatRequest>();
  if (!read_request(ex, /*count_only=*/true, req.get())) return;
  count_chat_tokens(ctx, ex, std::move(req), [ex](int64_t tokens) {
    ex->respond({200, "application/json", {}, Json{{"input_tokens", tokens}}.dump()});
  });
}

}  // namespace kiln::http
