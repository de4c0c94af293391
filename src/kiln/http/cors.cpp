#include "kiln/http/cors.h"

#include "kiln/core/str.h"

namespace kiln::http {

Cors::Cors(std::vector<std::string> origins) {
  for (auto& o : origins) {
    std::string t(trim(o));
    while (!t.empty() && t.back() == '/') t.pop_back();  // "https://a.example/" names the same origin
    if (t.empty()) continue;
    if (t == "*") any_ = true;
    origins_.push_back(std::move(t));
  }
}

bool Cors::allowed(const std::string& origin) const {
  if (any_) return true;
  for (const auto& o : origins_) {
    if (o == origin) return true;
  }
  return false;
}

Headers Cors::response_headers(const HttpRequest& request) const {
  Headers h;
  if (!enabled()) return h;
  const std::string* origin = request.header("origin");
  if (origin == nullptr || !allowed(*origin)) return h;
  h.emplace_back("Access-Control-Allow-Origin", any_ ? "*" : *origin);
  if (!any_) h.emplace_back("Vary", "Origin");
  h.emplace_back("Access-Control-Expose-Headers", "X-Request-ID, Retry-After");
  return h;
}

bool Cors::is_preflight(const HttpRequest& request) const {
  return enabled() && request.method == "OPTIONS" && request.header("access-control-request-method") != nullptr &&
         request.header("origin") != nullptr;
}

HttpResponse Cors::preflight_response(const HttpRequest& request) const {
  HttpResponse r;
  r.status = 204;
  r.content_type.clear();
  r.headers = response_headers(request);
  if (r.headers.empty()) {
    r.status = 403;  // a preflight from an origin that is not allowed
    return r;
  }
  r.headers.emplace_back("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
  const std::string* asked = request.header("access-control-request-headers");
  r.headers.emplace_back("Access-Control-Allow-Headers",
                         asked != nullptr ? *asked : "Authorization, Content-Type, X-Request-ID");
  r.headers.emplace_back("Access-Control-Max-Age", "600");
  return r;
}

}  // namespace kiln::http
