// The HTTP layer's metrics: turns each finished request (its AccessRecord) into series, every
// label drawn from a bounded set, whatever the client sent (docs/metrics.md):
//   method  one of the RFC 9110 methods and PATCH, else "other";
//   route   a pattern the app registered, "preflight", "unmatched" (routed, no route) or "none"
//           (answered before routing: malformed, too large, too slow), never the raw path;
//   status  the status kiln answered (a 3-digit code kiln chose, 499 when the client left);
//   model   only a model the pool lists; a request for any other has no per-model series.
#pragma once

#include <functional>
#include <set>
#include <string>
#include <string_view>

#include "kiln/http/access_log.h"
#include "kiln/metrics/metrics.h"

namespace kiln::http {

class RequestMetrics {
 public:
  // `model_listed` says whether the pool lists a model id.
  RequestMetrics(metrics::Registry& registry, std::function<bool(std::string_view)> model_listed);

  // A route pattern the app serves ("/v1/models/{id}"), allowed as a `route` label.
  void add_route(std::string pattern);
  void record(const AccessRecord& r);

  static std::string_view method_label(std::string_view method);
  std::string_view route_label(std::string_view route) const;
  static std::string status_label(int status);

 private:
  metrics::Registry& registry_;
  std::function<bool(std::string_view)> model_listed_;
  std::set<std::string, std::less<>> routes_;
};

}  // namespace kiln::http
