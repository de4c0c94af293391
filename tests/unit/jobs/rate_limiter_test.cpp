// Rate-limit buckets on an injected clock, and limits held across two nodes through a real
// PostgreSQL server (integration/postgres_server.h).
#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <string>

#include "kiln/jobs/rate_limiter.h"
#include "kiln/jobs/rate_sync.h"
#include "kiln/jobs/sql_conn.h"
#include "kiln/jobs/store.h"
#include "sql_backend_fixture.h"

namespace kiln::jobs {
namespace {

struct FakeClock {
  int64_t now = 1000;
  RateLimiter::Clock fn() {
    return [this] { return now; };
  }
};

RateLimiter::Limits fixed(RateLimit l) {
  return [l](const std::string&) { return l; };
}

TEST(RateLimiter, RequestBucketRefillsContinuously) {
  FakeClock clock;
  RateLimiter rl(fixed({3, 0}), clock.fn());
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(rl.admit_request("a").allowed) << i;
  RateDecision d = rl.admit_request("a");
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.exceeded, "requests");
  EXPECT_EQ(d.retry_after_ms, 20000);  // a minute's 3 requests: one every 20 s
  EXPECT_EQ(d.requests.limit, 3);
  EXPECT_EQ(d.requests.remaining, 0);
  EXPECT_EQ(d.requests.reset_ms, 60000);
  EXPECT_EQ(d.tokens.limit, 0);  // no token limit: no token headers
  EXPECT_TRUE(rl.admit_request("b").allowed);  // every client has its own bucket
  clock.now += 19999;
  EXPECT_FALSE(rl.admit_request("a").allowed);
  clock.now += 1;
  d = rl.admit_request("a");
  EXPECT_TRUE(d.allowed);
  EXPECT_EQ(d.requests.remaining, 0);
  clock.now += 3600 * 1000;  // a long pause refills to the limit, never past it
  EXPECT_EQ(rl.peek("a").requests.remaining, 3);
}

TEST(RateLimiter, TokensAreChargedAtAdmissionAndRefunded) {
  FakeClock clock;
  RateLimiter rl(fixed({0, 1000}), clock.fn());
  RateDecision d = rl.charge_tokens("a", 600);
  EXPECT_TRUE(d.allowed);
  EXPECT_EQ(d.tokens.remaining, 400);
  EXPECT_EQ(d.tokens.reset_ms, 36000);
  d = rl.charge_tokens("a", 500);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.exceeded, "tokens");
  EXPECT_FALSE(d.never_fits);
  EXPECT_EQ(d.retry_after_ms, 6000);  // 100 tokens at 1000 a minute
  rl.refund_tokens("a", 300);  // the request used 300 of its 600
  EXPECT_EQ(rl.peek("a").tokens.remaining, 700);
  EXPECT_TRUE(rl.charge_tokens("a", 500).allowed);
  d = rl.charge_tokens("b", 1001);
  EXPECT_FALSE(d.allowed);
  EXPECT_TRUE(d.never_fits);
  rl.refund_tokens("a", 100000);  // a refund never fills past the limit
  EXPECT_EQ(rl.peek("a").tokens.remaining, 1000);
}

TEST(RateLimiter, UnlimitedClientsTakeNothing) {
  RateLimiter rl(fixed({0, 0}));
  for (int i = 0; i < 1000; ++i) EXPECT_TRUE(rl.admit_request("a").allowed);
  EXPECT_TRUE(rl.charge_tokens("a", int64_t{1} << 40).allowed);
}

TEST(RateLimiter, TrackedClientsAreBounded) {
  FakeClock clock;
  RateLimiter rl(fixed({10, 0}), clock.fn());
  for (size_t i = 0; i < RateLimiter::kMaxClients; ++i) rl.admit_request("c" + std::to_string(i));
  EXPECT_EQ(rl.clients(), RateLimiter::kMaxClients);
  clock.now += 60000;  // every bucket is full again: nothing to remember
  rl.admit_request("new");
  EXPECT_EQ(rl.clients(), 1u);
  // With every bucket in use, the longest idle tenth goes at once.
  for (size_t i = 0; i < RateLimiter::kMaxClients + 10; ++i) rl.admit_request("d" + std::to_string(i));
  EXPECT_LE(rl.clients(), RateLimiter::kMaxClients);
  EXPECT_GE(rl.clients(), RateLimiter::kMaxClients * 9 / 10);
  EXPECT_EQ(rl.peek("d" + std::to_string(RateLimiter::kMaxClients + 9)).requests.remaining, 9);  // the newest stays
}

TEST(RateLimiter, ResetHeaderFormat) {
  EXPECT_EQ(format_reset(0), "0ms");
  EXPECT_EQ(format_reset(20), "20ms");
  EXPECT_EQ(format_reset(1000), "1s");
  EXPECT_EQ(format_reset(1500), "1.5s");
  EXPECT_EQ(format_reset(61000), "1m1s");
  EXPECT_EQ(format_reset(360000), "6m0s");
}

// Two nodes' limiters share one PostgreSQL database: after a sync each charges what the other took.
TEST(RateLimitSync, LimitsHoldAcrossNodesThroughPostgres) {
  const std::string url = postgres()->url();
  {
    auto c = open_postgres(url);
    ASSERT_TRUE(c.is_ok()) << c.status().to_string();
    ASSERT_TRUE((*c)->exec("DROP SCHEMA public CASCADE; CREATE SCHEMA public").is_ok());
    auto store = open_job_store(url, std::filesystem::temp_directory_path());  // migrates
    ASSERT_TRUE(store.is_ok()) << store.status().to_string();
  }
  FakeClock clock;
  RateLimiter a(fixed({5, 1000}), clock.fn()), b(fixed({5, 1000}), clock.fn());
  auto conn_a = open_postgres(url), conn_b = open_postgres(url);
  ASSERT_TRUE(conn_a.is_ok() && conn_b.is_ok());
  RateLimitSync sync_a(a, std::move(*conn_a), {"node-a:1", std::chrono::milliseconds(0)});
  RateLimitSync sync_b(b, std::move(*conn_b), {"node-b:1", std::chrono::milliseconds(0)});
  ASSERT_TRUE(sync_b.sync_once().is_ok());

  for (int i = 0; i < 3; ++i) ASSERT_TRUE(a.admit_request("key_x").allowed);
  ASSERT_TRUE(a.charge_tokens("key_x", 800).allowed);
  a.refund_tokens("key_x", 300);  // net: 500 tokens
  EXPECT_EQ(b.peek("key_x").requests.remaining, 5);  // not synced yet: the tolerance
  ASSERT_TRUE(sync_a.sync_once().is_ok());
  ASSERT_TRUE(sync_b.sync_once().is_ok());
  RateDecision seen = b.peek("key_x");
  EXPECT_EQ(seen.requests.remaining, 2);
  EXPECT_EQ(seen.tokens.remaining, 500);
  EXPECT_EQ(b.peek("key_y").requests.remaining, 5);  // other clients are untouched

  ASSERT_TRUE(b.admit_request("key_x").allowed);
  ASSERT_TRUE(b.admit_request("key_x").allowed);
  EXPECT_FALSE(b.admit_request("key_x").allowed);
  ASSERT_TRUE(sync_b.sync_once().is_ok());
  ASSERT_TRUE(sync_a.sync_once().is_ok());
  EXPECT_FALSE(a.admit_request("key_x").allowed);  // the fleet has used its 5
  // A second sync with nothing new changes nothing.
  ASSERT_TRUE(sync_a.sync_once().is_ok());
  EXPECT_EQ(a.peek("key_x").requests.remaining, 0);
  clock.now += 12000;  // one request refills (5 a minute), on each node
  EXPECT_TRUE(a.admit_request("key_x").allowed);
}

}  // namespace
}  // namespace kiln::jobs
