// Where jobs live: an interface with two backends, SQLite (embedded, the default: one file in
// kiln's data directory, WAL mode) and PostgreSQL (several kiln nodes share one database).
// Both run the same SQL (sql_store.cpp) over a small connection interface (sql_conn.h), so the
// same tests hold for both. A store is one connection and is not thread-safe: the recorder's
// writer thread and the query thread each open their own.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "kiln/core/status.h"
#include "kiln/jobs/job.h"

namespace kiln::jobs {

class JobStore {
 public:
  virtual ~JobStore() = default;
  // "sqlite" or "postgresql".
  virtual std::string backend() const = 0;
  // Applies the schema migrations this database lacks, in order, each in a transaction (one node
  // at a time on PostgreSQL); returns the schema version.
  virtual Result<int> migrate() = 0;
  // Inserts or replaces these jobs (by id) in one transaction.
  virtual Status upsert(const std::vector<Job>& jobs) = 0;
  virtual Result<std::optional<Job>> get(const std::string& id) = 0;
  // NotFound when filter.after names no job.
  virtual Result<JobPage> list(const JobFilter& filter) = 0;
  // Jobs received in [since_ms, until_ms), of `model` only unless it is empty.
  virtual Result<JobStats> stats(int64_t since_ms, int64_t until_ms, const std::string& model = "") = 0;
  // Marks the jobs `node` left queued or running as failed (a process that died: kill -9, a
  // crash, power loss); returns how many.
  virtual Result<int64_t> fail_open_jobs(const std::string& node, const std::string& reason, int64_t now_ms) = 0;
  // Deletes at most `limit` finished jobs received before `before_ms`; returns how many.
  virtual Result<int64_t> prune(int64_t before_ms, int limit) = 0;
};

// The schema version this build writes (docs/jobs.md lists the migrations).
int current_schema_version();

// `database`: "" or "sqlite" (DATA_DIR/jobs.db), "sqlite:PATH", a file path ending in .db, or a
// PostgreSQL URI ("postgresql://..." / "postgres://...", any libpq connection string).
// Opens a connection and applies the migrations.
Result<std::unique_ptr<JobStore>> open_job_store(const std::string& database, const std::filesystem::path& data_dir);

// True when `database` names a PostgreSQL server (a URI or a libpq connection string).
bool is_postgres_database(const std::string& database);

// The database setting with any password replaced by "***", for logs.
std::string redact_database(const std::string& database);

}  // namespace kiln::jobs
