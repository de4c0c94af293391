// The route handlers (one file each). They run on the exchange's strand, parse and validate at
// once, and never block: generation continues through the engine worker's notifications.
#pragma once

#include "kiln/http/app.h"

namespace kiln::http {

void handle_health(const AppContext& ctx, const ExchangePtr& ex);
void handle_version(const AppContext& ctx, const ExchangePtr& ex);
void handle_metrics(const AppContext& ctx, const ExchangePtr& ex);
void handle_list_models(const AppContext& ctx, const ExchangePtr& ex);
void handle_get_model(const AppContext& ctx, const ExchangePtr& ex);
void handle_chat_completions(const AppContext& ctx, const ExchangePtr& ex);
void handle_completions(const AppContext& ctx, const ExchangePtr& ex);
// OpenAI's Responses API and Anthropic's Messages API, translated to chat (docs/responses-api.md,
// docs/messages-api.md).
void handle_responses(const AppContext& ctx, const ExchangePtr& ex);
void handle_messages(const AppContext& ctx, const ExchangePtr& ex);
void handle_count_tokens(const AppContext& ctx, const ExchangePtr& ex);
// The jobs API (handler_jobs.cpp, docs/jobs.md).
void handle_list_jobs(const AppContext& ctx, const ExchangePtr& ex);
void handle_get_job(const AppContext& ctx, const ExchangePtr& ex);
void handle_cancel_job(const AppContext& ctx, const ExchangePtr& ex);
void handle_job_stats(const AppContext& ctx, const ExchangePtr& ex);
void handle_export_jobs(const AppContext& ctx, const ExchangePtr& ex);

}  // namespace kiln::http
