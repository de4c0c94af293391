// Plain request and response values shared by the server core, the middleware and the handlers.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kiln::http {

using Headers = std::vector<std::pair<std::string, std::string>>;

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string target;  // as sent: "/v1/models?x=1"
  std::string path;    // target without the query: "/v1/models"
  Headers headers;     // names lower-cased
  std::string body;
  // Routes that take large uploads (ServerOptions::upload_route) get their body in this file
  // instead of `body`; the exchange deletes it when it ends unless the handler moved it away.
  std::string body_file;
  bool http10 = false;
  // Scheduling priority of the work this request starts (serve::Request::priority): 0 for
  // clients; batch lines run at a lower one (a higher value).
  int32_t priority = 0;
  std::string remote;  // peer address, for the access log
  // A background response run by the batch service (never set from the wire): the stored
  // response's id, under which this request answers (docs/responses-api.md).
  std::string response_id;

  // The first header named `name` (lower case), if any.
  const std::string* header(std::string_view name) const;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  Headers headers;
  std::string body;
};

// "Not Found" for 404, ...
std::string_view reason_phrase(int status);
// Lower-cases ASCII letters.
std::string ascii_lower(std::string_view s);

}  // namespace kiln::http
