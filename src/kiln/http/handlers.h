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
// The jobs API (handler_jobs.cpp, docs/jobs.md).
void handle_list_jobs(const AppContext& ctx, const ExchangePtr& ex);
void handle_get_job(const AppContext& ctx, const ExchangePtr& ex);
void handle_cancel_job(const AppContext& ctx, const ExchangePtr& ex);
void handle_job_stats(const AppContext& ctx, const ExchangePtr& ex);
void handle_export_jobs(const AppContext& ctx, const ExchangePtr& ex);
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
