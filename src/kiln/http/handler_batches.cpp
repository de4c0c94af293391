// The Batch API: POST /v1/batches, GET /v1/batches, GET /v1/batches/{id},
// POST /v1/batches/{id}/cancel, and GET /v1/webhooks/deliveries (docs/batches.md). Requests
// only read and write records; the batch service's runner does the work.
#include "kiln/core/str.h"
#include "kiln/http/batch_handlers.h"
#include "kiln/http/batch_json.h"
#include "kiln/http/handlers.h"

namespace kiln::http {

namespace {

constexpr int64_t kMinFileExpirySeconds = 3600;
constexpr int64_t kMaxFileExpirySeconds = 30LL * 86400;
constexpr size_t kMaxMetadataPairs = 16;
constexpr size_t kMaxMetadataKey = 64;
constexpr size_t kMaxMetadataValue = 512;

ApiError batch_not_found(const std::string& id) {
  return error_with_status(404, str_cat("No batch found with id '", echo_value(id), "'."), "batch_not_found");
}

bool running(const std::string& status) {
  return status == "validating" || status == "in_progress" || status == "finalizing" || status == "cancelling";
}

// The batch with live request counts while it runs.
HttpResponse batch_response(BatchService& svc, jobs::BatchStore& db, const jobs::BatchRecord& b) {
  if (!running(b.status)) return json_response(batch_json(b, nullptr));
  auto counts = db.line_counts(b.id, svc.now_ms());
  if (!counts.is_ok()) return error_response(batch_store_error(counts.status()));
  return json_response(batch_json(b, &*counts));
}

}  // namespace

std::optional<ApiError> check_metadata(const Json& md) {
  if (md.is_null()) return std::nullopt;
  if (!md.is_object() || md.size() > kMaxMetadataPairs) {
    return invalid_param("metadata", "metadata must be an object of at most 16 string pairs.");
  }
  for (const auto& [k, v] : md.items()) {
    if (k.size() > kMaxMetadataKey || !v.is_string() || v.get<std::string>().size() > kMaxMetadataValue) {
      return invalid_param("metadata", "metadata keys are at most 64 characters and values strings of at most 512 characters.");
    }
  }
  return std::nullopt;
}

std::optional<ApiError> read_expiration(const std::string& param, const Json& anchor, const Json& seconds,
                                        int64_t* out_seconds) {
  if (anchor.is_null()) {
    return invalid_param(param + ".anchor", "'anchor' is required: 'created_at'.", "missing_required_parameter");
  }
  if (seconds.is_null()) {
    return invalid_param(param + ".seconds", "'seconds' is required: 3600 to 2592000.", "missing_required_parameter");
  }
  if (!anchor.is_string() || anchor.get<std::string>() != "created_at") {
    return invalid_param(param + ".anchor", "The only anchor is 'created_at'.");
  }
  int64_t n = 0;
  if (!json_to_int(seconds, &n) || n < kMinFileExpirySeconds || n > kMaxFileExpirySeconds) {
    return invalid_param(param + ".seconds", "'seconds' must be an integer from 3600 (1 hour) to 2592000 (30 days).");
  }
  *out_seconds = n;
  return std::nullopt;
}

void handle_create_batch(const AppContext& ctx, const ExchangePtr& ex) {
  if (ctx.batches == nullptr) return ex->respond_error(batches_off());
  Json body;
  if (auto e = parse_json_body(ex->request().body, &body)) return ex->respond_error(*e);
  jobs::BatchRecord b;
  for (const auto& [name, out] : {std::pair<const char*, std::string*>{"input_file_id", &b.input_file_id},
                                  {"endpoint", &b.endpoint}, {"completion_window", &b.completion_window}}) {
    if (auto e = read_string(body, name, out)) return ex->respond_error(*e);
    if (out->empty()) return ex->respond_error(invalid_param(name, str_cat("'", name, "' is required."), "missing_required_parameter"));
  }
  if (!batch_endpoint_supported(b.endpoint)) {
    return ex->respond_error(invalid_param("endpoint", str_cat("'", echo_value(b.endpoint),
                                                               "' is not supported: use /v1/chat/completions, "
                                                               "/v1/completions, /v1/responses or /v1/embeddings.")));
  }
  if (b.completion_window != "24h") {
    return ex->respond_error(invalid_param("completion_window", "The only completion_window is '24h'."));
  }
  auto md = body.find("metadata");
  if (md != body.end() && !md->is_null()) {
    if (auto e = check_metadata(*md)) return ex->respond_error(*e);
    b.metadata = md->dump();
  }
  auto oe = body.find("output_expires_after");
  if (oe != body.end() && !oe->is_null()) {
    if (!oe->is_object()) {
      return ex->respond_error(invalid_param("output_expires_after", "output_expires_after must be an object "
                                                                     "{anchor: 'created_at', seconds}."));
    }
    for (const auto& [k, v] : oe->items()) {
      if (k != "anchor" && k != "seconds") {
        return ex->respond_error(invalid_param(str_cat("output_expires_after.", k),
                                               str_cat("Unknown parameter: '", echo_value(k), "'."), "unknown_parameter"));
      }
    }
    if (auto e = read_expiration("output_expires_after", oe->value("anchor", Json()), oe->value("seconds", Json()),
                                 &b.output_expires_s)) {
      return ex->respond_error(*e);
    }
  }
  for (const auto& [k, v] : body.items()) {
    if (k != "input_file_id" && k != "endpoint" && k != "completion_window" && k != "metadata" &&
        k != "output_expires_after") {
      return ex->respond_error(invalid_param(k, str_cat("Unknown parameter: '", echo_value(k), "'."), "unknown_parameter"));
    }
  }
  b.client = ex->record().client;
  on_batch_store(ctx, ex, [b](BatchService& svc, jobs::BatchStore& db) mutable -> HttpResponse {
    auto f = db.get_file(b.input_file_id);
    if (!f.is_ok()) return error_response(batch_store_error(f.status()));
    if (!*f) {
      return error_response(invalid_param("input_file_id", str_cat("No such File object: ", echo_value(b.input_file_id)),
                                          "file_not_found"));
    }
    if ((*f)->purpose != "batch") {
      return error_response(invalid_param("input_file_id", "The input file must have been uploaded with purpose 'batch'."));
    }
    b.id = new_object_id("batch_");
    b.status = "validating";
    b.created_ms = svc.now_ms();
    b.expires_ms = b.created_ms + svc.options().window_ms;
    if (Status s = db.insert_batch(b); !s.is_ok()) return error_response(batch_store_error(s));
    svc.wake();
    return json_response(batch_json(b, nullptr));
  });
}

void handle_list_batches(const AppContext& ctx, const ExchangePtr& ex) {
  auto q = query_params(ex->request().target);
  if (!q) return ex->respond_error(invalid_param("query", "The query string has a malformed escape."));
  jobs::Page page;
  if (auto e = read_page(*q, 20, 100, &page)) return ex->respond_error(*e);
  on_batch_store(ctx, ex, [page](BatchService& svc, jobs::BatchStore& db) -> HttpResponse {
    auto r = db.list_batches(page);
    if (!r.is_ok()) {
      if (r.status().code() == StatusCode::kNotFound) return error_response(invalid_param("after", r.status().message()));
      return error_response(batch_store_error(r.status()));
    }
    Json data = Json::array();
    for (const auto& b : r->first) {
      if (!running(b.status)) {
        data.push_back(batch_json(b, nullptr));
        continue;
      }
      auto counts = db.line_counts(b.id, svc.now_ms());
      if (!counts.is_ok()) return error_response(batch_store_error(counts.status()));
      data.push_back(batch_json(b, &*counts));
    }
    return list_response(std::move(data), r->second);
  });
}

void handle_get_batch(const AppContext& ctx, const ExchangePtr& ex) {
  const std::string id = ex->params()["id"];
  on_batch_store(ctx, ex, [id](BatchService& svc, jobs::BatchStore& db) -> HttpResponse {
    auto b = db.get_batch(id);
    if (!b.is_ok()) return error_response(batch_store_error(b.status()));
    if (!*b) return error_response(batch_not_found(id));
    return batch_response(svc, db, **b);
  });
}

void handle_cancel_batch(const AppContext& ctx, const ExchangePtr& ex) {
  std::string id = ex->params()["id"];
  if (!ends_with(id, "/cancel")) {
    return ex->respond_error(error_with_status(404, str_cat("Unknown request URL: POST ", echo_value(ex->request().path), "."),
                                               "unknown_url"));
  }
  id.resize(id.size() - 7);
  on_batch_store(ctx, ex, [id](BatchService& svc, jobs::BatchStore& db) -> HttpResponse {
    auto b = db.request_cancel(id, svc.now_ms());
    if (!b.is_ok()) return error_response(batch_store_error(b.status()));
    if (!*b) return error_response(batch_not_found(id));
    if ((*b)->status == "completed" || (*b)->status == "failed" || (*b)->status == "expired" ||
        (*b)->status == "finalizing") {
      return error_response(error_with_status(
          409, str_cat("Cannot cancel a batch with status '", (*b)->status, "'."), "batch_not_cancellable"));
    }
    svc.wake();
    return batch_response(svc, db, **b);
  });
}

void handle_list_deliveries(const AppContext& ctx, const ExchangePtr& ex) {
  auto q = query_params(ex->request().target);
  if (!q) return ex->respond_error(invalid_param("query", "The query string has a malformed escape."));
  jobs::Page page;
  if (auto e = read_page(*q, 20, 100, &page)) return ex->respond_error(*e);
  const std::string subject = q->count("subject_id") ? q->at("subject_id") : "";
  on_batch_store(ctx, ex, [page, subject](BatchService&, jobs::BatchStore& db) -> HttpResponse {
    auto r = db.list_deliveries(page, subject);
    if (!r.is_ok()) {
      if (r.status().code() == StatusCode::kNotFound) return error_response(invalid_param("after", r.status().message()));
      return error_response(batch_store_error(r.status()));
    }
    Json data = Json::array();
    for (const auto& d : r->first) data.push_back(delivery_json(d));
    return list_response(std::move(data), r->second);
  });
}

}  // namespace kiln::http
