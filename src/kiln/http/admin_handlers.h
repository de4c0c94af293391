// The admin API of the model pool (guarded by --admin-key when it is set) and the pool's part of
// /health:
//   GET  /v1/admin/models               every model: state, memory, last use, requests in flight
//   GET  /v1/admin/models/{id}          one model
//   GET  /v1/admin/models/{id}/progress SSE: the model's state, loading phase and fraction at each
//                                       change, until it is no longer loading
//   POST /v1/admin/models/{id}/load     load it now; {"pinned": true|false} pins or unpins it
//   POST /v1/admin/models/{id}/unload   unload it once its requests in flight have finished
//   POST /v1/admin/models/rescan        re-read kiln.toml and the model directories
//   POST /v1/admin/models/pull          SSE: pull a model from the Hugging Face Hub (docs/pull.md)
//   GET  /v1/admin/pulls                the pulls running
#pragma once

#include <optional>
#include <string>

#include "kiln/http/app.h"
#include "kiln/http/json_fields.h"
#include "kiln/pool/pool_status.h"

namespace kiln::http {

void handle_admin_list_models(const AppContext& ctx, const ExchangePtr& ex);
// GET or POST under /v1/admin/models/: the model id may contain '/', so the action is the last
// path segment of a POST, and of a GET that names no model as a whole.
void handle_admin_model(const AppContext& ctx, const ExchangePtr& ex);
void handle_admin_rescan(const AppContext& ctx, const ExchangePtr& ex);
void handle_admin_pull(const AppContext& ctx, const ExchangePtr& ex);
void handle_admin_pulls(const AppContext& ctx, const ExchangePtr& ex);

// Load (pinning or unpinning it when `pinned` is set) or unload `id`, answered with the model's
// status once done: the admin routes and the seed's /v1/models/load and /unload share these.
// {"pinned": bool} of a load request's body, if there.
std::optional<ApiError> read_pinned(const Json& body, std::optional<bool>* pinned);
void load_model(const AppContext& ctx, const ExchangePtr& ex, const std::string& id, std::optional<bool> pinned);
void unload_model(const AppContext& ctx, const ExchangePtr& ex, const std::string& id);

// {"budget_bytes", "used_bytes", "loaded", "models": {state: count}} for /health.
std::string render_pool_health(const pool::PoolStatus& status);
// One model of GET /v1/admin/models.
std::string render_model_status(const pool::ModelStatus& m);
Json model_status_json(const pool::ModelStatus& m);

}  // namespace kiln::http
