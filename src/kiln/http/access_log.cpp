#include "kiln/http/access_log.h"

#include <chrono>
#include <ctime>

#include <nlohmann/json.hpp>

namespace kiln::http {
namespace {

// A client picks the method and path, and error messages may quote them: keep a line readable
// and bounded whatever the client sends.
std::string clipped(const std::string& v, size_t limit) {
  if (v.size() <= limit) return v;
  return v.substr(0, limit) + "...(" + std::to_string(v.size()) + " bytes)";
}

}  // namespace

std::string access_log_line(const AccessRecord& r) {
  nlohmann::ordered_json j;
  auto now = std::chrono::system_clock::now();
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char ts[32];
  std::strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
  j["ts"] = ts;
  j["type"] = "access";
  j["request_id"] = r.request_id;
  j["method"] = clipped(r.method, kAccessLogMethodLimit);
  j["path"] = clipped(r.path, kAccessLogPathLimit);
  if (!r.route.empty()) j["route"] = r.route;
  j["status"] = r.status;
  j["remote"] = r.remote;
  if (!r.model.empty()) j["model"] = r.model;
  if (r.prompt_tokens >= 0) {
    j["stream"] = r.stream;
    j["prompt_tokens"] = r.prompt_tokens;
    j["completion_tokens"] = std::max<int64_t>(0, r.completion_tokens);
    if (r.cached_tokens >= 0) j["cached_tokens"] = r.cached_tokens;
    j["ttft_ms"] = r.ttft_seconds >= 0 ? nlohmann::ordered_json(static_cast<int64_t>(r.ttft_seconds * 1000.0 + 0.5))
                                       : nlohmann::ordered_json(nullptr);
    if (!r.finish_reason.empty()) j["finish_reason"] = r.finish_reason;
  }
  j["duration_ms"] = static_cast<double>(static_cast<int64_t>(r.duration_seconds * 1e4 + 0.5)) / 10.0;
  if (!r.error.empty()) j["error"] = clipped(r.error, kAccessLogErrorLimit);
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

}  // namespace kiln::http
