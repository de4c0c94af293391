// Routes a method and path to a handler. Patterns are literal paths, optionally ending in one
// `{name}` segment that takes the rest of the path (model ids such as "org/name" contain '/').
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace kiln::http {

class Exchange;
using Handler = std::function<void(const std::shared_ptr<Exchange>&)>;

struct RouteMatch {
  enum class Kind { kFound, kNotFound, kMethodNotAllowed } kind = Kind::kNotFound;
  const Handler* handler = nullptr;
  std::string pattern;                        // the matched route, for logs and metrics
  std::map<std::string, std::string> params;  // {name} -> value (percent-decoded)
  std::vector<std::string> allowed;           // methods of the path, for 405's Allow header
};

class Router {
 public:
  void add(std::string method, std::string pattern, Handler handler);
  RouteMatch match(const std::string& method, const std::string& path) const;

 private:
  struct Route {
    std::string method, pattern, prefix, param;  // param empty: literal pattern
    Handler handler;
  };
  std::vector<Route> routes_;
};

// Decodes %XX escapes; false when an escape is malformed.
bool percent_decode(const std::string& in, std::string* out);
// A target's query: ?a=1&b=x -> {a: 1, b: x}, percent-decoded ('+' is a space); nullopt on a
// bad escape.
std::optional<std::map<std::string, std::string>> query_params(const std::string& target);

}  // namespace kiln::http
