#include "serve_jobs.h"

#include <unistd.h>

#include "kiln/core/file.h"
#include "kiln/core/log.h"
#include "kiln/core/str.h"
#include "kiln/pool/registry.h"

namespace kiln::app {

namespace {

std::string node_name(const JobSettings& s) {
  if (!s.node_name.empty()) return s.node_name;
  char host[256] = {};
  return gethostname(host, sizeof(host) - 1) == 0 && host[0] != '\0' ? host : "kiln";
}

}  // namespace

Result<std::unique_ptr<JobsRuntime>> start_jobs(const JobSettings& s, metrics::Registry& registry, bool api_keys) {
  if (s.database == "off") {
    log_info("jobs: not recorded (--database off)");
    return std::unique_ptr<JobsRuntime>();
  }
  auto retention = pool::parse_duration(s.retention);
  if (!retention.is_ok()) return retention.status().with_context("--job-retention");
  const std::string node = node_name(s);
  const auto data_dir = user_data_dir();
  // Two connections: the recorder's writer and the query thread each own one.
  auto writer = jobs::open_job_store(s.database, data_dir);
  if (!writer.is_ok()) return writer.status().with_context(str_cat("--database ", jobs::redact_database(s.database)));
  auto reader = jobs::open_job_store(s.database, data_dir);
  if (!reader.is_ok()) return reader.status().with_context(str_cat("--database ", jobs::redact_database(s.database)));
  // This node's previous process cannot finish what it left open (it was killed or crashed).
  auto failed = (*writer)->fail_open_jobs(node, str_cat("kiln on node '", node, "' stopped before the request finished"),
                                          jobs::system_now_ms());
  if (!failed.is_ok()) return failed.status().with_context("failing the jobs of the previous run");
  if (*failed > 0) log_warn("jobs: ", *failed, " job(s) left open by the previous run of node '", node, "' marked failed");
  log_info("jobs: recorded in ", (*writer)->backend(), " (",
           s.database.empty() ? (data_dir / "jobs.db").string() : jobs::redact_database(s.database), "), node '", node,
           "', retention ", pool::format_duration(*retention), s.store_bodies ? ", bodies stored" : "");

  auto rt = std::make_unique<JobsRuntime>();
  jobs::RecorderOptions ro;
  ro.retention_ms = retention->count() < 0 ? 0 : retention->count();
  if (s.queue_size < 0) return invalid_argument("--job-queue-size must be 0 or more");
  ro.capacity = static_cast<size_t>(s.queue_size);
  rt->recorder = std::make_unique<jobs::JobRecorder>(std::move(*writer), &registry, ro);
  rt->queries = std::make_unique<jobs::JobQueries>(std::move(*reader));
  http::JobTrackerOptions to;
  to.node = node;
  to.store_bodies = s.store_bodies;
  to.api_keys = api_keys;
  rt->tracker = std::make_unique<http::JobTracker>(*rt->recorder, *rt->queries, to);
  return rt;
}

Result<std::unique_ptr<RateLimitRuntime>> start_rate_limits(const RateLimitArgs& a, const JobSettings& jobs,
                                                            http::RateLimitSettings settings, metrics::Registry& registry) {
  if (a.rpm < 0 || a.tpm < 0) return invalid_argument("--rate-limit-rpm and --rate-limit-tpm must be 0 (none) or more");
  settings.global = {a.rpm, a.tpm};
  if (!settings.any()) return std::unique_ptr<RateLimitRuntime>();
  auto interval = pool::parse_duration(a.sync_interval);
  if (!interval.is_ok() || interval->count() <= 0) return invalid_argument("--rate-limit-sync: expected a duration such as 250ms");
  auto rt = std::make_unique<RateLimitRuntime>();
  rt->limits = std::make_unique<http::RateLimits>(std::move(settings), registry);
  std::string where = "this node";
  if (jobs.database != "off" && jobs::is_postgres_database(jobs.database)) {
    auto conn = jobs::open_postgres(jobs.database);
    if (!conn.is_ok()) return conn.status().with_context("rate limits: --database");
    jobs::RateSyncOptions so;
    // One row per process: a restart begins new totals rather than continuing a dead run's.
    so.node = str_cat(node_name(jobs), ":", getpid(), ":", jobs::system_now_ms());
    so.interval = *interval;
    rt->sync = std::make_unique<jobs::RateLimitSync>(rt->limits->limiter(), std::move(*conn), so);
    where = str_cat("every node of the database (synced every ", pool::format_duration(*interval), ")");
  }
  log_info("rate limits: ", a.rpm > 0 ? str_cat(a.rpm, " requests/min") : "no request limit", ", ",
           a.tpm > 0 ? str_cat(a.tpm, " tokens/min") : "no token limit", " per client by default, held across ", where);
  return rt;
}

}  // namespace kiln::app
