// The Files/Batch tables over either database (sql_conn.h). Claims are single UPDATE ... WHERE
// (key) IN (SELECT ... LIMIT n) statements, atomic on both; PostgreSQL adds FOR UPDATE SKIP
// LOCKED so that nodes claiming at once take different rows instead of waiting on each other.
#include "kiln/jobs/batch_store.h"

#include <algorithm>
#include <cstdlib>
#include <random>

#include "kiln/core/str.h"

namespace kiln::jobs {

namespace {

int64_t i64(const std::optional<std::string>& v) { return v ? std::strtoll(v->c_str(), nullptr, 10) : 0; }
std::string str(const std::optional<std::string>& v) { return v.value_or(""); }
SqlValue text_or_null(const std::string& s) { return s.empty() ? SqlValue{} : SqlValue{s}; }

constexpr const char* kFileCols = "id, purpose, filename, bytes, lines, created_ms, client, expires_ms";
constexpr const char* kBatchCols =
    "id, endpoint, input_file_id, completion_window, status, model, client, metadata, errors, output_file_id, "
    "error_file_id, created_ms, in_progress_ms, finalizing_ms, completed_ms, failed_ms, expired_ms, cancelling_ms, "
    "cancelled_ms, expires_ms, total, completed, failed, output_expires_s";
constexpr const char* kDeliveryCols =
    "id, endpoint, event_type, subject_id, payload, status, last_error, created_ms, attempts, next_attempt_ms, "
    "last_attempt_ms, last_status";

FileRecord file_from(const SqlRow& r) {
  return FileRecord{str(r[0]), str(r[1]), str(r[2]), str(r[6]), i64(r[3]), i64(r[4]), i64(r[5]), i64(r[7])};
}

BatchRecord batch_from(const SqlRow& r) {
  BatchRecord b;
  b.id = str(r[0]);
  b.endpoint = str(r[1]);
  b.input_file_id = str(r[2]);
  b.completion_window = str(r[3]);
  b.status = str(r[4]);
  b.model = str(r[5]);
  b.client = str(r[6]);
  b.metadata = str(r[7]);
  b.errors = str(r[8]);
  b.output_file_id = str(r[9]);
  b.error_file_id = str(r[10]);
  int64_t* ts[] = {&b.created_ms,   &b.in_progress_ms, &b.finalizing_ms, &b.completed_ms, &b.failed_ms, &b.expired_ms,
                   &b.cancelling_ms, &b.cancelled_ms,  &b.expires_ms,    &b.total,        &b.completed, &b.failed,
                   &b.output_expires_s};
  for (size_t i = 0; i < std::size(ts); ++i) *ts[i] = i64(r[11 + i]);
  return b;
}

WebhookDelivery delivery_from(const SqlRow& r) {
  WebhookDelivery d;
  d.id = str(r[0]);
  d.endpoint = str(r[1]);
  d.event_type = str(r[2]);
  d.subject_id = str(r[3]);
  d.payload = str(r[4]);
  d.status = str(r[5]);
  d.last_error = str(r[6]);
  d.created_ms = i64(r[7]);
  d.attempts = i64(r[8]);
  d.next_attempt_ms = i64(r[9]);
  d.last_attempt_ms = i64(r[10]);
  d.last_status = i64(r[11]);
  return d;
}

}  // namespace

std::string random_token() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  static const char* kHex = "0123456789abcdef";
  std::string t;
  for (int i = 0; i < 2; ++i) {
    uint64_t v = rng();
    for (int j = 0; j < 16; ++j, v >>= 4) t += kHex[v & 15];
  }
  return t;
}

Status BatchStore::in_transaction(const std::function<Status()>& body) {
  KILN_RETURN_IF_ERROR(c_->exec(c_->postgres() ? "BEGIN" : "BEGIN IMMEDIATE"));
  Status s = body();
  if (s.is_ok()) s = c_->exec("COMMIT");
  if (!s.is_ok()) (void)c_->exec("ROLLBACK");
  return s;
}

Status BatchStore::insert_file(const FileRecord& f) {
  return c_->query(str_cat("INSERT INTO files (", kFileCols, ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"),
                   {f.id, f.purpose, f.filename, f.bytes, f.lines, f.created_ms, f.client, f.expires_ms})
      .status();
}

Result<std::optional<FileRecord>> BatchStore::get_file(const std::string& id) {
  KILN_ASSIGN_OR_RETURN(auto rows, c_->query(str_cat("SELECT ", kFileCols, " FROM files WHERE id = $1"), {id}));
  if (rows.empty()) return std::optional<FileRecord>();
  return std::optional<FileRecord>(file_from(rows[0]));
}

namespace {
// Newest-first keyset pagination on (created_ms, id) for `table`.
Result<std::vector<SqlRow>> page_rows(SqlConn& c, const char* table, const char* cols, const Page& page,
                                      std::string where, std::vector<SqlValue> params) {
  if (!page.after.empty()) {
    KILN_ASSIGN_OR_RETURN(auto at, c.query(str_cat("SELECT created_ms FROM ", table, " WHERE id = $1"), {page.after}));
    if (at.empty()) return not_found(str_cat("no object '", page.after, "' (the 'after' cursor)"));
    params.push_back(i64(at[0][0]));
    params.push_back(page.after);
    const size_t n = params.size();
    where += str_cat(" AND (created_ms < $", n - 1, " OR (created_ms = $", n - 1, " AND id < $", n, "))");
  }
  params.push_back(int64_t{page.limit + 1});
  return c.query(str_cat("SELECT ", cols, " FROM ", table, " WHERE ", where, " ORDER BY created_ms DESC, id DESC LIMIT $",
                         params.size()),
                 params);
}
}  // namespace

Result<std::pair<std::vector<FileRecord>, bool>> BatchStore::list_files(const Page& page, const std::string& purpose) {
  std::vector<SqlValue> params;
  std::string where = "1 = 1";
  if (!purpose.empty()) {
    params.push_back(purpose);
    where += " AND purpose = $1";
  }
  KILN_ASSIGN_OR_RETURN(auto rows, page_rows(*c_, "files", kFileCols, page, where, params));
  std::pair<std::vector<FileRecord>, bool> out{{}, false};
  for (const auto& r : rows) {
    if (static_cast<int>(out.first.size()) == page.limit) {
      out.second = true;
      break;
    }
    out.first.push_back(file_from(r));
  }
  return out;
}

Result<bool> BatchStore::delete_file(const std::string& id) {
  KILN_RETURN_IF_ERROR(c_->query("DELETE FROM files WHERE id = $1", {id}).status());
  return c_->changes() > 0;
}

Result<std::vector<std::string>> BatchStore::prune_expired_files(int64_t now_ms, int limit) {
  KILN_ASSIGN_OR_RETURN(
      auto rows,
      c_->query(str_cat("DELETE FROM files WHERE id IN (SELECT id FROM files WHERE expires_ms > 0 AND expires_ms <= $1 "
                        "AND NOT EXISTS (SELECT 1 FROM batches b WHERE b.input_file_id = files.id AND b.status IN "
                        "('validating', 'in_progress', 'finalizing', 'cancelling')) ORDER BY expires_ms LIMIT $2",
                        c_->postgres() ? " FOR UPDATE SKIP LOCKED" : "", ") RETURNING id"),
                {now_ms, int64_t{limit}}));
  std::vector<std::string> ids;
  for (const auto& r : rows) ids.push_back(str(r[0]));
  return ids;
}

Status BatchStore::insert_batch(const BatchRecord& b) {
  return c_->query(
             "INSERT INTO batches (id, endpoint, input_file_id, completion_window, status, model, client, metadata, "
             "created_ms, expires_ms, output_expires_s) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
             {b.id, b.endpoint, b.input_file_id, b.completion_window, b.status, b.model, b.client,
              text_or_null(b.metadata), b.created_ms, b.expires_ms, b.output_expires_s})
      .status();
}

Result<std::optional<BatchRecord>> BatchStore::get_batch(const std::string& id) {
  KILN_ASSIGN_OR_RETURN(auto rows, c_->query(str_cat("SELECT ", kBatchCols, " FROM batches WHERE id = $1"), {id}));
  if (rows.empty()) return std::optional<BatchRecord>();
  return std::optional<BatchRecord>(batch_from(rows[0]));
}

Result<std::pair<std::vector<BatchRecord>, bool>> BatchStore::list_batches(const Page& page) {
  KILN_ASSIGN_OR_RETURN(auto rows, page_rows(*c_, "batches", kBatchCols, page, "1 = 1", {}));
  std::pair<std::vector<BatchRecord>, bool> out{{}, false};
  for (const auto& r : rows) {
    if (static_cast<int>(out.first.size()) == page.limit) {
      out.second = true;
      break;
    }
    out.first.push_back(batch_from(r));
  }
  return out;
}

Result<LineCounts> BatchStore::line_counts(const std::string& batch_id, int64_t now_ms) {
  KILN_ASSIGN_OR_RETURN(
      auto rows,
      c_->query("SELECT COUNT(*), COALESCE(SUM(CASE WHEN status = 'done' AND is_error = 0 THEN 1 ELSE 0 END), 0), "
                "COALESCE(SUM(CASE WHEN status = 'done' AND is_error = 1 THEN 1 ELSE 0 END), 0), "
                "COALESCE(SUM(CASE WHEN status = 'running' AND lease_until_ms >= $2 THEN 1 ELSE 0 END), 0) "
                "FROM batch_lines WHERE batch_id = $1",
                {batch_id, now_ms}));
  LineCounts c;
  c.total = i64(rows[0][0]);
  c.completed = i64(rows[0][1]);
  c.failed = i64(rows[0][2]);
  c.running = i64(rows[0][3]);
  c.pending = c.total - c.completed - c.failed - c.running;
  return c;
}

Result<std::optional<BatchRecord>> BatchStore::request_cancel(const std::string& id, int64_t now_ms) {
  KILN_RETURN_IF_ERROR(c_->query("UPDATE batches SET status = 'cancelling', cancelling_ms = $2 WHERE id = $1 AND "
                                 "status IN ('validating', 'in_progress')",
                                 {id, now_ms})
                           .status());
  return get_batch(id);
}

Result<std::optional<BatchRecord>> BatchStore::lease_batch(const std::string& status, const std::string& extra,
                                                           const std::string& node, int64_t now_ms, int64_t until_ms) {
  const std::string sql = str_cat(
      "UPDATE batches SET lease_node = $1, lease_until_ms = $2 WHERE id IN (SELECT id FROM batches WHERE status = $3 "
      "AND lease_until_ms < $4", extra.empty() ? "" : str_cat(" AND (", extra, ")"), " ORDER BY created_ms LIMIT 1",
      c_->postgres() ? " FOR UPDATE SKIP LOCKED" : "", ") RETURNING ", kBatchCols);
  KILN_ASSIGN_OR_RETURN(auto rows, c_->query(sql, {node, until_ms, status, now_ms}));
  if (rows.empty()) return std::optional<BatchRecord>();
  return std::optional<BatchRecord>(batch_from(rows[0]));
}

Result<std::optional<BatchRecord>> BatchStore::lease_expired_batch(const std::string& node, int64_t now_ms,
                                                                   int64_t until_ms) {
  return lease_batch("in_progress", str_cat("expires_ms <= ", now_ms), node, now_ms, until_ms);
}

Status BatchStore::release_batch(const std::string& id, const std::string& node) {
  return c_->query("UPDATE batches SET lease_until_ms = 0 WHERE id = $1 AND lease_node = $2", {id, node}).status();
}

Status BatchStore::finish_validation(const std::string& batch_id, const std::string& model,
                                     const std::vector<BatchLine>& lines, int64_t now_ms) {
  return in_transaction([&]() -> Status {
    KILN_RETURN_IF_ERROR(c_->query("DELETE FROM batch_lines WHERE batch_id = $1", {batch_id}).status());
    for (const BatchLine& l : lines) {
      KILN_RETURN_IF_ERROR(c_->query("INSERT INTO batch_lines (batch_id, line, custom_id, body_offset, body_length) "
                                     "VALUES ($1, $2, $3, $4, $5)",
                                     {batch_id, l.line, l.custom_id, l.body_offset, l.body_length})
                               .status());
    }
    // A batch cancelled while it was validated goes on to be cancelled (with no line run).
    return c_->query("UPDATE batches SET status = CASE WHEN status = 'validating' THEN 'in_progress' ELSE status END, "
                     "in_progress_ms = $2, total = $3, model = $4, lease_until_ms = 0 WHERE id = $1",
                     {batch_id, now_ms, static_cast<int64_t>(lines.size()), model})
        .status();
  });
}

Status BatchStore::mark_finalizing(const std::string& batch_id, int64_t now_ms) {
  return c_->query("UPDATE batches SET status = 'finalizing', finalizing_ms = $2 WHERE id = $1 AND status = 'in_progress'",
                   {batch_id, now_ms})
      .status();
}

Result<std::vector<ClaimedLine>> BatchStore::claim_lines(const std::string& node, const std::vector<std::string>& models,
                                                         int limit, int64_t now_ms, int64_t until_ms) {
  return claim(node, models, limit, now_ms, until_ms, -1);
}

Result<std::vector<ClaimedLine>> BatchStore::claim_waiting_lines(const std::string& node,
                                                                 const std::vector<std::string>& models, int limit,
                                                                 int64_t now_ms, int64_t until_ms,
                                                                 int64_t waiting_since_ms) {
  return claim(node, models, limit, now_ms, until_ms, std::max<int64_t>(waiting_since_ms, 0));
}

Result<std::vector<ClaimedLine>> BatchStore::claim(const std::string& node, const std::vector<std::string>& models,
                                                   int limit, int64_t now_ms, int64_t until_ms,
                                                   int64_t waiting_since_ms) {
  std::vector<ClaimedLine> out;
  if (limit <= 0 || models.empty()) return out;
  const std::string token = random_token();
  std::vector<SqlValue> params = {node, token, until_ms, now_ms, int64_t{limit}};
  std::string in;
  for (const auto& m : models) {
    params.push_back(m);
    in += str_cat(in.empty() ? "" : ", ", "$", params.size());
  }
  // A line waits since its lease expired (lease_until_ms > 0) or else since its batch went
  // in_progress (never claimed, or handed back: release_line clears the lease).
  std::string waiting;
  if (waiting_since_ms >= 0) {
    params.push_back(waiting_since_ms);
    const std::string p = str_cat("$", params.size());
    waiting = str_cat(" AND ((lease_until_ms > 0 AND lease_until_ms <= ", p, ") OR (lease_until_ms = 0 AND batch_id IN "
                      "(SELECT id FROM batches WHERE in_progress_ms <= ", p, ")))");
  }
  // One token per claim statement, made unique per line by appending the line number.
  const std::string sql = str_cat(
      "UPDATE batch_lines SET status = 'running', node = $1, token = CAST($2 AS TEXT) || '-' || CAST(line AS TEXT), "
      "lease_until_ms = $3, attempts = attempts + 1 WHERE (batch_id, line) IN (SELECT batch_id, line FROM batch_lines "
      "WHERE (status = 'pending' OR (status = 'running' AND lease_until_ms < $4)) AND batch_id IN (SELECT id FROM "
      "batches WHERE status = 'in_progress' AND model IN (", in, "))", waiting, " ORDER BY batch_id, line LIMIT $5",
      c_->postgres() ? " FOR UPDATE SKIP LOCKED" : "", ") RETURNING batch_id, line, custom_id, body_offset, body_length, token");
  KILN_ASSIGN_OR_RETURN(auto rows, c_->query(sql, params));
  for (const auto& r : rows) out.push_back(ClaimedLine{str(r[0]), str(r[2]), str(r[5]), i64(r[1]), i64(r[3]), i64(r[4])});
  return out;
}

Status BatchStore::renew_leases(const std::vector<std::string>& tokens, int64_t until_ms) {
  for (const auto& t : tokens) {
    KILN_RETURN_IF_ERROR(
        c_->query("UPDATE batch_lines SET lease_until_ms = $2 WHERE token = $1 AND status = 'running'", {t, until_ms})
            .status());
  }
  return Status();
}

Result<bool> BatchStore::commit_line(const std::string& batch_id, int64_t line, const std::string& token, bool is_error,
                                     const std::string& result) {
  KILN_RETURN_IF_ERROR(c_->query("UPDATE batch_lines SET status = 'done', is_error = $4, result = $5 WHERE batch_id = $1 "
                                 "AND line = $2 AND token = $3 AND status = 'running'",
                                 {batch_id, line, token, int64_t{is_error ? 1 : 0}, result})
                           .status());
  return c_->changes() > 0;
}

Status BatchStore::release_line(const std::string& batch_id, int64_t line, const std::string& token) {
  return c_->query("UPDATE batch_lines SET status = 'pending', lease_until_ms = 0 WHERE batch_id = $1 AND line = $2 "
                   "AND token = $3 AND status = 'running'",
                   {batch_id, line, token})
      .status();
}

Result<int64_t> BatchStore::release_node_lines(const std::string& node) {
  KILN_RETURN_IF_ERROR(
      c_->query("UPDATE batch_lines SET status = 'pending', lease_until_ms = 0 WHERE node = $1 AND status = 'running'",
                {node})
          .status());
  const int64_t n = c_->changes();
  KILN_RETURN_IF_ERROR(c_->query("UPDATE batches SET lease_until_ms = 0 WHERE lease_node = $1", {node}).status());
  return n;
}

Result<std::vector<LineResultRow>> BatchStore::line_results(const std::string& batch_id, int64_t after_line, int limit) {
  KILN_ASSIGN_OR_RETURN(auto rows, c_->query("SELECT line, custom_id, status, is_error, result FROM batch_lines WHERE "
                                             "batch_id = $1 AND line > $2 ORDER BY line LIMIT $3",
                                             {batch_id, after_line, int64_t{limit}}));
  std::vector<LineResultRow> out;
  for (const auto& r : rows) out.push_back(LineResultRow{i64(r[0]), str(r[1]), str(r[2]) == "done", i64(r[3]) != 0, str(r[4])});
  return out;
}

Result<bool> BatchStore::complete_batch(const BatchRecord& b, const std::string& from,
                                        const std::vector<FileRecord>& files,
                                        const std::vector<WebhookDelivery>& events) {
  // The one terminal timestamp the final status has; the retention counts from it, so a batch
  // ended without one would be kept forever.
  const int64_t ended_ms = std::max({b.completed_ms, b.failed_ms, b.expired_ms, b.cancelled_ms});
  if (ended_ms <= 0) return invalid_argument(str_cat("batch ", b.id, " ended as ", b.status, " without its *_at time"));
  bool changed = false;
  Status s = in_transaction([&]() -> Status {
    KILN_RETURN_IF_ERROR(c_->query(
        "UPDATE batches SET status = $2, output_file_id = $3, error_file_id = $4, finalizing_ms = $5, completed_ms = $6, "
        "expired_ms = $7, cancelled_ms = $8, total = $9, completed = $10, failed = $11, lease_until_ms = 0, "
        "errors = $13, failed_ms = $14, ended_ms = $15 WHERE id = $1 AND status = $12",
        {b.id, b.status, text_or_null(b.output_file_id), text_or_null(b.error_file_id), b.finalizing_ms,
         b.completed_ms, b.expired_ms, b.cancelled_ms, b.total, b.completed, b.failed, from, text_or_null(b.errors),
         b.failed_ms, ended_ms}).status());
    changed = c_->changes() > 0;
    if (!changed) return Status();
    for (const auto& f : files) KILN_RETURN_IF_ERROR(insert_file(f));
    return insert_deliveries(events);
  });
  if (!s.is_ok()) return s;
  return changed;
}

Result<PruneResult> BatchStore::prune_ended(int64_t ended_before_ms, int limit) {
  PruneResult out;
  if (limit <= 0) return out;
  const char* skip_locked = c_->postgres() ? " FOR UPDATE SKIP LOCKED" : "";
  // ended_ms is set only with a final status (complete_batch); the status test says so again.
  const std::string ended =
      "ended_ms > 0 AND ended_ms <= $1 AND status IN ('completed', 'failed', 'expired', 'cancelled')";
  KILN_RETURN_IF_ERROR(
      c_->query(str_cat("DELETE FROM batch_lines WHERE (batch_id, line) IN (SELECT batch_id, line FROM batch_lines WHERE "
                        "batch_id IN (SELECT id FROM batches WHERE ", ended, ") LIMIT $2", skip_locked, ")"),
                {ended_before_ms, int64_t{limit}})
          .status());
  out.lines = c_->changes();
  KILN_ASSIGN_OR_RETURN(
      auto rows,
      c_->query(str_cat("DELETE FROM batches WHERE id IN (SELECT id FROM batches WHERE ", ended,
                        " AND NOT EXISTS (SELECT 1 FROM batch_lines l WHERE l.batch_id = batches.id) ORDER BY ended_ms "
                        "LIMIT $2", skip_locked, ") RETURNING id"),
                {ended_before_ms, int64_t{limit}}));
  for (const auto& r : rows) out.batches.push_back(str(r[0]));
  // A pending delivery (still being retried, or claimed by a sender right now) is never touched.
  KILN_RETURN_IF_ERROR(
      c_->query(str_cat("DELETE FROM webhook_deliveries WHERE id IN (SELECT id FROM webhook_deliveries WHERE status IN "
                        "('delivered', 'failed') AND last_attempt_ms <= $1 ORDER BY last_attempt_ms LIMIT $2",
                        skip_locked, ")"),
                {ended_before_ms, int64_t{limit}})
          .status());
  out.deliveries = c_->changes();
  return out;
}

Status BatchStore::insert_deliveries(const std::vector<WebhookDelivery>& events) {
  for (const auto& e : events) {
    KILN_RETURN_IF_ERROR(c_->query("INSERT INTO webhook_deliveries (id, endpoint, event_type, subject_id, payload, "
                                   "created_ms, next_attempt_ms) VALUES ($1, $2, $3, $4, $5, $6, $6)",
                                   {e.id, e.endpoint, e.event_type, e.subject_id, e.payload, e.created_ms})
                             .status());
  }
  return Status();
}

Result<std::vector<WebhookDelivery>> BatchStore::claim_deliveries(const std::string& node, int limit, int64_t now_ms,
                                                                  int64_t until_ms) {
  const std::string sql = str_cat(
      "UPDATE webhook_deliveries SET lease_node = $1, lease_until_ms = $2 WHERE id IN (SELECT id FROM "
      "webhook_deliveries WHERE status = 'pending' AND next_attempt_ms <= $3 AND lease_until_ms < $3 ORDER BY "
      "next_attempt_ms LIMIT $4", c_->postgres() ? " FOR UPDATE SKIP LOCKED" : "", ") RETURNING ", kDeliveryCols);
  KILN_ASSIGN_OR_RETURN(auto rows, c_->query(sql, {node, until_ms, now_ms, int64_t{limit}}));
  std::vector<WebhookDelivery> out;
  for (const auto& r : rows) out.push_back(delivery_from(r));
  return out;
}

Status BatchStore::record_attempt(const WebhookDelivery& d) {
  return c_->query("UPDATE webhook_deliveries SET status = $2, attempts = $3, next_attempt_ms = $4, last_attempt_ms = $5, "
                   "last_status = $6, last_error = $7, lease_until_ms = 0 WHERE id = $1",
                   {d.id, d.status, d.attempts, d.next_attempt_ms, d.last_attempt_ms, d.last_status, d.last_error})
      .status();
}

Result<std::pair<std::vector<WebhookDelivery>, bool>> BatchStore::list_deliveries(const Page& page,
                                                                                  const std::string& subject_id) {
  std::vector<SqlValue> params;
  std::string where = "1 = 1";
  if (!subject_id.empty()) {
    params.push_back(subject_id);
    where += " AND subject_id = $1";
  }
  KILN_ASSIGN_OR_RETURN(auto rows, page_rows(*c_, "webhook_deliveries", kDeliveryCols, page, where, params));
  std::pair<std::vector<WebhookDelivery>, bool> out{{}, false};
  for (const auto& r : rows) {
    if (static_cast<int>(out.first.size()) == page.limit) {
      out.second = true;
      break;
    }
    out.first.push_back(delivery_from(r));
  }
  return out;
}

}  // namespace kiln::jobs
