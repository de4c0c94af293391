// `kiln serve`'s job recording (docs/jobs.md): opens the job store, fails the jobs a previous run
// of this node left open, and starts the recorder, the query thread and the HTTP tracker.
#pragma once

#include <memory>
#include <string>

#include "kiln/core/status.h"
#include "kiln/http/job_tracker.h"
#include "kiln/http/rate_limit.h"
#include "kiln/jobs/query_runner.h"
#include "kiln/jobs/rate_sync.h"
#include "kiln/jobs/recorder.h"
#include "kiln/metrics/metrics.h"

namespace kiln::app {

struct JobSettings {
  std::string database;          // --database: "" (SQLite in the data directory), a path, a PostgreSQL URI, "off"
  std::string retention = "7d";  // --job-retention (-1: forever)
  std::string node_name;         // --node-name ("" : the host name)
  bool store_bodies = false;     // --store-bodies
  int64_t queue_size = 10000;    // --job-queue-size: records waiting to be written before new ones are dropped
};

// Rate limits (docs/jobs.md, "Rate limits").
struct RateLimitArgs {
  int64_t rpm = 0;                   // --rate-limit-rpm (0: none)
  int64_t tpm = 0;                   // --rate-limit-tpm (0: none)
  std::string sync_interval = "250ms";  // --rate-limit-sync: how often nodes on PostgreSQL exchange consumption
};

struct RateLimitRuntime {
  std::unique_ptr<http::RateLimits> limits;
  std::unique_ptr<jobs::RateLimitSync> sync;  // with a PostgreSQL --database only
};

struct JobsRuntime {
  std::unique_ptr<jobs::JobRecorder> recorder;
  std::unique_ptr<jobs::JobQueries> queries;
  std::unique_ptr<http::JobTracker> tracker;
};

// Null when --database off.
Result<std::unique_ptr<JobsRuntime>> start_jobs(const JobSettings& s, metrics::Registry& registry, bool api_keys);
// Null when no limit is set (globally or for a key). With a PostgreSQL --database the limits hold
// across the nodes that share it (start it after start_jobs, which migrates the database).
Result<std::unique_ptr<RateLimitRuntime>> start_rate_limits(const RateLimitArgs& a, const JobSettings& jobs,
                                                            http::RateLimitSettings settings, metrics::Registry& registry);

}  // namespace kiln::app
