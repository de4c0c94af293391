// GET /health, /version, /metrics, /v1/models and /v1/models/{id} (and its /info and /stats).
#include <nlohmann/json.hpp>

#include "kiln/http/admin_handlers.h"
#include "kiln/http/handlers.h"
#include "kiln/http/openai_response.h"
#include "kiln/http/server.h"

namespace kiln::http {

void handle_health(const AppContext& ctx, const ExchangePtr& ex) {
  bool draining = ctx.server != nullptr && ctx.server->draining();
  nlohmann::json j = {{"status", draining ? "draining" : "ok"},
                      {"pool", nlohmann::json::parse(render_pool_health(ctx.pool->status()))}};
  ex->respond({draining ? 503 : 200, "application/json", {}, j.dump()});
}

void handle_version(const AppContext& ctx, const ExchangePtr& ex) {
  nlohmann::json j = {{"name", "kiln"}, {"version", ctx.options->version}};
  ex->respond({200, "application/json", {}, j.dump()});
}

void handle_metrics(const AppContext& ctx, const ExchangePtr& ex) {
  ex->respond({200, "text/plain; version=0.0.4; charset=utf-8", {}, ctx.registry->render()});
}

void handle_list_models(const AppContext& ctx, const ExchangePtr& ex) {
  ex->respond({200, "application/json", {}, render_model_list(ctx.pool->list())});
}

void handle_get_model(const AppContext& ctx, const ExchangePtr& ex) {
  const std::string& id = ex->params()["id"];
  for (const auto& m : ctx.pool->list()) {
    if (m.id == id) return ex->respond({200, "application/json", {}, render_model(m)});
  }
  // ".../info" and ".../stats" of a model, unless a model has that very id.
  if (handle_model_subresource(ctx, ex, id)) return;
  ApiError e = api_error_from_status(pool::model_not_found(echo_value(id)), "model");
  e.code = "model_not_found";
  ex->respond_error(e);
}

}  // namespace kiln::http
