// `kiln serve`'s job recording (docs/jobs.md): opens the job store, fails the jobs a previous run
// of this node left open, and starts the recorder, the query thread and the HTTP tracker.
#pragma once

#include <memory>
#include <string>

#include "kiln/core/status.h"
#include "kiln/http/job_tracker.h"
#include "kiln/jobs/query_runner.h"
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

struct JobsRuntime {
  std::string node;  // --node-name, resolved
  std::unique_ptr<jobs::JobRecorder> recorder;
  std::unique_ptr<jobs::JobQueries> queries;
  std::unique_ptr<http::JobTracker> tracker;
};

// Null when --database off.
Result<std::unique_ptr<JobsRuntime>> start_jobs(const JobSettings& s, metrics::Registry& registry, bool api_keys);

}  // namespace kiln::app
