// The route handlers (one file each). They run on the exchange's strand, parse and validate at
// once, and never block: generation continues through the engine worker's notifications.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>

#include "kiln/http/app.h"
#include "kiln/http/json_fields.h"

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
// GET /v1/responses/{id} and GET /v1/responses/{id}/input_items.
void handle_get_response(const AppContext& ctx, const ExchangePtr& ex);
void handle_delete_response(const AppContext& ctx, const ExchangePtr& ex);
// POST /v1/responses/{id}/cancel.
void handle_cancel_response(const AppContext& ctx, const ExchangePtr& ex);
void handle_messages(const AppContext& ctx, const ExchangePtr& ex);
void handle_count_tokens(const AppContext& ctx, const ExchangePtr& ex);
// Prefill-only endpoints (handler_embeddings.cpp, handler_rerank.cpp; docs/embeddings.md).
void handle_embeddings(const AppContext& ctx, const ExchangePtr& ex);
void handle_rerank(const AppContext& ctx, const ExchangePtr& ex);
void handle_score(const AppContext& ctx, const ExchangePtr& ex);
// The jobs API (handler_jobs.cpp, docs/jobs.md).
void handle_list_jobs(const AppContext& ctx, const ExchangePtr& ex);
void handle_get_job(const AppContext& ctx, const ExchangePtr& ex);
void handle_cancel_job(const AppContext& ctx, const ExchangePtr& ex);
void handle_job_stats(const AppContext& ctx, const ExchangePtr& ex);
void handle_export_jobs(const AppContext& ctx, const ExchangePtr& ex);
// The seed's model, queue and health routes, aliases over the pool and the jobs API
// (handler_model_ops.cpp, docs/jobs.md).
void handle_models_load(const AppContext& ctx, const ExchangePtr& ex);
void handle_models_delete(const AppContext& ctx, const ExchangePtr& ex);
// GET /v1/models/{id}/info and /v1/models/{id}/stats; false when `id` names neither.
bool handle_model_subresource(const AppContext& ctx, const ExchangePtr& ex, const std::string& id);
void handle_queue_stats(const AppContext& ctx, const ExchangePtr& ex);
void handle_health_metrics(const AppContext& ctx, const ExchangePtr& ex);

// Shared by the jobs API and its aliases.
ApiError jobs_off();
ApiError store_error(const Status& s);
// window (a duration, default 24h) or since/until (Unix seconds) -> [since, until) in Unix ms.
std::optional<ApiError> read_stats_window(const std::map<std::string, std::string>& q, int64_t* since, int64_t* until);
// The job.stats object of `model` ("" = every model) over [since, until), computed on the query
// thread; `done` runs on the exchange's strand.
void query_job_stats(const AppContext& ctx, const ExchangePtr& ex, int64_t since, int64_t until, std::string model,
                     std::function<void(const ExchangePtr&, Result<Json>&)> done);
// The Files API (handler_files.cpp) and the Batch API (handler_batches.cpp), docs/batches.md.
void handle_upload_file(const AppContext& ctx, const ExchangePtr& ex);
void handle_list_files(const AppContext& ctx, const ExchangePtr& ex);
void handle_get_file(const AppContext& ctx, const ExchangePtr& ex);  // also GET /v1/files/{id}/content
void handle_delete_file(const AppContext& ctx, const ExchangePtr& ex);
void handle_create_batch(const AppContext& ctx, const ExchangePtr& ex);
void handle_list_batches(const AppContext& ctx, const ExchangePtr& ex);
void handle_get_batch(const AppContext& ctx, const ExchangePtr& ex);
void handle_cancel_batch(const AppContext& ctx, const ExchangePtr& ex);  // POST /v1/batches/{id}/cancel
void handle_list_deliveries(const AppContext& ctx, const ExchangePtr& ex);

}  // namespace kiln::http
