#include "kiln/http/router.h"

#include <algorithm>

#include "kiln/core/str.h"

namespace kiln::http {

void Router::add(std::string method, std::string pattern, Handler handler) {
  Route r;
  r.method = std::move(method);
  r.pattern = pattern;
  auto open = pattern.find('{');
  if (open != std::string::npos && pattern.back() == '}') {
    r.prefix = pattern.substr(0, open);
    r.param = pattern.substr(open + 1, pattern.size() - open - 2);
  } else {
    r.prefix = pattern;
  }
  r.handler = std::move(handler);
  routes_.push_back(std::move(r));
}

RouteMatch Router::match(const std::string& method, const std::string& path) const {
  RouteMatch m;
  // Literal routes win over parameterised ones ("/v1/models" vs "/v1/models/{id}").
  for (int pass = 0; pass < 2; ++pass) {
    for (const auto& r : routes_) {
      bool literal = r.param.empty();
      if (literal != (pass == 0)) continue;
      std::string value;
      if (literal) {
        if (path != r.prefix) continue;
      } else {
        if (path.size() <= r.prefix.size() || path.compare(0, r.prefix.size(), r.prefix) != 0) continue;
        if (!percent_decode(path.substr(r.prefix.size()), &value) || value.empty()) continue;
      }
      if (r.method != method) {
        if (std::find(m.allowed.begin(), m.allowed.end(), r.method) == m.allowed.end()) m.allowed.push_back(r.method);
        if (m.kind == RouteMatch::Kind::kNotFound) {
          m.kind = RouteMatch::Kind::kMethodNotAllowed;
          m.pattern = r.pattern;
        }
        continue;
      }
      m.kind = RouteMatch::Kind::kFound;
      m.handler = &r.handler;
      m.pattern = r.pattern;
      if (!literal) m.params[r.param] = value;
      return m;
    }
    if (m.kind == RouteMatch::Kind::kMethodNotAllowed) return m;
  }
  return m;
}

bool percent_decode(const std::string& in, std::string* out) {
  out->clear();
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out->push_back(in[i]);
      continue;
    }
    if (i + 2 >= in.size()) return false;
    int hi = hex(in[i + 1]), lo = hex(in[i + 2]);
    if (hi < 0 || lo < 0) return false;
    out->push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return true;
}

// ?a=1&b=x -> {a: 1, b: x}, percent-decoded ('+' is a space); nullopt on a bad escape.
std::optional<std::map<std::string, std::string>> query_params(const std::string& target) {
  std::map<std::string, std::string> out;
  const size_t q = target.find('?');
  if (q == std::string::npos) return out;
  for (const auto& part : split(std::string_view(target).substr(q + 1), '&')) {
    if (part.empty()) continue;
    const size_t eq = part.find('=');
    std::string k = part.substr(0, eq), v = eq == std::string::npos ? "" : part.substr(eq + 1);
    for (char& c : v) {
      if (c == '+') c = ' ';
    }
    std::string dk, dv;
    if (!percent_decode(k, &dk) || !percent_decode(v, &dv)) return std::nullopt;
    out[dk] = dv;
  }
  return out;
}

}  // namespace kiln::http
