#include "kiln/http/batch_json.h"

#include <fstream>
#include <unordered_set>

#include "kiln/core/str.h"
#include "kiln/http/batch_service.h"
#include "kiln/http/errors.h"

namespace kiln::http {

namespace {

Json seconds_or_null(int64_t ms) { return ms > 0 ? Json(ms / 1000) : Json(nullptr); }
std::string dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }
constexpr size_t kMaxErrors = 100;

}  // namespace

bool batch_endpoint_supported(const std::string& e) {
  return e == "/v1/chat/completions" || e == "/v1/completions" || e == "/v1/responses" || e == "/v1/embeddings";
}

Json file_json(const jobs::FileRecord& f) {
  return Json{{"id", f.id},
              {"object", "file"},
              {"bytes", f.bytes},
              {"created_at", f.created_ms / 1000},
              {"expires_at", seconds_or_null(f.expires_ms)},
              {"filename", f.filename},
              {"purpose", f.purpose},
              {"status", "processed"},
              {"status_details", nullptr}};
}

Json batch_json(const jobs::BatchRecord& b, const jobs::LineCounts* live) {
  Json errors = nullptr;
  if (!b.errors.empty()) {
    Json data = Json::parse(b.errors, nullptr, false);
    if (!data.is_discarded()) errors = Json{{"object", "list"}, {"data", data}};
  }
  Json metadata = nullptr;
  if (!b.metadata.empty()) {
    metadata = Json::parse(b.metadata, nullptr, false);
    if (metadata.is_discarded()) metadata = nullptr;
  }
  const int64_t total = live ? live->total : b.total;
  const int64_t completed = live ? live->completed : b.completed;
  const int64_t failed = live ? live->failed : b.failed;
  return Json{{"id", b.id},
              {"object", "batch"},
              {"endpoint", b.endpoint},
              {"errors", errors},
              {"input_file_id", b.input_file_id},
              {"completion_window", b.completion_window},
              {"status", b.status},
              {"output_file_id", b.output_file_id.empty() ? Json(nullptr) : Json(b.output_file_id)},
              {"error_file_id", b.error_file_id.empty() ? Json(nullptr) : Json(b.error_file_id)},
              {"created_at", b.created_ms / 1000},
              {"in_progress_at", seconds_or_null(b.in_progress_ms)},
              {"expires_at", seconds_or_null(b.expires_ms)},
              {"finalizing_at", seconds_or_null(b.finalizing_ms)},
              {"completed_at", seconds_or_null(b.completed_ms)},
              {"failed_at", seconds_or_null(b.failed_ms)},
              {"expired_at", seconds_or_null(b.expired_ms)},
              {"cancelling_at", seconds_or_null(b.cancelling_ms)},
              {"cancelled_at", seconds_or_null(b.cancelled_ms)},
              {"request_counts", {{"total", total}, {"completed", completed}, {"failed", failed}}},
              {"metadata", metadata}};
}

Json delivery_json(const jobs::WebhookDelivery& d) {
  return Json{{"id", d.id},
              {"object", "webhook.delivery"},
              {"endpoint", d.endpoint},
              {"event_type", d.event_type},
              {"subject_id", d.subject_id},
              {"status", d.status},
              {"attempts", d.attempts},
              {"created_at", d.created_ms / 1000},
              {"next_attempt_at", d.status == "pending" ? Json(d.next_attempt_ms / 1000) : Json(nullptr)},
              {"last_attempt_at", seconds_or_null(d.last_attempt_ms)},
              {"last_status_code", d.last_status > 0 ? Json(d.last_status) : Json(nullptr)},
              {"last_error", d.last_error.empty() ? Json(nullptr) : Json(d.last_error)}};
}

ValidatedInput validate_batch_input(const std::filesystem::path& file, const std::string& endpoint, int64_t max_lines,
                                    size_t max_line_bytes) {
  ValidatedInput out;
  auto error = [&](const char* code, std::string message, const char* param, int64_t line) {
    if (out.errors.size() >= kMaxErrors) return;
    out.errors.push_back(Json{{"code", code},
                              {"message", std::move(message)},
                              {"param", param == nullptr ? Json(nullptr) : Json(param)},
                              {"line", line > 0 ? Json(line) : Json(nullptr)}});
  };
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    error("file_not_found", "The input file's contents are missing on this server.", "input_file_id", 0);
    return out;
  }
  std::unordered_set<std::string> ids;
  std::string text;
  int64_t offset = 0, number = 0;
  while (true) {
    text.clear();
    // Reads one line without letting a line past the limit grow the buffer without bound.
    char c;
    bool too_long = false, got = false;
    const int64_t start = offset;
    while (in.get(c)) {
      got = true;
      ++offset;
      if (c == '\n') break;
      if (text.size() < max_line_bytes) text += c;
      else too_long = true;
    }
    if (!got) break;
    ++number;
    if (!text.empty() && text.back() == '\r') text.pop_back();
    if (trim(text).empty()) continue;
    if (static_cast<int64_t>(out.lines.size()) >= max_lines) {
      error("too_many_requests", str_cat("The input file has more than ", max_lines, " requests."), nullptr, number);
      break;
    }
    if (too_long) {
      error("line_too_large", str_cat("The line exceeds the limit of ", max_line_bytes, " bytes."), nullptr, number);
      continue;
    }
    Json j = Json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
      error("invalid_json_line", "This line is not a JSON object.", nullptr, number);
      continue;
    }
    auto id = j.find("custom_id");
    if (id == j.end() || !id->is_string() || id->get<std::string>().empty()) {
      error("missing_required_parameter", "Each line needs a non-empty string custom_id.", "custom_id", number);
      continue;
    }
    const std::string custom_id = id->get<std::string>();
    if (!ids.insert(custom_id).second) {
      error("duplicate_custom_id", str_cat("The custom_id '", echo_value(custom_id), "' appears more than once."),
            "custom_id", number);
      continue;
    }
    auto method = j.find("method");
    if (method == j.end() || !method->is_string() || method->get<std::string>() != "POST") {
      error("invalid_value", "method must be \"POST\".", "method", number);
      continue;
    }
    auto url = j.find("url");
    if (url == j.end() || !url->is_string() || url->get<std::string>() != endpoint) {
      error("invalid_url", str_cat("url must be the batch's endpoint, '", endpoint, "'."), "url", number);
      continue;
    }
    auto body = j.find("body");
    if (body == j.end() || !body->is_object()) {
      error("missing_required_parameter", "body must be a JSON object (the request).", "body", number);
      continue;
    }
    auto model = body->find("model");
    if (model == body->end() || !model->is_string() || model->get<std::string>().empty()) {
      error("missing_required_parameter", "body.model must name a model.", "body.model", number);
      continue;
    }
    if (out.model.empty()) out.model = model->get<std::string>();
    if (model->get<std::string>() != out.model) {
      error("mismatched_model", str_cat("Every line of a batch must use the same model; line 1 uses '",
                                        echo_value(out.model), "'."),
            "body.model", number);
      continue;
    }
    auto stream = body->find("stream");
    if (stream != body->end() && stream->is_boolean() && stream->get<bool>()) {
      error("invalid_value", "Batch requests cannot be streamed.", "body.stream", number);
      continue;
    }
    out.lines.push_back(jobs::BatchLine{number, custom_id, start, offset - start});
  }
  if (out.lines.empty() && out.errors.empty()) error("empty_file", "The input file has no requests.", nullptr, 0);
  return out;
}

Result<std::string> read_line_body(const std::filesystem::path& file, int64_t offset, int64_t length) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return not_found("the batch's input file is missing");
  std::string text(static_cast<size_t>(length), '\0');
  in.seekg(offset);
  in.read(text.data(), length);
  if (in.gcount() != length) return internal_error("the batch's input file is shorter than when it was validated");
  Json j = Json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.contains("body")) return internal_error("the batch's input file changed since validation");
  return dump(j["body"]);
}

std::string response_line(const std::string& custom_id, int status, const std::string& request_id,
                          const std::string& body) {
  Json parsed = Json::parse(body, nullptr, false);
  Json line = {{"id", new_object_id("batch_req_")},
               {"custom_id", custom_id},
               {"response", {{"status_code", status}, {"request_id", request_id},
                             {"body", parsed.is_discarded() ? Json(body) : parsed}}},
               {"error", nullptr}};
  return dump(line);
}

std::string expired_line(const std::string& custom_id) {
  return dump(Json{{"id", new_object_id("batch_req_")},
                   {"custom_id", custom_id},
                   {"response", nullptr},
                   {"error", {{"code", "batch_expired"},
                              {"message", "This request could not be executed before the completion window expired."}}}});
}

FinalLine final_line(const jobs::LineResultRow& row, const std::string& status) {
  if (row.done) return FinalLine{row.is_error ? FinalLine::kErrors : FinalLine::kOutput, row.result};
  if (status == "expired") return FinalLine{FinalLine::kErrors, expired_line(row.custom_id)};
  return FinalLine{};
}

}  // namespace kiln::http
