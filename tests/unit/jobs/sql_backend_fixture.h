// The same store tests over both backends: SQLite in a temporary directory and a real PostgreSQL
// server started by the test process on first use (integration/postgres_server.h). Each test
// starts from an empty database and an empty directory.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>

#include "integration/postgres_server.h"
#include "kiln/jobs/sql_conn.h"

namespace kiln::jobs {

// One PostgreSQL server per test process.
inline testing::PostgresServer* postgres() {
  static std::unique_ptr<testing::PostgresServer> server = [] {
    auto s = std::make_unique<testing::PostgresServer>();
    if (!s->start()) ADD_FAILURE() << "PostgreSQL: " << s->error();
    return s;
  }();
  return server.get();
}

class SqlBackendTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    for (char& c : name) {
      if (c == '/') c = '_';
    }
    dir_ = std::filesystem::temp_directory_path() / ("kiln_store_test_" + std::to_string(getpid()) + "_" + name);
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    if (pg()) {
      auto c = open_postgres(postgres()->url());
      ASSERT_TRUE(c.is_ok()) << c.status().to_string();
      ASSERT_TRUE((*c)->exec("DROP SCHEMA public CASCADE; CREATE SCHEMA public").is_ok());
    }
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  bool pg() const { return GetParam() == "postgresql"; }
  std::string database() const { return pg() ? postgres()->url() : (dir_ / "jobs.db").string(); }

  std::filesystem::path dir_;
};

// Instantiates `suite` over both backends, named by backend.
#define KILN_SQL_BACKENDS(suite) \
  INSTANTIATE_TEST_SUITE_P(Backends, suite, ::testing::Values("sqlite", "postgresql"), [](const auto& p) { return p.param; })

}  // namespace kiln::jobs
