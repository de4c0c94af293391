#include "kiln/http/errors.h"

#include <cstdlib>
#include <regex>

#include <nlohmann/json.hpp>

#include "kiln/http/sse.h"

namespace kiln::http {
namespace {

std::string type_for_status(int status) {
  if (status >= 500) return "server_error";
  if (status == 429) return "rate_limit_error";
  return "invalid_request_error";
}

}  // namespace

std::string echo_value(std::string_view value, size_t max_bytes) {
  if (value.size() <= max_bytes) return std::string(value);
  size_t cut = max_bytes;
  // Back off to the start of a UTF-8 character so that the quote stays valid text.
  while (cut > 0 && (static_cast<unsigned char>(value[cut]) & 0xC0) == 0x80) --cut;
  return std::string(value.substr(0, cut)) + "\u2026 (" + std::to_string(value.size()) + " bytes)";
}

ApiError invalid_param(std::string param, std::string message, std::string code) {
  ApiError e;
  e.status = 400;
  e.message = "Invalid value for '" + param + "': " + message;
  e.param = std::move(param);
  e.code = std::move(code);
  return e;
}

ApiError invalid_type(std::string param, std::string expected, std::string got) {
  ApiError e;
  e.status = 400;
  e.message = "Invalid type for '" + param + "': expected " + expected + ", but got " + got + ".";
  e.param = std::move(param);
  e.code = "invalid_type";
  return e;
}

ApiError error_with_status(int status, std::string message, std::string code) {
  ApiError e;
  e.status = status;
  e.message = std::move(message);
  e.type = type_for_status(status);
  e.code = std::move(code);
  return e;
}

std::string rename_field(std::string_view param, std::string_view from, std::string_view to) {
  const bool leads = param.substr(0, from.size()) == from &&
                     (param.size() == from.size() || param[from.size()] == '.' || param[from.size()] == '[');
  if (!leads) return std::string(param);
  return std::string(to) + std::string(param.substr(from.size()));
}

ApiError rename_param(ApiError e, std::string_view from, std::string_view to) {
  std::string renamed = rename_field(e.param, from, to);
  if (renamed == e.param) return e;
  const std::string quoted = "'" + e.param + "'";
  if (auto at = e.message.find(quoted); at != std::string::npos) e.message.replace(at, quoted.size(), "'" + renamed + "'");
  e.param = std::move(renamed);
  return e;
}

ApiError api_error_from_status(const Status& status, std::string param) {
  int http = 500;
  std::string code;
  switch (status.code()) {
    case StatusCode::kOk: http = 200; break;
    case StatusCode::kInvalidArgument:
    case StatusCode::kOutOfRange:
    case StatusCode::kFailedPrecondition:
    case StatusCode::kUnimplemented: http = 400; break;
    case StatusCode::kNotFound: http = 404; break;
    case StatusCode::kResourceExhausted:
    case StatusCode::kUnavailable: http = 503; code = "overloaded"; break;
    case StatusCode::kDeadlineExceeded: http = 504; code = "timeout"; break;
    case StatusCode::kCancelled: http = 499; break;
    case StatusCode::kPermissionDenied: http = 403; break;
    case StatusCode::kUnauthenticated: http = 401; break;
    case StatusCode::kDataLoss:
    case StatusCode::kInternal: http = 500; break;
    case StatusCode::kTooLong: http = 400; code = "context_length_exceeded"; break;  // tokenize_prompt()
  }
  ApiError e = error_with_status(http, status.message(), code);
  e.param = std::move(param);
  static const std::regex kRetry(R"(\(retry after (\d+) ?s\))");
  std::smatch m;
  if (std::regex_search(status.message(), m, kRetry)) {
    e.retry_after_seconds = std::max(1, std::atoi(m[1].str().c_str()));
  }
  return e;
}

std::string error_body(const ApiError& e) {
  nlohmann::json j;
  j["error"]["message"] = echo_value(e.message, kMaxErrorMessageBytes);
  j["error"]["type"] = e.type;
  j["error"]["param"] = e.param.empty() ? nlohmann::json(nullptr) : nlohmann::json(e.param);
  j["error"]["code"] = e.code.empty() ? nlohmann::json(nullptr) : nlohmann::json(e.code);
  // Messages may quote bytes from the request; never let them make the body invalid UTF-8.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

HttpResponse error_response(const ApiError& e) {
  HttpResponse r;
  r.status = e.status;
  r.body = error_body(e);
  if (e.retry_after_seconds > 0) r.headers.emplace_back("Retry-After", std::to_string(e.retry_after_seconds));
  return r;
}

const ErrorFormat& openai_error_format() {
  static const ErrorFormat kOpenAi{error_response, [](const ApiError& e) { return sse_data(error_body(e)); }};
  return kOpenAi;
}

}  // namespace kiln::http
