// Cross-origin requests: off unless origins are configured ("*" allows any).
#pragma once

#include <string>
#include <vector>

#include "kiln/http/http_types.h"

namespace kiln::http {

class Cors {
 public:
  Cors() = default;
  explicit Cors(std::vector<std::string> origins);

  bool enabled() const { return !origins_.empty(); }
  // Headers to add to a response to `request` (none when CORS is off or the origin is not allowed).
  Headers response_headers(const HttpRequest& request) const;
  // True when `request` is a preflight (OPTIONS with Access-Control-Request-Method) that CORS answers.
  bool is_preflight(const HttpRequest& request) const;
  // The 204 answer to a preflight.
  HttpResponse preflight_response(const HttpRequest& request) const;

 private:
  bool allowed(const std::string& origin) const;
  std::vector<std::string> origins_;
  bool any_ = false;
};

}  // namespace kiln::http
