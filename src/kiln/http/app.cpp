#include "kiln/http/app.h"

#include "kiln/core/log.h"
#include "kiln/core/str.h"
#include "kiln/http/admin_handlers.h"
#include "kiln/http/handlers.h"
#include "kiln/http/job_tracker.h"
#include "kiln/http/messages_api.h"
#include "kiln/http/rate_limit.h"
#include "kiln/http/server.h"

namespace kiln::http {

namespace {

// With an admin key, only that key opens these: the pool's controls, and what shows every
// client's requests or the server's load (the jobs API and the seed's aliases).
bool is_admin_request(const HttpRequest& req) {
  const std::string& p = req.path;
  if (starts_with(p, "/v1/admin/") || p == "/v1/jobs" || starts_with(p, "/v1/jobs/")) return true;
  if (p == "/v1/queue/stats" || p == "/v1/health/metrics" || p == "/v1/models/load") return true;
  if (p == "/v1/webhooks/deliveries") return true;  // every batch's events, whoever made it
  if (!starts_with(p, "/v1/models/")) return false;
  return req.method == "DELETE" || ends_with(p, "/info") || ends_with(p, "/stats");
}

}  // namespace

App::App(pool::ModelPool& pool, metrics::Registry& registry, AppOptions options)
    : options_(std::move(options)), metrics_(registry, [&pool](std::string_view id) {
        for (const auto& m : pool.list()) {
          if (m.id == id) return true;
        }
        return false;
      }) {
  ctx_.pool = &pool;
  ctx_.registry = &registry;
  ctx_.options = &options_;
  ctx_.grammars = &grammars_;
  ctx_.system_fingerprint = "fp_kiln_" + options_.version;
  auto route = [this](const char* method, const char* pattern, void (*fn)(const AppContext&, const ExchangePtr&)) {
    router_.add(method, pattern, [this, fn](const ExchangePtr& ex) { fn(ctx_, ex); });
    metrics_.add_route(pattern);
  };
  route("POST", "/v1/chat/completions", handle_chat_completions);
  route("POST", "/v1/completions", handle_completions);
  route("POST", "/v1/embeddings", handle_embeddings);
  route("POST", "/v1/rerank", handle_rerank);
  route("POST", "/v1/score", handle_score);
  route("GET", "/v1/models", handle_list_models);
  route("GET", "/v1/models/{id}", handle_get_model);
  route("POST", "/v1/models/load", handle_models_load);
  route("DELETE", "/v1/models/{id}", handle_models_delete);
  route("GET", "/v1/queue/stats", handle_queue_stats);
  route("GET", "/v1/health/metrics", handle_health_metrics);
  route("GET", "/v1/admin/models", handle_admin_list_models);
  route("POST", "/v1/admin/models/rescan", handle_admin_rescan);
  route("POST", "/v1/admin/models/pull", handle_admin_pull);
  route("GET", "/v1/admin/pulls", handle_admin_pulls);
  route("GET", "/v1/admin/models/{id}", handle_admin_model);
  route("POST", "/v1/admin/models/{id}", handle_admin_model);
  route("GET", "/v1/jobs", handle_list_jobs);
  route("GET", "/v1/jobs/stats", handle_job_stats);
  route("GET", "/v1/jobs/export", handle_export_jobs);
  route("GET", "/v1/jobs/{id}", handle_get_job);
  route("DELETE", "/v1/jobs/{id}", handle_cancel_job);
  route("POST", "/v1/files", handle_upload_file);
  route("GET", "/v1/files", handle_list_files);
  route("GET", "/v1/files/{id}", handle_get_file);
  route("DELETE", "/v1/files/{id}", handle_delete_file);
  route("POST", "/v1/batches", handle_create_batch);
  route("GET", "/v1/batches", handle_list_batches);
  route("GET", "/v1/batches/{id}", handle_get_batch);
  route("POST", "/v1/batches/{id}", handle_cancel_batch);
  route("GET", "/v1/webhooks/deliveries", handle_list_deliveries);
  route("POST", "/v1/responses", handle_responses);
  route("GET", "/v1/responses/{id}", handle_get_response);
  route("DELETE", "/v1/responses/{id}", handle_delete_response);
  route("POST", "/v1/responses/{id}", handle_cancel_response);
  route("POST", "/v1/messages", handle_messages);
  route("POST", "/v1/messages/count_tokens", handle_count_tokens);
  route("GET", "/health", handle_health);
  route("GET", "/version", handle_version);
  route("GET", "/metrics", handle_metrics);
  metrics_.add_route("ui");  // every file of the web UI counts under one route
}

void App::set_server(const Server* server) {
  ctx_.server = server;
  if (server == nullptr) return;
  ctx_.registry->gauge_fn("kiln_http_connections", "Open HTTP connections.", {},
                          [server] { return static_cast<double>(server->open_connections()); });
  ctx_.registry->gauge_fn("kiln_http_requests_in_flight", "HTTP requests being answered.", {},
                          [server] { return static_cast<double>(server->active_exchanges()); });
}

void App::handle(const ExchangePtr& ex) {
  const HttpRequest& req = ex->request();
  Headers cors = options_.cors.response_headers(req);
  if (!cors.empty()) ex->add_response_headers(cors);
  if (options_.cors.is_preflight(req)) {
    ex->record().route = "preflight";
    HttpResponse r = options_.cors.preflight_response(req);
    // The origin headers already ride on the exchange; keep only what the preflight adds.
    std::erase_if(r.headers, [&](const auto& h) {
      for (const auto& c : cors) {
        if (c.first == h.first) return true;
      }
      return false;
    });
    return ex->respond(r);
  }

  if (starts_with(req.path, "/v1/messages")) ex->set_error_format(anthropic_error_format());
  RouteMatch m = router_.match(req.method, req.path);
  if (m.kind == RouteMatch::Kind::kNotFound && req.method == "GET" && !options_.ui.empty()) {
    // The UI's files hold no data, so they need no key: the page asks for one (docs/ui.md).
    if (auto r = serve_static(options_.ui, req.path, req.header("if-none-match"))) {
      ex->record().route = "ui";
      return ex->respond(std::move(*r));
    }
  }
  if (m.kind == RouteMatch::Kind::kNotFound) {
    ex->record().route = "unmatched";
    return ex->respond_error(error_with_status(
        404, str_cat("Unknown request URL: ", echo_value(req.method), " ", echo_value(req.path),
                     ". Please check the URL for typos."),
        "unknown_url"));
  }
  ex->record().route = m.pattern;
  if (m.kind == RouteMatch::Kind::kMethodNotAllowed) {
    std::string allow;
    for (const auto& a : m.allowed) allow += (allow.empty() ? "" : ", ") + a;
    ApiError e = error_with_status(405, str_cat("Method ", echo_value(req.method), " is not allowed for ",
                                                echo_value(req.path), "; use ", allow, "."),
                                   "method_not_allowed");
    HttpResponse r = error_response(e);
    r.headers.emplace_back("Allow", allow);
    ex->record().error = e.message;
    return ex->respond(r);
  }
  if (starts_with(req.path, "/v1/")) {
    const bool admin = options_.admin_keys.enabled() && is_admin_request(req);
    if (auto e = (admin ? options_.admin_keys : options_.api_keys).check(req)) return ex->respond_error(*e);
  }
  if (ctx_.jobs != nullptr && is_job_route(m.pattern)) ex->record().client = ctx_.jobs->client_of(req);
  if (ctx_.limits != nullptr && starts_with(req.path, "/v1/")) {
    // Generation requests take from the request bucket; the rest carry the headers only.
    if (!is_job_route(m.pattern)) {
      ctx_.limits->show(ex);
    } else if (auto e = ctx_.limits->admit(ex)) {
      return ex->respond_error(*e);
    }
  }
  // Uploads are multipart (checked by their handler); a cancel has no body.
  const bool json_body = m.pattern != "/v1/files" && m.pattern != "/v1/batches/{id}" && m.pattern != "/v1/responses/{id}";
  if (req.method == "POST" && json_body) {
    const std::string* ct = req.header("content-type");
    std::string type = ct == nullptr ? "" : ascii_lower(trim(split(*ct, ';')[0]));
    if (type != "application/json") {
      return ex->respond_error(error_with_status(
          415, str_cat("Unsupported content type '", echo_value(ct == nullptr ? "" : *ct),
                       "': send the request body as JSON with 'Content-Type: application/json'."),
          "unsupported_media_type"));
    }
  }
  ex->params() = m.params;
  (*m.handler)(ex);
}

bool App::takes_upload(const HttpRequest& head) const {
  if (ctx_.batches == nullptr || head.method != "POST" || head.path != "/v1/files") return false;
  return !options_.api_keys.check(head).has_value();
}

void App::handle_internal(const ExchangePtr& ex) {
  const HttpRequest& req = ex->request();
  RouteMatch m = router_.match(req.method, req.path);
  if (m.kind != RouteMatch::Kind::kFound) {
    ex->record().route = "unmatched";
    return ex->respond_error(error_with_status(404, str_cat("Unknown request URL: ", echo_value(req.path), "."),
                                               "unknown_url"));
  }
  ex->record().route = m.pattern;
  ex->params() = m.params;
  (*m.handler)(ex);
}

void App::on_done(const AccessRecord& r) {
  if (options_.access_log) log_raw(access_log_line(r));
  metrics_.record(r);
  if (ctx_.jobs != nullptr) ctx_.jobs->on_done(r);
  if (ctx_.limits != nullptr) ctx_.limits->on_done(r);
}

}  // namespace kiln::http
