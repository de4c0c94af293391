// The SQLite connection: WAL mode (readers never wait for the writer, and a kill -9 loses at
// most the transaction under way), synchronous=NORMAL (durable across a process crash, which
// is what jobs need; a power loss may lose the last transactions), and a busy timeout so the
// query connection waits for the writer's short transactions instead of failing.
#include <sqlite3.h>

#include <cctype>

#include "kiln/core/str.h"
#include "kiln/jobs/sql_conn.h"

namespace kiln::jobs {

namespace {

constexpr int kBusyTimeoutMs = 5000;

// "$12" -> "?12" outside string literals (the store's SQL has no '$' anywhere else).
std::string to_sqlite_params(std::string_view sql) {
  std::string out;
  out.reserve(sql.size());
  bool in_string = false;
  for (size_t i = 0; i < sql.size(); ++i) {
    char c = sql[i];
    if (c == '\'') in_string = !in_string;
    if (!in_string && c == '$' && i + 1 < sql.size() && std::isdigit(static_cast<unsigned char>(sql[i + 1]))) c = '?';
    out += c;
  }
  return out;
}

class SqliteConn final : public SqlConn {
 public:
  explicit SqliteConn(sqlite3* db) : db_(db) {}
  ~SqliteConn() override { sqlite3_close_v2(db_); }

  bool postgres() const override { return false; }
  int64_t changes() const override { return sqlite3_changes64(db_); }

  Status exec(std::string_view sql) override {
    char* err = nullptr;
    std::string s(sql);
    if (sqlite3_exec(db_, s.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
      std::string m = err != nullptr ? err : sqlite3_errmsg(db_);
      sqlite3_free(err);
      return error(m);
    }
    return Status();
  }

  Result<std::vector<SqlRow>> query(std::string_view sql, const std::vector<SqlValue>& params) override {
    std::string s = to_sqlite_params(sql);
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db_, s.c_str(), static_cast<int>(s.size()), &st, nullptr) != SQLITE_OK) {
      return error(sqlite3_errmsg(db_));
    }
    for (size_t i = 0; i < params.size(); ++i) {
      const int idx = static_cast<int>(i) + 1;
      if (const auto* v = std::get_if<int64_t>(&params[i])) sqlite3_bind_int64(st, idx, *v);
      else if (const auto* t = std::get_if<std::string>(&params[i])) sqlite3_bind_text(st, idx, t->data(), static_cast<int>(t->size()), SQLITE_TRANSIENT);
      else sqlite3_bind_null(st, idx);
    }
    std::vector<SqlRow> rows;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
      const int n = sqlite3_column_count(st);
      SqlRow row(static_cast<size_t>(n));
      for (int c = 0; c < n; ++c) {
        if (sqlite3_column_type(st, c) == SQLITE_NULL) continue;
        const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(st, c));
        row[static_cast<size_t>(c)] = std::string(text, static_cast<size_t>(sqlite3_column_bytes(st, c)));
      }
      rows.push_back(std::move(row));
    }
    Status result = rc == SQLITE_DONE ? Status() : error(sqlite3_errmsg(db_));
    sqlite3_finalize(st);
    if (!result.is_ok()) return result;
    return rows;
  }

 private:
  static Status error(const std::string& m) { return unavailable(str_cat("sqlite: ", m)); }
  sqlite3* db_;
};

}  // namespace

Result<std::unique_ptr<SqlConn>> open_sqlite(const std::string& path) {
  sqlite3* db = nullptr;
  const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
  if (sqlite3_open_v2(path.c_str(), &db, flags, nullptr) != SQLITE_OK) {
    std::string m = db != nullptr ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close_v2(db);
    return unavailable(str_cat("sqlite: cannot open ", path, ": ", m));
  }
  sqlite3_busy_timeout(db, kBusyTimeoutMs);
  std::unique_ptr<SqlConn> conn = std::make_unique<SqliteConn>(db);
  auto mode = conn->query("PRAGMA journal_mode=WAL");
  if (!mode.is_ok()) return mode.status();
  if (mode->empty() || !(*mode)[0][0] || *(*mode)[0][0] != "wal") {
    return unavailable(str_cat("sqlite: ", path, " cannot use WAL mode"));
  }
  KILN_RETURN_IF_ERROR(conn->exec("PRAGMA synchronous=NORMAL"));
  return conn;
}

}  // namespace kiln::jobs
