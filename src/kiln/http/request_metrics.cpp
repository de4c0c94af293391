#include "kiln/http/request_metrics.h"

#include <algorithm>
#include <array>

namespace kiln::http {

RequestMetrics::RequestMetrics(metrics::Registry& registry, std::function<bool(std::string_view)> model_listed)
    : registry_(registry), model_listed_(std::move(model_listed)) {}

void RequestMetrics::add_route(std::string pattern) { routes_.insert(std::move(pattern)); }

std::string_view RequestMetrics::method_label(std::string_view method) {
  static constexpr std::array<std::string_view, 9> kKnown = {"GET",     "HEAD",    "POST",  "PUT",  "DELETE",
                                                             "CONNECT", "OPTIONS", "TRACE", "PATCH"};
  for (std::string_view k : kKnown) {
    if (k == method) return k;  // methods are case-sensitive: "get" is another method
  }
  return "other";
}

std::string_view RequestMetrics::route_label(std::string_view route) const {
  if (route.empty()) return "none";
  if (route == "preflight" || route == "unmatched") return route;
  auto it = routes_.find(route);
  return it != routes_.end() ? std::string_view(*it) : "unmatched";
}

std::string RequestMetrics::status_label(int status) {
  return status >= 100 && status <= 599 ? std::to_string(status) : "other";
}

void RequestMetrics::record(const AccessRecord& r) {
  const std::string route(route_label(r.route));
  const std::string status = status_label(r.status);
  registry_
      .counter("kiln_http_requests_total", "HTTP requests answered, by route, method and status.",
               {{"route", route}, {"method", std::string(method_label(r.method))}, {"status", status}})
      .inc();
  registry_
      .histogram("kiln_http_request_duration_seconds", "Time from a request's arrival to the end of its answer.",
                 metrics::latency_buckets(), {{"route", route}})
      .observe(r.duration_seconds);
  if (r.model.empty() || r.prompt_tokens < 0 || !model_listed_(r.model)) return;
  const metrics::Labels model = {{"model", r.model}};
  registry_.counter("kiln_prompt_tokens_total", "Prompt tokens of answered generation requests.", model)
      .inc(static_cast<double>(r.prompt_tokens));
  registry_.counter("kiln_generation_tokens_total", "Tokens generated.", model)
      .inc(static_cast<double>(std::max<int64_t>(0, r.completion_tokens)));
  if (r.cached_tokens > 0) {
    registry_.counter("kiln_cached_prompt_tokens_total", "Prompt tokens served from the prefix cache.", model)
        .inc(static_cast<double>(r.cached_tokens));
  }
  registry_
      .counter("kiln_generation_requests_total",
               "Generation requests, by status: 200 answered, 499 cancelled because the client left, others failed.",
               {{"model", r.model}, {"status", status}})
      .inc();
  if (r.ttft_seconds >= 0) {
    registry_
        .histogram("kiln_time_to_first_token_seconds", "Time from a request's arrival to its first generated token.",
                   metrics::latency_buckets(), model)
        .observe(r.ttft_seconds);
  }
  registry_
      .histogram("kiln_request_latency_seconds", "Time from a generation request's arrival to its last token.",
                 metrics::latency_buckets(), model)
      .observe(r.duration_seconds);
}

}  // namespace kiln::http
