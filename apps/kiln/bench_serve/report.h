// Turns the records of a run into the figures users compare servers by, printed as a table and
// written as JSON.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench_serve/runner.h"
#include "bench_serve/stats.h"

namespace kiln::bench_serve {

struct ErrorCount {
  int64_t count = 0;
  std::string example;  // the message of the first one
};

struct Metrics {
  int64_t completed = 0;
  int64_t failed = 0;
  int64_t cancelled = 0;  // in flight when the run was stopped; neither completed nor failed
  std::map<std::string, ErrorCount> errors;  // "http_503", "timeout", "connect", ...
  double duration_s = 0;  // first request issued to last response read
  int64_t input_tokens = 0;
  int64_t input_tokens_estimated = 0;  // completed requests whose prompt size the server did not report
  int64_t output_tokens = 0;
  int64_t short_outputs = 0;  // completed with fewer tokens than max_tokens asked for
  double request_throughput = 0;      // completed requests / s
  double output_throughput = 0;       // output tokens / s
  double total_token_throughput = 0;  // (input + output) tokens / s
  double mean_in_flight = 0;          // sum of request latencies / duration
  Summary ttft, tpot, itl, e2e;       // seconds
  int64_t warmup_requests = 0;
  int64_t warmup_failed = 0;
};

Metrics compute_metrics(const RunResult& run);

// What the header of the table says about the run.
struct RunLabel {
  std::string url;
  std::string model;
  std::string endpoint;
  std::string load;  // "concurrency 8" or "Poisson 4 req/s, at most 16 in flight"
  bool stream = true;
  std::string device;  // what kiln lists for the model (device and weight dtype); empty if unknown
};

std::string format_table(const Metrics& m, const RunLabel& label, bool interrupted);

// The whole report: command line, settings, start and end times, the figures, and with
// `per_request` every request's timings.
nlohmann::json report_json(const Metrics& m, const RunResult& run, const nlohmann::json& settings,
                           const std::vector<std::string>& command_line, int64_t started_unix_ms,
                           int64_t finished_unix_ms, bool per_request);

// "2025-01-31T12:00:00.123Z"
std::string iso8601_utc(int64_t unix_ms);

}  // namespace kiln::bench_serve
