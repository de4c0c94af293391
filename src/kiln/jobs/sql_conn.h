// The little the job store needs from a database connection: run one statement with bound
// parameters and read its rows as text. Parameters are written $1, $2, ... (PostgreSQL's style;
// the SQLite connection rewrites them to ?1, ?2, ...).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "kiln/core/status.h"

namespace kiln::jobs {

using SqlValue = std::variant<std::monostate, int64_t, std::string>;
using SqlRow = std::vector<std::optional<std::string>>;  // nullopt: SQL NULL

class SqlConn {
 public:
  virtual ~SqlConn() = default;
  virtual bool postgres() const = 0;
  virtual Result<std::vector<SqlRow>> query(std::string_view sql, const std::vector<SqlValue>& params = {}) = 0;
  // Statements without parameters or rows (DDL, BEGIN, COMMIT).
  virtual Status exec(std::string_view sql) = 0;
  // Rows changed by the last statement.
  virtual int64_t changes() const = 0;
};

Result<std::unique_ptr<SqlConn>> open_sqlite(const std::string& path);
Result<std::unique_ptr<SqlConn>> open_postgres(const std::string& conninfo);
// Opens the database named by a --database setting (store.h's open_job_store) and applies the
// schema migrations it lacks.
Result<std::unique_ptr<SqlConn>> open_sql(const std::string& database, const std::filesystem::path& data_dir);

}  // namespace kiln::jobs
