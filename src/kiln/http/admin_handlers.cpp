#include "kiln/http/admin_handlers.h"

#include <cmath>
#include <map>

#include "kiln/core/str.h"
#include "kiln/http/json_fields.h"
#include "kiln/http/sse.h"
#include "kiln/pool/registry.h"

namespace kiln::http {

Json model_status_json(const pool::ModelStatus& m) {
  Json j = {{"id", m.id},
            {"object", "model"},
            {"state", std::string(pool::model_state_name(m.state))},
            {"source", m.source},
            {"dir", m.dir},
            {"pinned", m.pinned},
            {"memory_bytes", m.memory_bytes},
            {"memory",
             {{"weights_bytes", m.weights_bytes},
              {"kv_cache_bytes", m.kv_cache_bytes},
              {"workspace_bytes", m.workspace_bytes},
              {"estimated_bytes", m.estimated_bytes}}},
            {"in_flight", m.in_flight},
            {"last_used", m.last_used > 0 ? Json(m.last_used) : Json(nullptr)},
            {"load_seconds", m.load_seconds},
            {"keep_alive", m.keep_alive ? Json(pool::format_duration(*m.keep_alive)) : Json(nullptr)},
            {"loads", m.loads},
            {"failures", m.failures},
            {"evictions", m.evictions}};
  if (m.state == pool::ModelState::kLoading) {
    j["progress"] = {{"phase", m.loading_phase}, {"fraction", std::round(m.loading_progress * 1000.0) / 1000.0}};
  }
  if (m.idle_unload_in_seconds >= 0) j["idle_unload_in_seconds"] = std::round(m.idle_unload_in_seconds * 10.0) / 10.0;
  if (!m.error.empty()) j["error"] = m.error;
  if (m.state == pool::ModelState::kFailed) j["retry_in_seconds"] = std::ceil(m.retry_in_seconds);
  return j;
}

namespace {

std::string dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

void respond_status_error(const ExchangePtr& ex, const Status& s) {
  ApiError e = api_error_from_status(s, "model");
  if (e.status == 404) e.code = "model_not_found";
  ex->respond_error(e);
}

std::optional<ApiError> check_admin_key(const AppContext& ctx, const ExchangePtr& ex) {
  if (!ctx.options->admin_keys.enabled()) return std::nullopt;
  return ctx.options->admin_keys.check(ex->request());
}

// One event of a progress stream: where the load is, then how it ended.
std::string progress_event(const pool::ModelStatus& m) {
  Json j = {{"id", m.id}, {"state", std::string(pool::model_state_name(m.state))}};
  if (m.state == pool::ModelState::kLoading) {
    j["phase"] = m.loading_phase;
    j["fraction"] = std::round(m.loading_progress * 1000.0) / 1000.0;
  }
  if (m.state == pool::ModelState::kReady) j["load_seconds"] = m.load_seconds;
  if (!m.error.empty()) j["error"] = m.error;
  if (m.state == pool::ModelState::kFailed) j["retry_in_seconds"] = std::ceil(m.retry_in_seconds);
  return sse_data(dump(j));
}

// GET /v1/admin/models/{id}/progress. The watch delivers statuses from the pool's threads; each
// hops to the exchange's strand, where older revisions are dropped, so events go out in order.
// The stream ends after the first status that is not `loading`.
struct ProgressStream {
  int64_t last_revision = -1;
  bool ended = false;
  std::shared_ptr<void> watch;  // on the strand only
};

void deliver_progress(const ExchangePtr& ex, ProgressStream& p, const pool::ModelStatus& m) {
  if (p.ended || ex->finished() || m.revision <= p.last_revision) return;
  p.last_revision = m.revision;
  ex->send(progress_event(m));
  if (m.state == pool::ModelState::kLoading) return;
  p.ended = true;
  p.watch.reset();
  ex->send(sse_done());
  ex->end_stream();
}

void progress_keepalive(const AppContext& ctx, const ExchangePtr& ex, const std::shared_ptr<ProgressStream>& p) {
  ex->post_after(ctx.options->sse_keepalive, [&ctx, ex, p] {
    if (p->ended || ex->finished()) {
      p->watch.reset();
      return;
    }
    ex->send(sse_comment("loading model"));
    progress_keepalive(ctx, ex, p);
  });
}

void stream_progress(const AppContext& ctx, const ExchangePtr& ex, const std::string& id) {
  ex->record().route = "/v1/admin/models/{id}/progress";
  auto p = std::make_shared<ProgressStream>();
  std::weak_ptr<Exchange> weak_ex = ex;
  std::weak_ptr<ProgressStream> weak_p = p;
  // Watch first, then read the status: no change falls between the two.
  p->watch = ctx.pool->watch(id, [weak_ex, weak_p](const pool::ModelStatus& m) {
    auto live = weak_ex.lock();
    if (!live) return;
    live->post([live, weak_p, m] {
      if (auto stream = weak_p.lock()) deliver_progress(live, *stream, m);
    });
  });
  auto now = ctx.pool->model_status(id);
  if (!p->watch || !now) return respond_status_error(ex, pool::model_not_found(id));
  ex->on_client_gone([p] {
    p->ended = true;
    p->watch.reset();
  });
  ex->start_stream();
  deliver_progress(ex, *p, *now);
  if (!p->ended) progress_keepalive(ctx, ex, p);
}

}  // namespace

std::string render_model_status(const pool::ModelStatus& m) { return dump(model_status_json(m)); }

std::string render_pool_health(const pool::PoolStatus& st) {
  std::map<std::string, int> states;
  for (const auto& m : st.models) states[std::string(pool::model_state_name(m.state))] += 1;
  Json counts = Json::object();
  for (const char* s : {"ready", "loading", "unloading", "failed", "unloaded"}) counts[s] = states[s];
  Json j = {{"budget_bytes", st.budget_bytes}, {"used_bytes", st.used_bytes}, {"loaded", st.loaded},
            {"servable", st.models.size()},   {"models", counts}};
  return dump(j);
}

namespace {

std::function<void(Result<pool::ModelStatus>)> answer_with_status(const ExchangePtr& ex) {
  return [ex](Result<pool::ModelStatus> st) {
    ex->post([ex, st = std::move(st)] {
      if (!st.is_ok()) return respond_status_error(ex, st.status());
      ex->respond({200, "application/json", {}, render_model_status(*st)});
    });
  };
}

}  // namespace

std::optional<ApiError> read_pinned(const Json& body, std::optional<bool>* pinned) {
  if (!body.contains("pinned") || body["pinned"].is_null()) return std::nullopt;
  bool pin = false;
  if (auto e = read_bool(body, "pinned", &pin)) return e;
  *pinned = pin;
  return std::nullopt;
}

void load_model(const AppContext& ctx, const ExchangePtr& ex, const std::string& id, std::optional<bool> pinned) {
  ctx.pool->load(id, pinned, answer_with_status(ex));
}

void unload_model(const AppContext& ctx, const ExchangePtr& ex, const std::string& id) {
  ctx.pool->unload(id, answer_with_status(ex));
}

void handle_admin_list_models(const AppContext& ctx, const ExchangePtr& ex) {
  if (auto e = check_admin_key(ctx, ex)) return ex->respond_error(*e);
  pool::PoolStatus st = ctx.pool->status();
  Json data = Json::array();
  for (const auto& m : st.models) data.push_back(model_status_json(m));
  Json j = {{"object", "list"},
            {"device", st.device},
            {"budget_bytes", st.budget_bytes},
            {"used_bytes", st.used_bytes},
            {"max_loaded_models", st.max_loaded_models},
            {"loaded", st.loaded},
            {"data", data}};
  ex->respond({200, "application/json", {}, dump(j)});
}

void handle_admin_rescan(const AppContext& ctx, const ExchangePtr& ex) {
  if (auto e = check_admin_key(ctx, ex)) return ex->respond_error(*e);
  ctx.pool->rescan([ex](Result<int64_t> n) {
    ex->post([ex, n = std::move(n)] {
      if (!n.is_ok()) return ex->respond_error(api_error_from_status(n.status()));
      ex->respond({200, "application/json", {}, dump(Json{{"models", *n}})});
    });
  });
}

void handle_admin_model(const AppContext& ctx, const ExchangePtr& ex) {
  if (auto e = check_admin_key(ctx, ex)) return ex->respond_error(*e);
  std::string id = ex->params()["id"];
  const std::string& method = ex->request().method;
  if (method == "GET") {
    auto st = ctx.pool->model_status(id);
    // ".../progress" is the progress stream of the model before it, unless a model has that very id.
    constexpr std::string_view kProgress = "/progress";
    if (!st && id.size() > kProgress.size() && ends_with(id, kProgress)) {
      return stream_progress(ctx, ex, id.substr(0, id.size() - kProgress.size()));
    }
    if (!st) return respond_status_error(ex, pool::model_not_found(id));
    return ex->respond({200, "application/json", {}, render_model_status(*st)});
  }
  const auto slash = id.rfind('/');
  const std::string action = slash == std::string::npos ? "" : id.substr(slash + 1);
  if (action != "load" && action != "unload") {
    return ex->respond_error(error_with_status(
        404, str_cat("Unknown admin action for POST ", ex->request().path,
                     ": use /v1/admin/models/{id}/load or /v1/admin/models/{id}/unload."),
        "unknown_url"));
  }
  id = id.substr(0, slash);
  if (action == "unload") return unload_model(ctx, ex, id);
  std::optional<bool> pinned;
  const std::string& body = ex->request().body;
  if (!trim(body).empty()) {
    Json j;
    if (auto e = parse_json_body(body, &j)) return ex->respond_error(*e);
    if (auto e = read_pinned(j, &pinned)) return ex->respond_error(*e);
  }
  load_model(ctx, ex, id, pinned);
}

}  // namespace kiln::http
