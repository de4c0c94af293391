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

}  // namespace kiln::http
