// The Files API: POST /v1/files (multipart, streamed to disk by the connection), GET /v1/files,
// GET /v1/files/{id}, GET /v1/files/{id}/content (streamed from disk), DELETE /v1/files/{id}
// (docs/batches.md). Database and file work runs on the batch service's API thread.
#include <algorithm>
#include <fstream>
#include <memory>

#include "kiln/core/str.h"
#include "kiln/http/batch_handlers.h"
#include "kiln/http/batch_json.h"
#include "kiln/http/batch_service.h"
#include "kiln/http/handlers.h"
#include "kiln/http/multipart.h"

namespace kiln::http {

namespace {

constexpr size_t kMaxFieldBytes = 1024;
constexpr size_t kDownloadChunk = 256 << 10;
constexpr size_t kDownloadBacklog = 1 << 20;
constexpr auto kDownloadBackoff = std::chrono::milliseconds(10);
constexpr int kMaxFileList = 10000;

}  // namespace

HttpResponse json_response(const Json& j, int status) {
  HttpResponse r;
  r.status = status;
  r.body = j.dump(-1, ' ', false, Json::error_handler_t::replace);
  return r;
}

ApiError batches_off() {
  return error_with_status(404, "The Files and Batch APIs need the job store, which is off (--database off).",
                           "batches_disabled");
}

ApiError batch_store_error(const Status& s) {
  ApiError e = error_with_status(503, str_cat("The job store is unavailable: ", s.message()), "job_store_unavailable");
  e.type = "server_error";
  e.retry_after_seconds = 1;
  return e;
}

ApiError batch_store_busy() {
  ApiError e = error_with_status(503, "Too many file and batch requests are waiting; retry shortly.", "job_store_busy");
  e.type = "server_error";
  e.retry_after_seconds = 1;
  return e;
}

void on_batch_store(const AppContext& ctx, const ExchangePtr& ex,
                    std::function<HttpResponse(BatchService&, jobs::BatchStore&)> fn) {
  if (ctx.batches == nullptr) return ex->respond_error(batches_off());
  BatchService* svc = ctx.batches;
  if (!svc->submit([svc, ex, fn = std::move(fn)](jobs::BatchStore& db) {
        auto r = std::make_shared<HttpResponse>(fn(*svc, db));
        ex->post([ex, r] { ex->respond(std::move(*r)); });
      })) {
    ex->respond_error(batch_store_busy());
  }
}

std::optional<ApiError> read_page(const std::map<std::string, std::string>& q, int default_limit, int max_limit,
                                  jobs::Page* page) {
  page->limit = default_limit;
  for (const auto& [k, v] : q) {
    if (k == "limit") {
      int64_t n = 0;
      Json j = Json::parse(v, nullptr, false);
      if (j.is_discarded() || !json_to_int(j, &n) || n < 1 || n > max_limit) {
        return invalid_param("limit", str_cat("limit must be an integer from 1 to ", max_limit, "."));
      }
      page->limit = static_cast<int>(n);
    } else if (k == "after") {
      page->after = v;
    }
  }
  return std::nullopt;
}

HttpResponse list_response(Json data, bool has_more) {
  Json out = {{"object", "list"}, {"data", data},
              {"first_id", data.empty() ? Json(nullptr) : data.front()["id"]},
              {"last_id", data.empty() ? Json(nullptr) : data.back()["id"]},
              {"has_more", has_more}};
  return json_response(out);
}

void handle_upload_file(const AppContext& ctx, const ExchangePtr& ex) {
  if (ctx.batches == nullptr) return ex->respond_error(batches_off());
  const HttpRequest& req = ex->request();
  const std::string* ct = req.header("content-type");
  auto boundary = multipart_boundary(ct == nullptr ? "" : *ct);
  if (!boundary) {
    return ex->respond_error(error_with_status(
        415, "Upload a file as multipart/form-data with the fields 'file' and 'purpose'.", "unsupported_media_type"));
  }
  const std::string body_file = req.body_file;
  const std::string client = ex->record().client;
  on_batch_store(ctx, ex, [body_file, b = *boundary, client](BatchService& svc, jobs::BatchStore& db) -> HttpResponse {
    jobs::FileRecord f;
    f.id = new_object_id("file-");
    f.client = client;
    const auto part = svc.options().files_dir / (f.id + ".part");
    // The form fields kiln reads (others are ignored, as before): purpose and the expiration
    // policy, which the openai clients send as expires_after[anchor] / expires_after[seconds].
    std::map<std::string, std::string> fields;
    std::string field_name, field;
    bool in_file = false, have_file = false, in_field = false, last_newline = true;
    std::ofstream out;
    MultipartSink sink;
    sink.begin = [&](const MultipartPart& p) -> Status {
      if (p.name == "file" && p.has_filename) {
        if (have_file) return invalid_argument("Send one 'file' part.");
        out.open(part, std::ios::binary | std::ios::trunc);
        if (!out) return internal_error("cannot store the file");
        f.filename = p.filename.empty() ? "upload" : p.filename;
        field_name.clear();  // errors from here on are the file's
        in_file = have_file = true;
      } else if (p.name == "purpose" || p.name == "expires_after[anchor]" || p.name == "expires_after[seconds]") {
        field_name = p.name;
        if (fields.count(p.name)) return invalid_argument(str_cat("Send the '", p.name, "' field once."));
        field.clear();
        in_field = true;
      } else if (starts_with(p.name, "expires_after")) {
        field_name = p.name;
        return invalid_argument(str_cat("Unknown parameter: '", echo_value(p.name), "'."));
      } else {
        field_name.clear();
        in_field = false;
      }
      return Status();
    };
    sink.data = [&](std::string_view d) -> Status {
      if (in_file) {
        out.write(d.data(), static_cast<std::streamsize>(d.size()));
        f.bytes += static_cast<int64_t>(d.size());
        for (char c : d) f.lines += c == '\n';
        last_newline = d.back() == '\n';
      } else if (in_field) {
        if (field.size() + d.size() > kMaxFieldBytes) {
          return invalid_argument(str_cat("The '", field_name, "' field is too long."));
        }
        field.append(d);
      }
      return Status();
    };
    sink.end = [&]() -> Status {
      if (in_file) {
        out.close();
        if (!out) return internal_error("cannot store the file");
        if (!last_newline) ++f.lines;
      }
      if (in_field) fields[field_name] = field;
      field_name.clear();  // errors between parts are the form's ("file")
      in_file = in_field = false;
      return Status();
    };
    Status s = read_multipart(body_file, b, sink);
    auto fail = [&](ApiError e) {
      std::error_code ec;
      out.close();
      std::filesystem::remove(part, ec);
      return error_response(e);
    };
    if (!s.is_ok()) {
      // Errors name a form field as the JSON APIs name a nested one: expires_after[x] -> expires_after.x.
      std::string param = field_name.empty() ? "file" : field_name;
      std::replace(param.begin(), param.end(), '[', '.');
      param.erase(std::remove(param.begin(), param.end(), ']'), param.end());
      return fail(s.code() == StatusCode::kInvalidArgument ? invalid_param(param, s.message())
                                                           : error_with_status(500, "The upload could not be stored."));
    }
    const std::string purpose = fields.count("purpose") ? fields["purpose"] : "";
    int64_t expires_s = 0;
    if (fields.count("expires_after[anchor]") || fields.count("expires_after[seconds]")) {
      auto text = [&](const char* k) { return fields.count(k) ? Json(fields[k]) : Json(); };
      Json seconds = text("expires_after[seconds]");
      if (seconds.is_string()) {
        // A form field is text: "3600" is the integer 3600; anything else is not an integer.
        Json n = Json::parse(seconds.get<std::string>(), nullptr, false);
        seconds = n.is_number_integer() ? n : seconds;
      }
      if (auto e = read_expiration("expires_after", text("expires_after[anchor]"), seconds, &expires_s)) return fail(*e);
    }
    if (!have_file) return fail(invalid_param("file", "Missing the 'file' part (a file upload).", "missing_required_parameter"));
    if (purpose.empty()) return fail(invalid_param("purpose", "Missing the 'purpose' field.", "missing_required_parameter"));
    if (purpose != "batch" && purpose != "user_data") {
      return fail(invalid_param("purpose", str_cat("'", echo_value(purpose),
                                                   "' is not a purpose kiln accepts: use 'batch' or 'user_data'.")));
    }
    f.purpose = purpose;
    if (purpose == "batch" && f.lines > svc.options().max_file_lines) {
      return fail(invalid_param("file", str_cat("A batch file may hold at most ", svc.options().max_file_lines,
                                                " requests; this one has ", f.lines, " lines.")));
    }
    std::error_code ec;
    std::filesystem::rename(part, svc.file_path(f.id), ec);
    if (ec) return fail(error_with_status(500, "The upload could not be stored."));
    f.created_ms = svc.now_ms();
    if (expires_s > 0) f.expires_ms = f.created_ms + expires_s * 1000;
    // Contents first, record second: a crash between leaves an unreferenced file, never a record
    // without contents.
    if (Status st = db.insert_file(f); !st.is_ok()) {
      std::filesystem::remove(svc.file_path(f.id), ec);
      return error_response(batch_store_error(st));
    }
    return json_response(file_json(f));
  });
}

void handle_list_files(const AppContext& ctx, const ExchangePtr& ex) {
  auto q = query_params(ex->request().target);
  if (!q) return ex->respond_error(invalid_param("query", "The query string has a malformed escape."));
  jobs::Page page;
  if (auto e = read_page(*q, kMaxFileList, kMaxFileList, &page)) return ex->respond_error(*e);
  std::string purpose = q->count("purpose") ? q->at("purpose") : "";
  on_batch_store(ctx, ex, [page, purpose](BatchService&, jobs::BatchStore& db) -> HttpResponse {
    auto r = db.list_files(page, purpose);
    if (!r.is_ok()) {
      if (r.status().code() == StatusCode::kNotFound) return error_response(invalid_param("after", r.status().message()));
      return error_response(batch_store_error(r.status()));
    }
    Json data = Json::array();
    for (const auto& f : r->first) data.push_back(file_json(f));
    return list_response(std::move(data), r->second);
  });
}

namespace {

ApiError file_not_found(const std::string& id) {
  return error_with_status(404, str_cat("No such File object: ", echo_value(id)), "file_not_found");
}

// Sends the file in chunks, never more than kDownloadBacklog ahead of the client.
void pump(const ExchangePtr& ex, std::shared_ptr<std::ifstream> in) {
  if (ex->finished() || ex->client_gone()) return;
  if (ex->pending_write_bytes() > kDownloadBacklog) {
    return ex->post_after(kDownloadBackoff, [ex, in] { pump(ex, in); });
  }
  std::string chunk(kDownloadChunk, '\0');
  in->read(chunk.data(), static_cast<std::streamsize>(chunk.size()));
  chunk.resize(static_cast<size_t>(in->gcount()));
  if (!chunk.empty()) ex->send(std::move(chunk));
  if (!*in) return ex->end_stream();
  ex->post([ex, in] { pump(ex, in); });
}

}  // namespace

void handle_get_file(const AppContext& ctx, const ExchangePtr& ex) {
  std::string id = ex->params()["id"];
  bool content = false;
  if (ends_with(id, "/content")) {
    id.resize(id.size() - 8);
    content = true;
  }
  if (ctx.batches == nullptr) return ex->respond_error(batches_off());
  BatchService* svc = ctx.batches;
  if (!svc->submit([svc, ex, id, content](jobs::BatchStore& db) {
        auto f = db.get_file(id);
        ex->post([svc, ex, id, content, f] {
          if (!f.is_ok()) return ex->respond_error(batch_store_error(f.status()));
          if (!*f) return ex->respond_error(file_not_found(id));
          if (!content) return ex->respond(json_response(file_json(**f)));
          auto in = std::make_shared<std::ifstream>(svc->file_path(id), std::ios::binary);
          if (!*in) return ex->respond_error(error_with_status(500, "The file's contents are missing on this server."));
          ex->start_stream((*f)->purpose == "user_data" ? "application/octet-stream" : "application/jsonl");
          pump(ex, in);
        });
      })) {
    ex->respond_error(batch_store_busy());
  }
}

void handle_delete_file(const AppContext& ctx, const ExchangePtr& ex) {
  const std::string id = ex->params()["id"];
  on_batch_store(ctx, ex, [id](BatchService& svc, jobs::BatchStore& db) -> HttpResponse {
    auto r = db.delete_file(id);
    if (!r.is_ok()) return error_response(batch_store_error(r.status()));
    if (!*r) return error_response(file_not_found(id));
    std::error_code ec;
    std::filesystem::remove(svc.file_path(id), ec);
    return json_response(Json{{"id", id}, {"object", "file"}, {"deleted", true}});
  });
}

}  // namespace kiln::http
