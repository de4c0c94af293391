// A BatchStore over each backend (sql_backend_fixture.h) and the batches the batch store's tests
// start from. Times are given, never read from a clock.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "kiln/jobs/batch_store.h"
#include "kiln/jobs/sql_conn.h"
#include "sql_backend_fixture.h"

namespace kiln::jobs {

class BatchStoreFixture : public SqlBackendTest {
 protected:
  std::unique_ptr<BatchStore> open() {
    auto c = open_sql(database(), dir_);
    EXPECT_TRUE(c.is_ok()) << c.status().to_string();
    return c.is_ok() ? std::make_unique<BatchStore>(std::move(*c)) : nullptr;
  }
  // A batch reading "file-1", created at 100, still validating.
  static BatchRecord validating(const std::string& id) {
    BatchRecord b;
    b.id = id;
    b.endpoint = "/v1/chat/completions";
    b.input_file_id = "file-1";
    b.completion_window = "24h";
    b.status = "validating";
    b.created_ms = 100;
    b.expires_ms = 100 + 86400000;
    return b;
  }
  // A batch of `n` lines, validated at 200 and in progress.
  static void make_batch(BatchStore& s, const std::string& id, int n) {
    ASSERT_TRUE(s.insert_batch(validating(id)).is_ok());
    std::vector<BatchLine> lines;
    for (int i = 1; i <= n; ++i) lines.push_back(BatchLine{i, "c" + std::to_string(i), i * 10, 9});
    ASSERT_TRUE(s.finish_validation(id, "m", lines, 200).is_ok());
  }
};

}  // namespace kiln::jobs
