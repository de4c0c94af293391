// One JSON line per finished request (DESIGN §6, issue 4 part 7).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

namespace kiln::http {

class ActiveJob;

struct AccessRecord {
  std::string request_id;
  std::string method;
  std::string path;
  // The matched pattern ("/v1/models/{id}"), "unmatched" (no route), "preflight", or empty when
  // the request was answered before routing (malformed, too large, too slow).
  std::string route;
  std::string remote;
  std::string model;
  int status = 0;
  bool stream = false;
  int64_t prompt_tokens = -1;      // -1: not a generation request
  int64_t completion_tokens = -1;
  int64_t cached_tokens = -1;
  double ttft_seconds = -1;        // time to the first generated token; -1 when none came
  double duration_seconds = 0;
  std::string finish_reason;       // of the first choice, when known
  std::string error;               // the error message when status >= 400 (or a stream ended in one)
  std::string client;              // who asked (job_tracker.h: an API key's id or the address)
  std::shared_ptr<ActiveJob> job;  // the request's job, once it was submitted (job_tracker.h)
  // Rate limits (rate_limit.h): the client the request was counted as ("" when not limited) and
  // the tokens charged at admission, of which what the request did not use is refunded.
  std::string rate_client;
  int64_t rate_tokens_charged = 0;
};

// The method, path and error are logged up to these sizes, then cut with their full size noted.
inline constexpr size_t kAccessLogMethodLimit = 32;
inline constexpr size_t kAccessLogPathLimit = 2048;
inline constexpr size_t kAccessLogErrorLimit = 2048;

std::string access_log_line(const AccessRecord& r);

}  // namespace kiln::http
