// The job store over either database: one SQL text for both (the few dialect differences are
// marked), keyset pagination, percentiles by ORDER BY/OFFSET (no percentile function in SQLite,
// and no rows loaded into memory), and versioned migrations.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <iterator>
#include <cstdlib>
#include <vector>

#include "kiln/core/str.h"
#include "kiln/jobs/sql_conn.h"
#include "kiln/jobs/store.h"

namespace kiln::jobs {

namespace {

struct Migration {
  int version;
  const char* sql;
};

// Append-only: a released migration never changes; a new schema is a new entry (docs/jobs.md).
const Migration kMigrations[] = {
    {1,
     "CREATE TABLE jobs ("
     " id TEXT PRIMARY KEY,"
     " node TEXT NOT NULL,"
     " model TEXT NOT NULL DEFAULT '',"
     " endpoint TEXT NOT NULL DEFAULT '',"
     " client TEXT NOT NULL DEFAULT '',"
     " status TEXT NOT NULL,"
     " stream INTEGER NOT NULL DEFAULT 0,"
     " received_ms BIGINT NOT NULL,"
     " started_ms BIGINT NOT NULL DEFAULT 0,"
     " first_token_ms BIGINT NOT NULL DEFAULT 0,"
     " finished_ms BIGINT NOT NULL DEFAULT 0,"
     " prompt_tokens BIGINT NOT NULL DEFAULT 0,"
     " completion_tokens BIGINT NOT NULL DEFAULT 0,"
     " finish_reason TEXT NOT NULL DEFAULT '',"
     " http_status INTEGER NOT NULL DEFAULT 0,"
     " error_code TEXT NOT NULL DEFAULT '',"
     " error_message TEXT NOT NULL DEFAULT '',"
     " request_body TEXT,"
     " response_body TEXT);"
     "CREATE INDEX jobs_received ON jobs (received_ms, id);"
     "CREATE INDEX jobs_open ON jobs (node, status);"},
    // Rate-limit consumption per node run and client, for limits that hold across nodes
    // (rate_limiter.h): cumulative totals since the run began, rewritten every sync.
    {2,
     "CREATE TABLE kiln_rate_usage ("
     " node TEXT NOT NULL,"
     " client TEXT NOT NULL,"
     " requests BIGINT NOT NULL DEFAULT 0,"
     " tokens BIGINT NOT NULL DEFAULT 0,"
     " created_ms BIGINT NOT NULL,"
     " updated_ms BIGINT NOT NULL,"
     " PRIMARY KEY (node, client));"
     "CREATE INDEX kiln_rate_usage_updated ON kiln_rate_usage (updated_ms);"},
    // 3: the Files and Batch APIs and the webhook outbox (docs/batches.md).
    {3,
     "CREATE TABLE files ("
     " id TEXT PRIMARY KEY,"
     " purpose TEXT NOT NULL,"
     " filename TEXT NOT NULL,"
     " bytes BIGINT NOT NULL,"
     " lines BIGINT NOT NULL DEFAULT 0,"
     " created_ms BIGINT NOT NULL,"
     " client TEXT NOT NULL DEFAULT '');"
     "CREATE INDEX files_created ON files (created_ms, id);"
     "CREATE TABLE batches ("
     " id TEXT PRIMARY KEY,"
     " endpoint TEXT NOT NULL,"
     " input_file_id TEXT NOT NULL,"
     " completion_window TEXT NOT NULL,"
     " status TEXT NOT NULL,"
     " model TEXT NOT NULL DEFAULT '',"
     " metadata TEXT,"
     " errors TEXT,"
     " output_file_id TEXT,"
     " error_file_id TEXT,"
     " created_ms BIGINT NOT NULL,"
     " in_progress_ms BIGINT NOT NULL DEFAULT 0,"
     " finalizing_ms BIGINT NOT NULL DEFAULT 0,"
     " completed_ms BIGINT NOT NULL DEFAULT 0,"
     " failed_ms BIGINT NOT NULL DEFAULT 0,"
     " expired_ms BIGINT NOT NULL DEFAULT 0,"
     " cancelling_ms BIGINT NOT NULL DEFAULT 0,"
     " cancelled_ms BIGINT NOT NULL DEFAULT 0,"
     " expires_ms BIGINT NOT NULL,"
     " total BIGINT NOT NULL DEFAULT 0,"
     " completed BIGINT NOT NULL DEFAULT 0,"
     " failed BIGINT NOT NULL DEFAULT 0,"
     " lease_node TEXT NOT NULL DEFAULT '',"
     " lease_until_ms BIGINT NOT NULL DEFAULT 0,"
     " client TEXT NOT NULL DEFAULT '');"
     "CREATE INDEX batches_created ON batches (created_ms, id);"
     "CREATE INDEX batches_status ON batches (status);"
     "CREATE TABLE batch_lines ("
     " batch_id TEXT NOT NULL,"
     " line BIGINT NOT NULL,"
     " custom_id TEXT NOT NULL,"
     " body_offset BIGINT NOT NULL,"
     " body_length BIGINT NOT NULL,"
     " status TEXT NOT NULL DEFAULT 'pending',"
     " node TEXT NOT NULL DEFAULT '',"
     " token TEXT NOT NULL DEFAULT '',"
     " lease_until_ms BIGINT NOT NULL DEFAULT 0,"
     " attempts INTEGER NOT NULL DEFAULT 0,"
     " is_error INTEGER NOT NULL DEFAULT 0,"
     " result TEXT,"
     " PRIMARY KEY (batch_id, line));"
     "CREATE INDEX batch_lines_status ON batch_lines (status, batch_id);"
     "CREATE TABLE webhook_deliveries ("
     " id TEXT PRIMARY KEY,"
     " endpoint TEXT NOT NULL,"
     " event_type TEXT NOT NULL,"
     " subject_id TEXT NOT NULL,"
     " payload TEXT NOT NULL,"
     " created_ms BIGINT NOT NULL,"
     " status TEXT NOT NULL DEFAULT 'pending',"
     " attempts INTEGER NOT NULL DEFAULT 0,"
     " next_attempt_ms BIGINT NOT NULL,"
     " last_attempt_ms BIGINT NOT NULL DEFAULT 0,"
     " last_status INTEGER NOT NULL DEFAULT 0,"
     " last_error TEXT NOT NULL DEFAULT '',"
     " lease_node TEXT NOT NULL DEFAULT '',"
     " lease_until_ms BIGINT NOT NULL DEFAULT 0);"
     "CREATE INDEX webhook_due ON webhook_deliveries (status, next_attempt_ms);"
     "CREATE INDEX webhook_subject ON webhook_deliveries (subject_id, created_ms);"},
    // 4: stored responses of the Responses API, background ones run under leases like batch
    // lines (docs/responses-api.md).
    {4,
     "CREATE TABLE responses ("
     " id TEXT PRIMARY KEY,"
     " client TEXT NOT NULL DEFAULT '',"
     " model TEXT NOT NULL DEFAULT '',"
     " status TEXT NOT NULL,"
     " background INTEGER NOT NULL DEFAULT 0,"
     " created_ms BIGINT NOT NULL,"
     " updated_ms BIGINT NOT NULL,"
     " request TEXT NOT NULL,"
     " input_items TEXT NOT NULL,"
     " response TEXT NOT NULL,"
     " node TEXT NOT NULL DEFAULT '',"
     " token TEXT NOT NULL DEFAULT '',"
     " lease_until_ms BIGINT NOT NULL DEFAULT 0);"
     "CREATE INDEX responses_created ON responses (created_ms, id);"
     "CREATE INDEX responses_runnable ON responses (status, background, created_ms);"},
    // 5: file expiry (expires_after on uploads, output_expires_after on batches; 0: never).
    {5,
     "ALTER TABLE files ADD COLUMN expires_ms BIGINT NOT NULL DEFAULT 0;"
     "CREATE INDEX files_expires ON files (expires_ms);"
     "ALTER TABLE batches ADD COLUMN output_expires_s BIGINT NOT NULL DEFAULT 0;"},
    // 6: retention of ended batches and finished webhook deliveries (docs/batches.md,
    // "Retention"): when a batch ended, indexed, and the deliveries' end indexed.
    {6,
     "ALTER TABLE batches ADD COLUMN ended_ms BIGINT NOT NULL DEFAULT 0;"
     "UPDATE batches SET ended_ms = CASE status WHEN 'completed' THEN completed_ms WHEN 'failed' THEN failed_ms "
     "WHEN 'expired' THEN expired_ms WHEN 'cancelled' THEN cancelled_ms ELSE 0 END;"
     "CREATE INDEX batches_ended ON batches (ended_ms);"
     "CREATE INDEX webhook_ended ON webhook_deliveries (status, last_attempt_ms);"},
};

constexpr const char* kColumns =
    "id, node, model, endpoint, client, status, stream, received_ms, started_ms, first_token_ms, finished_ms, "
    "prompt_tokens, completion_tokens, finish_reason, http_status, error_code, error_message, request_body, "
    "response_body";
constexpr const char* kTerminal = "('completed', 'failed', 'cancelled')";

int64_t to_i64(const std::optional<std::string>& v) { return v ? std::strtoll(v->c_str(), nullptr, 10) : 0; }
std::string to_str(const std::optional<std::string>& v) { return v.value_or(""); }

Job job_from_row(const SqlRow& r) {
  Job j;
  j.id = to_str(r[0]);
  j.node = to_str(r[1]);
  j.model = to_str(r[2]);
  j.endpoint = to_str(r[3]);
  j.client = to_str(r[4]);
  j.status = parse_job_status(to_str(r[5])).value_or(JobStatus::kFailed);
  j.stream = to_i64(r[6]) != 0;
  j.received_ms = to_i64(r[7]);
  j.started_ms = to_i64(r[8]);
  j.first_token_ms = to_i64(r[9]);
  j.finished_ms = to_i64(r[10]);
  j.prompt_tokens = to_i64(r[11]);
  j.completion_tokens = to_i64(r[12]);
  j.finish_reason = to_str(r[13]);
  j.http_status = static_cast<int>(to_i64(r[14]));
  j.error_code = to_str(r[15]);
  j.error_message = to_str(r[16]);
  j.request_body = to_str(r[17]);
  j.response_body = to_str(r[18]);
  return j;
}

SqlValue text_or_null(const std::string& s) { return s.empty() ? SqlValue{} : SqlValue{s}; }

Result<int> migrate_locked(SqlConn& c) {
  if (c.postgres()) KILN_RETURN_IF_ERROR(c.query("SELECT pg_advisory_xact_lock(7061696)").status());
  KILN_RETURN_IF_ERROR(c.exec(
      "CREATE TABLE IF NOT EXISTS kiln_schema_migrations (version INTEGER PRIMARY KEY, applied_ms BIGINT NOT NULL)"));
  auto rows = c.query("SELECT version FROM kiln_schema_migrations");
  if (!rows.is_ok()) return rows.status();
  // Versions are applied by presence, not by "above the highest": a version that two branches
  // developed in parallel may land after a higher one (docs/batches.md, "Migrations").
  std::vector<int> applied;
  for (const auto& r : *rows) applied.push_back(static_cast<int>(to_i64(r[0])));
  int version = applied.empty() ? 0 : *std::max_element(applied.begin(), applied.end());
  if (version > current_schema_version()) {
    return failed_precondition(str_cat("the job database has schema version ", version,
                                       ", newer than this kiln's (", current_schema_version(),
                                       "): upgrade kiln or use another database"));
  }
  for (const Migration& m : kMigrations) {
    if (std::find(applied.begin(), applied.end(), m.version) != applied.end()) continue;
    KILN_RETURN_IF_ERROR(c.exec(m.sql));
    const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch()).count();
    KILN_RETURN_IF_ERROR(c.query("INSERT INTO kiln_schema_migrations (version, applied_ms) VALUES ($1, $2)",
                                   {int64_t{m.version}, now}).status());
    version = std::max(version, m.version);
  }
  return version;
}


Result<int> migrate_conn(SqlConn& c) {
  // SQLite: BEGIN IMMEDIATE takes the write lock at once. PostgreSQL: DDL is transactional and
  // an advisory lock keeps two nodes that start together from migrating at the same time.
  KILN_RETURN_IF_ERROR(c.exec(c.postgres() ? "BEGIN" : "BEGIN IMMEDIATE"));
  Result<int> v = migrate_locked(c);
  if (!v.is_ok()) {
    (void)c.exec("ROLLBACK");
    return v;
  }
  Status committed = c.exec("COMMIT");
  if (!committed.is_ok()) return committed;
  return v;
}

class SqlJobStore final : public JobStore {
 public:
  explicit SqlJobStore(std::unique_ptr<SqlConn> c) : c_(std::move(c)) {}

  std::string backend() const override { return c_->postgres() ? "postgresql" : "sqlite"; }

  Result<int> migrate() override { return migrate_conn(*c_); }

  Status upsert(const std::vector<Job>& jobs) override {
    if (jobs.empty()) return Status();
    KILN_RETURN_IF_ERROR(c_->exec("BEGIN"));
    // A snapshot never takes a finished job back to queued or running (they may be written out of
    // order when a batch is retried).
    static const std::string sql = str_cat(
        "INSERT INTO jobs (", kColumns, ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, "
        "$16, $17, $18, $19) ON CONFLICT (id) DO UPDATE SET node = excluded.node, model = excluded.model, "
        "endpoint = excluded.endpoint, client = excluded.client, status = excluded.status, stream = excluded.stream, "
        "received_ms = excluded.received_ms, started_ms = excluded.started_ms, first_token_ms = excluded.first_token_ms, "
        "finished_ms = excluded.finished_ms, prompt_tokens = excluded.prompt_tokens, "
        "completion_tokens = excluded.completion_tokens, finish_reason = excluded.finish_reason, "
        "http_status = excluded.http_status, error_code = excluded.error_code, error_message = excluded.error_message, "
        "request_body = excluded.request_body, response_body = excluded.response_body "
        "WHERE jobs.status NOT IN ", kTerminal, " OR excluded.status IN ", kTerminal);
    for (const Job& j : jobs) {
      auto r = c_->query(sql, {j.id, j.node, j.model, j.endpoint, j.client, std::string(job_status_name(j.status)),
                               int64_t{j.stream ? 1 : 0}, j.received_ms, j.started_ms, j.first_token_ms,
                               j.finished_ms, j.prompt_tokens, j.completion_tokens, j.finish_reason,
                               int64_t{j.http_status}, j.error_code, j.error_message, text_or_null(j.request_body),
                               text_or_null(j.response_body)});
      if (!r.is_ok()) {
        (void)c_->exec("ROLLBACK");
        return r.status();
      }
    }
    Status committed = c_->exec("COMMIT");
    if (!committed.is_ok()) (void)c_->exec("ROLLBACK");
    return committed;
  }

  Result<std::optional<Job>> get(const std::string& id) override {
    auto rows = c_->query(str_cat("SELECT ", kColumns, " FROM jobs WHERE id = $1"), {id});
    if (!rows.is_ok()) return rows.status();
    if (rows->empty()) return std::optional<Job>();
    return std::optional<Job>(job_from_row((*rows)[0]));
  }

  Result<JobPage> list(const JobFilter& f) override {
    std::string where = "1 = 1";
    std::vector<SqlValue> params;
    auto add = [&](const std::string& cond, SqlValue v) {
      params.push_back(std::move(v));
      where += str_cat(" AND ", cond, " $", params.size());
    };
    if (f.status) add("status =", std::string(job_status_name(*f.status)));
    if (!f.model.empty()) add("model =", f.model);
    if (!f.client.empty()) add("client =", f.client);
    if (!f.endpoint.empty()) add("endpoint =", f.endpoint);
    if (f.since_ms > 0) add("received_ms >=", f.since_ms);
    if (f.until_ms > 0) add("received_ms <", f.until_ms);
    if (!f.after.empty()) {
      auto rows = c_->query("SELECT received_ms FROM jobs WHERE id = $1", {f.after});
      if (!rows.is_ok()) return rows.status();
      if (rows->empty()) return not_found(str_cat("no job '", f.after, "' (the 'after' cursor)"));
      // Built in place: gcc 13 misreads a pushed temporary variant as maybe-uninitialized.
      params.emplace_back(std::in_place_type<int64_t>, to_i64((*rows)[0][0]));
      params.emplace_back(std::in_place_type<std::string>, f.after);
      where += str_cat(" AND (received_ms < $", params.size() - 1, " OR (received_ms = $", params.size() - 1,
                       " AND id < $", params.size(), "))");
    }
    const int limit = std::clamp(f.limit, 1, kMaxListLimit);
    params.push_back(int64_t{limit + 1});
    auto rows = c_->query(str_cat("SELECT ", kColumns, " FROM jobs WHERE ", where,
                                  " ORDER BY received_ms DESC, id DESC LIMIT $", params.size()),
                          params);
    if (!rows.is_ok()) return rows.status();
    JobPage page;
    for (const auto& r : *rows) {
      if (static_cast<int>(page.jobs.size()) == limit) {
        page.has_more = true;
        break;
      }
      page.jobs.push_back(job_from_row(r));
    }
    return page;
  }

  Result<JobStats> stats(int64_t since_ms, int64_t until_ms, const std::string& model) override {
    JobStats s;
    s.since_ms = since_ms;
    s.until_ms = until_ms;
    auto rows = c_->query(
        "SELECT status, COUNT(*), COALESCE(SUM(prompt_tokens), 0), COALESCE(SUM(completion_tokens), 0), "
        "COALESCE(SUM(CASE WHEN first_token_ms > 0 AND finished_ms > first_token_ms THEN finished_ms - first_token_ms "
        "ELSE 0 END), 0) FROM jobs "
        "WHERE received_ms >= $1 AND received_ms < $2 AND ($3 = '' OR model = $3) GROUP BY status",
        {since_ms, until_ms, model});
    if (!rows.is_ok()) return rows.status();
    for (const auto& r : *rows) {
      auto st = parse_job_status(to_str(r[0]));
      if (!st) continue;
      const int64_t n = to_i64(r[1]);
      s.by_status[static_cast<int>(*st)] += n;
      s.total += n;
      s.prompt_tokens += to_i64(r[2]);
      s.completion_tokens += to_i64(r[3]);
      s.generation_ms += to_i64(r[4]);
    }
    KILN_ASSIGN_OR_RETURN(s.duration_ms, percentiles("finished_ms", since_ms, until_ms, model));
    KILN_ASSIGN_OR_RETURN(s.ttft_ms, percentiles("first_token_ms", since_ms, until_ms, model));
    KILN_ASSIGN_OR_RETURN(s.queue_wait_ms, percentiles("started_ms", since_ms, until_ms, model));
    return s;
  }

  Result<int64_t> fail_open_jobs(const std::string& node, const std::string& reason, int64_t now_ms) override {
    auto r = c_->query(
        "UPDATE jobs SET status = 'failed', finished_ms = $3, http_status = 500, error_code = 'server_restarted', "
        "error_message = $2 WHERE node = $1 AND status IN ('queued', 'running')",
        {node, reason, now_ms});
    if (!r.is_ok()) return r.status();
    return c_->changes();
  }

  Result<int64_t> prune(int64_t before_ms, int limit) override {
    auto r = c_->query(str_cat("DELETE FROM jobs WHERE id IN (SELECT id FROM jobs WHERE received_ms < $1 AND status IN ",
                               kTerminal, " ORDER BY received_ms LIMIT $2)"),
                       {before_ms, int64_t{limit}});
    if (!r.is_ok()) return r.status();
    const int64_t jobs = c_->changes();
    // Stored responses share the jobs' retention (docs/responses-api.md).
    r = c_->query("DELETE FROM responses WHERE id IN (SELECT id FROM responses WHERE created_ms < $1 AND status NOT IN "
                  "('queued', 'in_progress') ORDER BY created_ms LIMIT $2)",
                  {before_ms, int64_t{limit}});
    if (!r.is_ok()) return r.status();
    return jobs + c_->changes();
  }

 private:
  // Nearest-rank percentiles of (column - received_ms) over the window's jobs that reached it.
  Result<Percentiles> percentiles(const char* column, int64_t since_ms, int64_t until_ms, const std::string& model) {
    const std::string where = str_cat(" FROM jobs WHERE received_ms >= $1 AND received_ms < $2 AND ($3 = '' OR model = $3) AND ",
                                      column, " > 0");
    auto n = c_->query(str_cat("SELECT COUNT(*)", where), {since_ms, until_ms, model});
    if (!n.is_ok()) return n.status();
    Percentiles p;
    p.count = to_i64((*n)[0][0]);
    if (p.count == 0) return p;
    auto at = [&](double q) -> Result<double> {
      const int64_t rank = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(q * static_cast<double>(p.count))));
      auto r = c_->query(str_cat("SELECT ", column, " - received_ms AS v", where, " ORDER BY v LIMIT 1 OFFSET $4"),
                         {since_ms, until_ms, model, rank - 1});
      if (!r.is_ok()) return r.status();
      return r->empty() ? 0.0 : static_cast<double>(to_i64((*r)[0][0]));
    };
    KILN_ASSIGN_OR_RETURN(p.p50, at(0.50));
    KILN_ASSIGN_OR_RETURN(p.p95, at(0.95));
    KILN_ASSIGN_OR_RETURN(p.p99, at(0.99));
    return p;
  }

  std::unique_ptr<SqlConn> c_;
};

bool is_postgres_url(const std::string& d) {
  return starts_with(d, "postgresql://") || starts_with(d, "postgres://") || d.find('=') != std::string::npos;
}

}  // namespace

bool is_postgres_database(const std::string& database) { return is_postgres_url(database); }

int current_schema_version() { return kMigrations[std::size(kMigrations) - 1].version; }

Result<std::unique_ptr<SqlConn>> open_sql(const std::string& database, const std::filesystem::path& data_dir) {
  std::unique_ptr<SqlConn> conn;
  if (is_postgres_url(database)) {
    KILN_ASSIGN_OR_RETURN(conn, open_postgres(database));
  } else {
    std::filesystem::path path = data_dir / "jobs.db";
    if (starts_with(database, "sqlite:")) path = database.substr(7);
    else if (!database.empty() && database != "sqlite") path = database;
    std::error_code ec;
    if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path(), ec);
    KILN_ASSIGN_OR_RETURN(conn, open_sqlite(path.string()));
  }
  auto v = migrate_conn(*conn);
  if (!v.is_ok()) return v.status();
  return conn;
}

Result<std::unique_ptr<JobStore>> open_job_store(const std::string& database, const std::filesystem::path& data_dir) {
  KILN_ASSIGN_OR_RETURN(auto conn, open_sql(database, data_dir));
  return std::unique_ptr<JobStore>(std::make_unique<SqlJobStore>(std::move(conn)));
}

std::string redact_database(const std::string& database) {
  std::string d = database;
  // URI: scheme://user:password@host
  const size_t scheme = d.find("://");
  if (scheme != std::string::npos) {
    const size_t at = d.find('@', scheme + 3);
    const size_t colon = d.find(':', scheme + 3);
    if (at != std::string::npos && colon != std::string::npos && colon < at) d.replace(colon + 1, at - colon - 1, "***");
  }
  // key=value: password=... (in the URI's query too)
  for (size_t p = d.find("password="); p != std::string::npos; p = d.find("password=", p + 1)) {
    const size_t start = p + 9;
    size_t end = d.find_first_of(" &", start);
    if (end == std::string::npos) end = d.size();
    d.replace(start, end - start, "***");
  }
  return d;
}

}  // namespace kiln::jobs
