// What kiln records about each API request (a job), and the questions the job store answers.
// Plain structs: the store and the recorder know no HTTP and no JSON (DESIGN.md §1).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::jobs {

enum class JobStatus { kQueued, kRunning, kCompleted, kFailed, kCancelled };

std::string_view job_status_name(JobStatus s);
std::optional<JobStatus> parse_job_status(std::string_view s);
bool is_terminal(JobStatus s);

// Times are Unix milliseconds; 0 means "not reached" (a job that never ran has no started_ms).
struct Job {
  std::string id;        // the request id (X-Request-ID)
  std::string node;      // the kiln process's node name: whose restart fails the job if it is left open
  std::string model;
  std::string endpoint;  // the route: "/v1/chat/completions", ...
  std::string client;    // an API key's id ("key_" + a digest prefix) or the client address; never a key
  JobStatus status = JobStatus::kQueued;
  bool stream = false;
  int64_t received_ms = 0;
  int64_t started_ms = 0;
  int64_t first_token_ms = 0;
  int64_t finished_ms = 0;
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  std::string finish_reason;
  int http_status = 0;
  std::string error_code;
  std::string error_message;
  // Only with --store-bodies.
  std::string request_body;
  std::string response_body;

  int64_t queue_wait_ms() const { return started_ms > 0 ? started_ms - received_ms : -1; }
  int64_t ttft_ms() const { return first_token_ms > 0 ? first_token_ms - received_ms : -1; }
  int64_t duration_ms() const { return finished_ms > 0 ? finished_ms - received_ms : -1; }
};

// Most jobs one list call returns.
inline constexpr int kMaxListLimit = 1000;

// Every field is optional; set ones all must match. Jobs come newest first (received_ms, then id,
// both descending); `after` is the id of the last job of the previous page.
struct JobFilter {
  std::optional<JobStatus> status;
  std::string model, client, endpoint;
  int64_t since_ms = 0;  // received_ms >= since_ms (0: no bound)
  int64_t until_ms = 0;  // received_ms < until_ms (0: no bound)
  std::string after;
  int limit = 100;
};

struct JobPage {
  std::vector<Job> jobs;
  bool has_more = false;
};

struct Percentiles {
  int64_t count = 0;  // jobs the figures are over
  double p50 = 0, p95 = 0, p99 = 0;
};

struct JobStats {
  int64_t since_ms = 0, until_ms = 0;
  int64_t total = 0;
  int64_t by_status[5] = {0, 0, 0, 0, 0};  // indexed by JobStatus
  int64_t prompt_tokens = 0, completion_tokens = 0;
  // Summed over the jobs: first token to finish, the time their tokens were being generated.
  int64_t generation_ms = 0;
  Percentiles duration_ms, ttft_ms, queue_wait_ms;  // over finished jobs that have the value
};

}  // namespace kiln::jobs
