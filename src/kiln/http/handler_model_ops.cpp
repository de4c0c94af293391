// The seed's model-management, queue and health routes, as aliases over kiln's own: the pool's
// load and unload (admin_handlers.cpp), its status, the engine workers' counters and the job
// store's stats (handler_jobs.cpp). docs/jobs.md shows every answer.
#include <filesystem>

#include "kiln/core/file.h"
#include "kiln/core/str.h"
#include "kiln/http/admin_handlers.h"
#include "kiln/http/handlers.h"
#include "kiln/http/job_tracker.h"
#include "kiln/http/server.h"
#include "kiln/model/config.h"
#include "kiln/pool/registry.h"

namespace kiln::http {

namespace {

constexpr auto kHealthWindow = std::chrono::minutes(5);

std::string dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

ApiError unknown_model(const std::string& id) {
  ApiError e = api_error_from_status(pool::model_not_found(echo_value(id)), "model");
  e.code = "model_not_found";
  return e;
}

// Refuses query parameters other than `allowed`; the parsed query otherwise.
std::optional<std::map<std::string, std::string>> read_query(const ExchangePtr& ex, std::initializer_list<const char*> allowed) {
  auto q = query_params(ex->request().target);
  if (!q) {
    ex->respond_error(error_with_status(400, "Malformed query string.", "invalid_query"));
    return std::nullopt;
  }
  for (const auto& [k, v] : *q) {
    bool ok = false;
    for (const char* a : allowed) ok |= k == a;
    if (!ok) {
      ex->respond_error(invalid_param(k, str_cat("unknown query parameter '", echo_value(k), "'."), "unknown_parameter"));
      return std::nullopt;
    }
  }
  return q;
}

// A loaded model's config, else the config.json of its directory, else nothing.
std::optional<model::ModelConfig> model_config(const AppContext& ctx, const pool::ModelStatus& st) {
  if (auto rt = ctx.pool->runtime(st.id)) return rt->config;
  if (st.dir.empty()) return std::nullopt;
  auto text = read_file(std::filesystem::path(st.dir) / "config.json");
  if (!text.is_ok()) return std::nullopt;
  auto c = model::parse_model_config(*text);
  if (!c.is_ok()) return std::nullopt;
  return *c;
}

Json memory_json(const pool::ModelStatus& m) {
  // Weights, the whole KV pool and the workspace are allocated when the model loads, so what a
  // model holds on the device does not grow while it serves: its peak is what it holds.
  return {{"used_bytes", m.memory_bytes},
          {"peak_bytes", m.memory_bytes},
          {"weights_bytes", m.weights_bytes},
          {"kv_cache_bytes", m.kv_cache_bytes},
          {"workspace_bytes", m.workspace_bytes}};
}

Json queue_json(const pool::ModelStatus& m, const std::optional<pool::ModelRuntime>& rt) {
  return {{"running", rt ? rt->counters.running : 0},
          {"queue_size", rt ? rt->counters.queued_requests : 0},
          {"max_queue_size", rt ? rt->max_queue : 0},
          {"active_requests", m.in_flight},
          {"max_concurrency", rt ? rt->max_seqs : 0}};
}

void handle_model_info(const AppContext& ctx, const ExchangePtr& ex, const pool::ModelStatus& st) {
  ex->record().route = "/v1/models/{id}/info";
  auto config = model_config(ctx, st);
  auto rt = ctx.pool->runtime(st.id);
  Json j = {{"id", st.id},
            {"object", "model.info"},
            {"state", std::string(pool::model_state_name(st.state))},
            {"architecture", config ? Json(std::string(model::architecture_name(config->architecture))) : Json(nullptr)},
            {"parameters", config ? Json(config->num_parameters()) : Json(nullptr)},
            {"context_length", rt ? Json(rt->max_model_len) : Json(nullptr)},
            {"max_position_embeddings", config ? Json(config->max_position_embeddings) : Json(nullptr)},
            {"dtype", config ? Json(std::string(dtype_name(config->torch_dtype))) : Json(nullptr)},
            {"memory", memory_json(st)},
            {"details", model_status_json(st)}};
  ex->respond({200, "application/json", {}, dump(j)});
}

void handle_model_stats(const AppContext& ctx, const ExchangePtr& ex, const pool::ModelStatus& st) {
  ex->record().route = "/v1/models/{id}/stats";
  auto q = read_query(ex, {"window", "since", "until"});
  if (!q) return;
  int64_t since = 0, until = 0;
  if (auto e = read_stats_window(*q, &since, &until)) return ex->respond_error(*e);
  auto rt = ctx.pool->runtime(st.id);
  Json j = {{"id", st.id},
            {"object", "model.stats"},
            {"state", std::string(pool::model_state_name(st.state))},
            {"memory", memory_json(st)},
            {"loads", st.loads},
            {"load_failures", st.failures},
            {"evictions", st.evictions},
            {"queue", queue_json(st, rt)}};
  if (ctx.jobs == nullptr) {
    // Without a job store there is no per-request history to count from.
    for (const char* k : {"requests", "errors", "usage", "latency_ms", "tokens_per_second"}) j[k] = nullptr;
    return ex->respond({200, "application/json", {}, dump(j)});
  }
  query_job_stats(ctx, ex, since, until, st.id, [j = std::move(j)](const ExchangePtr& x, Result<Json>& s) mutable {
    if (!s.is_ok()) return x->respond_error(store_error(s.status()));
    const Json& by = (*s)["by_status"];
    // Per stream: output tokens over the time they took from first token to finish.
    const double seconds = static_cast<double>((*s)["generation_ms"].get<int64_t>()) / 1000.0;
    j["window"] = {{"since_ms", (*s)["since_ms"]}, {"until_ms", (*s)["until_ms"]}};
    j["requests"] = {{"total", (*s)["total"]}, {"by_status", by}};
    j["errors"] = by["failed"];
    j["usage"] = (*s)["usage"];
    j["latency_ms"] = (*s)["latency_ms"];
    j["tokens_per_second"] = seconds > 0 ? (*s)["usage"]["completion_tokens"].get<int64_t>() / seconds : 0.0;
    x->respond({200, "application/json", {}, dump(j)});
  });
}

}  // namespace

void handle_models_load(const AppContext& ctx, const ExchangePtr& ex) {
  Json body;
  if (auto e = parse_json_body(ex->request().body, &body)) return ex->respond_error(*e);
  std::string id;
  if (auto e = read_string(body, "model", &id)) return ex->respond_error(*e);
  if (id.empty()) return ex->respond_error(invalid_param("model", "name the model to load: {\"model\": \"...\"}."));
  std::optional<bool> pinned;
  if (auto e = read_pinned(body, &pinned)) return ex->respond_error(*e);
  load_model(ctx, ex, id, pinned);
}

void handle_models_delete(const AppContext& ctx, const ExchangePtr& ex) {
  std::string id = ex->params()["id"];
  constexpr std::string_view kUnload = "/unload";
  if (id.size() <= kUnload.size() || !ends_with(id, kUnload)) {
    return ex->respond_error(error_with_status(
        404, str_cat("Unknown request URL: DELETE ", echo_value(ex->request().path), ". Use DELETE /v1/models/{id}/unload."),
        "unknown_url"));
  }
  ex->record().route = "/v1/models/{id}/unload";
  id.resize(id.size() - kUnload.size());
  auto q = read_query(ex, {"force"});
  if (!q) return;
  bool force = false;
  if (auto it = q->find("force"); it != q->end()) {
    if (it->second != "true" && it->second != "false") return ex->respond_error(invalid_param("force", "expected true or false."));
    force = it->second == "true";
  }
  if (!ctx.pool->model_status(id)) return ex->respond_error(unknown_model(id));
  if (force) {
    // The unload waits for the model's requests in flight; cancelling them ends that wait at their
    // next engine step. Only requests that are jobs are known here.
    if (ctx.jobs == nullptr) {
      return ex->respond_error(invalid_param("force", "force=true needs job tracking, which is off (--database off)."));
    }
    ctx.jobs->cancel_model(id);
  }
  unload_model(ctx, ex, id);
}

bool handle_model_subresource(const AppContext& ctx, const ExchangePtr& ex, const std::string& id) {
  for (std::string_view suffix : {std::string_view("/info"), std::string_view("/stats")}) {
    if (id.size() <= suffix.size() || !ends_with(id, suffix)) continue;
    auto st = ctx.pool->model_status(id.substr(0, id.size() - suffix.size()));
    if (!st) {
      ex->respond_error(unknown_model(id.substr(0, id.size() - suffix.size())));
      return true;
    }
    if (suffix == "/info") {
      handle_model_info(ctx, ex, *st);
    } else {
      handle_model_stats(ctx, ex, *st);
    }
    return true;
  }
  return false;
}

void handle_queue_stats(const AppContext& ctx, const ExchangePtr& ex) {
  pool::PoolStatus ps = ctx.pool->status();
  Json total = {{"running", 0}, {"queue_size", 0}, {"max_queue_size", 0}, {"active_requests", 0}, {"max_concurrency", 0}};
  Json models = Json::object();
  for (const auto& m : ps.models) {
    Json q = queue_json(m, ctx.pool->runtime(m.id));
    for (auto& [k, v] : total.items()) v = v.get<int64_t>() + q[k].get<int64_t>();
    models[m.id] = std::move(q);
  }
  total["models"] = std::move(models);
  ex->respond({200, "application/json", {}, dump(Json{{"status", "ok"}, {"queue_stats", std::move(total)}})});
}

void handle_health_metrics(const AppContext& ctx, const ExchangePtr& ex) {
  auto q = read_query(ex, {"window"});
  if (!q) return;
  int64_t since = 0, until = 0;
  std::map<std::string, std::string> window = *q;
  if (window.count("window") == 0) window["window"] = pool::format_duration(kHealthWindow);
  if (auto e = read_stats_window(window, &since, &until)) return ex->respond_error(*e);
  pool::PoolStatus ps = ctx.pool->status();
  Json models = Json::array(), active = Json::array();
  int64_t depth = 0, running = 0;
  for (const auto& m : ps.models) {
    if (m.state == pool::ModelState::kUnloaded) continue;
    auto rt = ctx.pool->runtime(m.id);
    Json o = {{"id", m.id}, {"state", std::string(pool::model_state_name(m.state))}, {"memory", memory_json(m)}};
    if (rt) {
      depth += rt->counters.queued_requests;
      running += rt->counters.running;
      o["kv_cache"] = {{"blocks_total", rt->counters.kv_blocks_total}, {"blocks_used", rt->counters.kv_blocks_used}};
      o["queue"] = queue_json(m, rt);
    }
    if (m.state == pool::ModelState::kReady) active.push_back(m.id);
    models.push_back(std::move(o));
  }
  Json j = {{"status", ctx.server != nullptr && ctx.server->draining() ? "draining" : "ok"},
            {"device", ps.device},
            {"memory", {{"budget_bytes", ps.budget_bytes}, {"used_bytes", ps.used_bytes}}},
            {"active_models", std::move(active)},
            {"models", std::move(models)},
            {"queue", {{"depth", depth}, {"running", running}}}};
  if (ctx.jobs == nullptr) {
    j["latency_ms"] = nullptr;
    j["throughput"] = nullptr;
    return ex->respond({200, "application/json", {}, dump(j)});
  }
  query_job_stats(ctx, ex, since, until, "", [j = std::move(j)](const ExchangePtr& x, Result<Json>& s) mutable {
    if (!s.is_ok()) return x->respond_error(store_error(s.status()));
    const int64_t since_ms = (*s)["since_ms"].get<int64_t>(), until_ms = (*s)["until_ms"].get<int64_t>();
    const double seconds = static_cast<double>(until_ms - since_ms) / 1000.0;
    j["latency_ms"] = (*s)["latency_ms"];
    j["throughput"] = {{"since_ms", since_ms},
                       {"until_ms", until_ms},
                       {"requests", (*s)["total"]},
                       {"requests_per_second", (*s)["total"].get<int64_t>() / seconds},
                       {"output_tokens_per_second", (*s)["usage"]["completion_tokens"].get<int64_t>() / seconds}};
    j["job_store"] = (*s)["store"];
    x->respond({200, "application/json", {}, dump(j)});
  });
}

}  // namespace kiln::http
