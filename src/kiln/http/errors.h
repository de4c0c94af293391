// OpenAI's error envelope: {"error": {"message", "type", "param", "code"}} with its HTTP status.
#pragma once

#include <string>
#include <string_view>

#include "kiln/core/status.h"
#include "kiln/http/http_types.h"
#include "kiln/http/request_limits.h"

namespace kiln::http {

struct ApiError {
  int status = 400;
  std::string message;
  std::string type = "invalid_request_error";
  std::string param;  // empty -> null
  std::string code;   // empty -> null
  int retry_after_seconds = 0;  // > 0 adds Retry-After
};

// A client's value as an error message may quote it: at most `max_bytes` (cut at a UTF-8
// character boundary), then "…" and the value's full size. Every error that quotes something a
// client sent (a model name, a URL, a key, a JSON token) quotes it through this.
std::string echo_value(std::string_view value, size_t max_bytes = kMaxEchoBytes);

// Returns the ApiError an expression yields, if any (parsers chain field checks with it).
#define KILN_API_CHECK(expr)                       \
  do {                                             \
    if (auto kiln_err_ = (expr)) return kiln_err_; \
  } while (0)

// A 400 naming the parameter: "Invalid value for 'temperature': ...".
ApiError invalid_param(std::string param, std::string message, std::string code = "invalid_value");
// A 400 for a value of the wrong JSON type: "Invalid type for 'n': expected an integer, but got a string."
ApiError invalid_type(std::string param, std::string expected, std::string got);
ApiError error_with_status(int status, std::string message, std::string code = "");
// For APIs translated into another's request, whose parser names its own fields: `param` with its
// leading field `from` ("stop", or "stop" of "stop[2]" / "stop.x") called `to`.
std::string rename_field(std::string_view param, std::string_view from, std::string_view to);
// `e` with its param renamed so, and the field's quoted name in its message ('stop[2]').
ApiError rename_param(ApiError e, std::string_view from, std::string_view to);

// Maps a Status from a lower layer (tokenizer, template, scheduler) to an HTTP error. A message
// may carry a retry hint as a trailing "(retry after N s)", which becomes Retry-After.
ApiError api_error_from_status(const Status& status, std::string param = "");

// The JSON body of the envelope. A message longer than kMaxErrorMessageBytes is cut there.
std::string error_body(const ApiError& e);
// A complete response: envelope, status, Retry-After when asked.
HttpResponse error_response(const ApiError& e);

// How an API words its errors: the whole response, and the last event of a stream that fails.
// OpenAI's by default; Anthropic's Messages API has its own envelope (messages_api.h).
struct ErrorFormat {
  HttpResponse (*response)(const ApiError& e);
  std::string (*stream_event)(const ApiError& e);
};
const ErrorFormat& openai_error_format();

}  // namespace kiln::http
