// The PostgreSQL connection (libpq). A connection that broke (the server restarted, the network
// dropped) is re-established before the next statement, so the writer resumes on its own once the
// server answers again. Timeouts bound how long a dead server can hold the writer thread: the
// connect timeout, TCP keepalives and a TCP user timeout (a server that stops answering without
// closing the connection).
#include <libpq-fe.h>

#include "kiln/core/str.h"
#include "kiln/jobs/sql_conn.h"

namespace kiln::jobs {

namespace {

void ignore_notice(void*, const char*) {}  // "relation already exists, skipping" and the like

class PgConn final : public SqlConn {
 public:
  explicit PgConn(PGconn* c) : c_(c) { PQsetNoticeProcessor(c_, ignore_notice, nullptr); }
  ~PgConn() override { PQfinish(c_); }

  bool postgres() const override { return true; }
  int64_t changes() const override { return changes_; }

  // PQexec, unlike PQexecParams, takes several statements (the migrations' DDL).
  Status exec(std::string_view sql) override {
    KILN_RETURN_IF_ERROR(ensure_connected());
    std::string s(sql);
    PGresult* r = PQexec(c_, s.c_str());
    return finish(r).status();
  }

  Result<std::vector<SqlRow>> query(std::string_view sql, const std::vector<SqlValue>& params) override {
    KILN_RETURN_IF_ERROR(ensure_connected());
    std::vector<std::string> text(params.size());
    std::vector<const char*> values(params.size(), nullptr);
    for (size_t i = 0; i < params.size(); ++i) {
      if (const auto* v = std::get_if<int64_t>(&params[i])) text[i] = std::to_string(*v);
      else if (const auto* t = std::get_if<std::string>(&params[i])) text[i] = *t;
      else continue;
      values[i] = text[i].c_str();
    }
    std::string s(sql);
    PGresult* r = PQexecParams(c_, s.c_str(), static_cast<int>(params.size()), nullptr, values.data(), nullptr,
                               nullptr, 0);
    return finish(r);
  }

 private:
  // Reads and frees a result.
  Result<std::vector<SqlRow>> finish(PGresult* r) {
    const ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
      std::string m = r != nullptr ? PQresultErrorMessage(r) : PQerrorMessage(c_);
      PQclear(r);
      return unavailable(str_cat("postgresql: ", trim(m)));
    }
    std::vector<SqlRow> rows;
    const int nr = PQntuples(r), nc = PQnfields(r);
    rows.reserve(static_cast<size_t>(nr));
    for (int i = 0; i < nr; ++i) {
      SqlRow row(static_cast<size_t>(nc));
      for (int c = 0; c < nc; ++c) {
        if (!PQgetisnull(r, i, c)) row[static_cast<size_t>(c)] = std::string(PQgetvalue(r, i, c), static_cast<size_t>(PQgetlength(r, i, c)));
      }
      rows.push_back(std::move(row));
    }
    const char* n = PQcmdTuples(r);
    changes_ = (n != nullptr && *n != '\0') ? std::stoll(n) : 0;
    PQclear(r);
    return rows;
  }

  Status ensure_connected() {
    if (PQstatus(c_) == CONNECTION_OK) return Status();
    PQreset(c_);
    if (PQstatus(c_) == CONNECTION_OK) return Status();
    return unavailable(str_cat("postgresql: ", trim(PQerrorMessage(c_))));
  }

  PGconn* c_;
  int64_t changes_ = 0;
};

}  // namespace

Result<std::unique_ptr<SqlConn>> open_postgres(const std::string& conninfo) {
  // Defaults first: what the connection string itself says overrides them (expand_dbname).
  const char* keys[] = {"connect_timeout", "keepalives", "keepalives_idle", "keepalives_interval",
                        "keepalives_count", "tcp_user_timeout", "application_name", "dbname", nullptr};
  const char* values[] = {"5", "1", "10", "5", "3", "15000", "kiln", conninfo.c_str(), nullptr};
  PGconn* c = PQconnectdbParams(keys, values, /*expand_dbname=*/1);
  if (c == nullptr) return unavailable("postgresql: out of memory");
  if (PQstatus(c) != CONNECTION_OK) {
    std::string m(trim(PQerrorMessage(c)));
    PQfinish(c);
    return unavailable(str_cat("postgresql: cannot connect: ", m));
  }
  return std::unique_ptr<SqlConn>(std::make_unique<PgConn>(c));
}

}  // namespace kiln::jobs
