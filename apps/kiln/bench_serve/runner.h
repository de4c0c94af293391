// Drives the load: N clients sending back to back, or requests arriving as a seeded Poisson
// process (optionally capped in flight), spread over a few I/O threads, each with its own
// kept-alive connections. A warmup phase runs first and is reported apart.
#pragma once

#include <cstdint>
#include <vector>

#include "bench_serve/client.h"
#include "bench_serve/openai_api.h"
#include "bench_serve/target.h"
#include "bench_serve/workload.h"
#include "kiln/core/clock.h"
#include "kiln/core/status.h"

namespace kiln::bench_serve {

struct RunSettings {
  Target target;  // resolved
  BodySettings body;
  ClientSettings client;   // its `stopping` is set by the runner
  int concurrency = 1;     // clients sending back to back (when request_rate is 0)
  double request_rate = 0; // Poisson arrivals per second; 0 for fixed concurrency; inf for all at once
  int max_concurrency = 0; // cap on requests in flight with request_rate; 0 for none
  int64_t num_requests = 100;  // -1: until `duration_s`
  double duration_s = 0;       // stop issuing requests after this long; 0 for no limit
  int warmup = 0;
  int threads = 1;
  uint64_t seed = 0;
  double progress_interval_s = 10;  // progress lines on stderr; 0 for none
  bool handle_signals = true;       // SIGINT/SIGTERM stop the run and keep what was measured
};

struct RunResult {
  std::vector<RequestRecord> warmup;
  std::vector<RequestRecord> measured;  // in the order they were issued
  SteadyTime start;  // when the measured phase began
  SteadyTime end;    // when its last request ended
  bool interrupted = false;
  int64_t connections_opened = 0;
};

Result<RunResult> run_benchmark(const RunSettings& settings, const Workload& workload);

}  // namespace kiln::bench_serve
