#include "kiln/metrics/metrics.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace kiln::metrics {
namespace {

TEST(Metrics, RendersCountersGaugesAndHistogramsInPrometheusText) {
  Registry r;
  r.counter("kiln_requests_total", "Requests.", {{"route", "/v1/completions"}, {"status", "200"}}).inc();
  r.counter("kiln_requests_total", "Requests.", {{"route", "/v1/completions"}, {"status", "200"}}).inc(2);
  r.gauge("kiln_up", "Up.").set(1);
  r.gauge_fn("kiln_queue_depth", "Waiting.", {{"model", "m\"x"}}, [] { return 7.0; });
  auto& h = r.histogram("kiln_latency_seconds", "Latency.", {0.1, 1.0});
  h.observe(0.05);
  h.observe(0.5);
  h.observe(3.0);
  std::string want =
      "# HELP kiln_latency_seconds Latency.\n"
      "# TYPE kiln_latency_seconds histogram\n"
      "kiln_latency_seconds_bucket{le=\"0.10000000000000001\"} 1\n"
      "kiln_latency_seconds_bucket{le=\"1\"} 2\n"
      "kiln_latency_seconds_bucket{le=\"+Inf\"} 3\n"
      "kiln_latency_seconds_sum 3.5499999999999998\n"
      "kiln_latency_seconds_count 3\n"
      "# HELP kiln_queue_depth Waiting.\n"
      "# TYPE kiln_queue_depth gauge\n"
      "kiln_queue_depth{model=\"m\\\"x\"} 7\n"
      "# HELP kiln_requests_total Requests.\n"
      "# TYPE kiln_requests_total counter\n"
      "kiln_requests_total{route=\"/v1/completions\",status=\"200\"} 3\n"
      "# HELP kiln_up Up.\n"
      "# TYPE kiln_up gauge\n"
      "kiln_up 1\n";
  EXPECT_EQ(r.render(), want);
}

TEST(Metrics, CounterIgnoresNegativeIncrements) {
  Counter c;
  c.inc(2);
  c.inc(-5);
  EXPECT_EQ(c.value(), 2);
}

TEST(Metrics, HistogramBucketsAreCumulativeAndBoundsInclusive) {
  Histogram h({1, 2, 3});
  for (double v : {0.5, 1.0, 1.5, 2.0, 10.0}) h.observe(v);
  EXPECT_EQ(h.cumulative_counts(), (std::vector<uint64_t>{2, 4, 4, 5}));
  EXPECT_DOUBLE_EQ(h.sum(), 15.0);
}

TEST(Metrics, ConcurrentUpdatesAreNotLost) {
  Registry r;
  auto& c = r.counter("c", "c");
  auto& h = r.histogram("h", "h", {1});
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t) {
    ts.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) {
        c.inc();
        h.observe(0.5);
      }
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(c.value(), 40000);
  EXPECT_EQ(h.count(), 40000u);
  EXPECT_DOUBLE_EQ(h.sum(), 20000.0);
}

TEST(Metrics, RemoveGaugeFnsDropsOnlyThatModelsSeries) {
  Registry r;
  r.gauge_fn("g", "g", {{"model", "a"}}, [] { return 1.0; });
  r.gauge_fn("g", "g", {{"model", "b"}}, [] { return 2.0; });
  r.remove_gauge_fns({{"model", "a"}});
  std::string text = r.render();
  EXPECT_EQ(text.find("model=\"a\""), std::string::npos);
  EXPECT_NE(text.find("g{model=\"b\"} 2"), std::string::npos);
}

TEST(Metrics, FormatValue) {
  EXPECT_EQ(format_value(3), "3");
  EXPECT_EQ(format_value(-0.25), "-0.25");
  EXPECT_EQ(format_value(1.0 / 0.0), "+Inf");
}

}  // namespace
}  // namespace kiln::metrics
