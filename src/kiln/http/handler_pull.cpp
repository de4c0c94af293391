// POST /v1/admin/models/pull {"model": "ORG/NAME", "revision": "main"}: the pull's events as SSE
// (docs/pull.md). The stream ends with a `done` or an `error` event; a client that leaves stops
// getting events, and the pull goes on. GET /v1/admin/pulls lists the pulls running.
#include "kiln/core/str.h"
#include "kiln/http/admin_handlers.h"
#include "kiln/http/pull_service.h"
#include "kiln/http/sse.h"

namespace kiln::http {

namespace {

struct PullStream {
  bool ended = false;
  std::shared_ptr<void> subscription;  // on the strand only
};

void pull_keepalive(const AppContext& ctx, const ExchangePtr& ex, const std::shared_ptr<PullStream>& p) {
  ex->post_after(ctx.options->sse_keepalive, [&ctx, ex, p] {
    if (p->ended || ex->finished()) return;
    ex->send(sse_comment("pulling"));
    pull_keepalive(ctx, ex, p);
  });
}

}  // namespace

void handle_admin_pull(const AppContext& ctx, const ExchangePtr& ex) {
  if (ctx.pulls == nullptr) {
    return ex->respond_error(error_with_status(404, "This server does not pull models.", "unknown_url"));
  }
  Json body;
  if (auto e = parse_json_body(ex->request().body, &body)) return ex->respond_error(*e);
  std::string model, revision = "main";
  if (!body.contains("model")) return ex->respond_error(invalid_param("model", "'model' is required (ORG/NAME).", "missing_required_parameter"));
  if (auto e = read_string(body, "model", &model)) return ex->respond_error(*e);
  if (body.contains("revision") && !body["revision"].is_null()) {
    if (auto e = read_string(body, "revision", &revision)) return ex->respond_error(*e);
  }
  if (Status s = hub::check_repo_id(model); !s.is_ok()) return ex->respond_error(invalid_param("model", s.message()));
  if (Status s = hub::check_revision(revision); !s.is_ok()) return ex->respond_error(invalid_param("revision", s.message()));

  auto p = std::make_shared<PullStream>();
  std::weak_ptr<Exchange> weak_ex = ex;
  std::weak_ptr<PullStream> weak_p = p;
  // Events come from the pull's thread and hop to the strand in the order they were made.
  auto sub = ctx.pulls->subscribe(hub::RepoRef{model, revision}, [weak_ex, weak_p](const std::string& event, bool last) {
    auto live = weak_ex.lock();
    if (!live) return;
    live->post([live, weak_p, event, last] {
      auto stream = weak_p.lock();
      if (!stream || stream->ended || live->finished()) return;
      live->send(event);
      if (!last) return;
      stream->ended = true;
      stream->subscription.reset();
      live->end_stream();
    });
  });
  if (!sub.is_ok()) {
    ApiError e = api_error_from_status(sub.status(), "model");
    if (sub.status().code() == StatusCode::kFailedPrecondition) {
      e.status = 409;
      e.code = "pull_in_progress";
    } else if (sub.status().code() == StatusCode::kResourceExhausted) {
      e.status = 429;
      e.code = "too_many_pulls";
      e.retry_after_seconds = 10;
    }
    return ex->respond_error(e);
  }
  // The stream's head goes out before any event the listener posts (they queue behind it).
  ex->start_stream();
  p->subscription = std::move(sub).value();
  ex->on_client_gone([p] {
    p->ended = true;
    p->subscription.reset();
  });
  pull_keepalive(ctx, ex, p);
}

}  // namespace kiln::http

namespace kiln::http {

void handle_admin_pulls(const AppContext& ctx, const ExchangePtr& ex) {
  Json data = Json::array();
  if (ctx.pulls != nullptr) {
    for (const auto& r : ctx.pulls->running()) {
      data.push_back({{"model", r.ref.repo},
                      {"revision", r.ref.revision},
                      {"commit", r.commit.empty() ? Json(nullptr) : Json(r.commit)},
                      {"done_bytes", r.progress.done_bytes},
                      {"total_bytes", r.progress.total_bytes},
                      {"files_done", r.progress.files_done},
                      {"files_total", r.progress.files_total}});
    }
  }
  ex->respond({200, "application/json", {}, Json{{"object", "list"}, {"data", data}}.dump()});
}

}  // namespace kiln::http
