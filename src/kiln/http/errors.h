// OpenAI's error envelope: {"error": {"message", "type", "param", "code"}} with its HTTP status.
#pragma once

#include <string>

#include "kiln/core/status.h"
#include "kiln/http/http_types.h"

namespace kiln::http {

struct ApiError {
  int status = 400;
  std::string message;
  std::string type = "invalid_request_error";
  std::string param;  // empty -> null
  std::string code;   // empty -> null
  int retry_after_seconds = 0;  // > 0 adds Retry-After
};

// A 400 naming the parameter: "Invalid value for 'temperature': ...".
ApiError invalid_param(std::string param, std::string message, std::string code = "invalid_value");
// A 400 for a value of the wrong JSON type: "Invalid type for 'n': expected an integer, but got a string."
ApiError invalid_type(std::string param, std::string expected, std::string got);
ApiError error_with_status(int status, std::string message, std::string code = "");

// Maps a Status from a lower layer (tokenizer, template, scheduler) to an HTTP error. A message
// may carry a retry hint as a trailing "(retry after N s)", which becomes Retry-After.
ApiError api_error_from_status(const Status& status, std::string param = "");

// The JSON body of the envelope.
std::string error_body(const ApiError& e);
// A complete response: envelope, status, Retry-After when asked.
HttpResponse error_response(const ApiError& e);

}  // namespace kiln::http
