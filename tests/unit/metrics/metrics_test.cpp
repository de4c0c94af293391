#include "kiln/metrics/metrics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <stdexcept>
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
  c.inc(std::nan(""));
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
  auto& c = r.counter("c_total", "c");
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

TEST(Metrics, RemoveCallbacksDropsOnlyThatModelsCallbackSeries) {
  Registry r;
  r.gauge_fn("g", "g", {{"model", "a"}}, [] { return 1.0; });
  r.gauge_fn("g", "g", {{"model", "b"}}, [] { return 2.0; });
  r.counter_fn("steps_total", "s", {{"model", "a"}}, [] { return 5.0; });
  r.counter("loads_total", "l", {{"model", "a"}}).inc();
  r.remove_callbacks({{"model", "a"}});
  std::string text = r.render();
  EXPECT_EQ(text.find("g{model=\"a\"}"), std::string::npos);
  EXPECT_EQ(text.find("steps_total{model=\"a\"}"), std::string::npos);
  EXPECT_NE(text.find("g{model=\"b\"} 2"), std::string::npos);
  EXPECT_NE(text.find("loads_total{model=\"a\"} 1"), std::string::npos);  // a plain counter stays
}

TEST(Metrics, CallbackCountersRenderAsCounters) {
  Registry r;
  double steps = 3;
  r.counter_fn("kiln_steps_total", "Steps.", {{"model", "m"}}, [&] { return steps; });
  steps = 9;
  EXPECT_EQ(r.render(),
            "# HELP kiln_steps_total Steps.\n"
            "# TYPE kiln_steps_total counter\n"
            "kiln_steps_total{model=\"m\"} 9\n");
}

TEST(Metrics, CountersEndInTotalAndNothingElseDoes) {
  Registry r;
  EXPECT_THROW(r.counter("kiln_steps", "x"), std::invalid_argument);
  EXPECT_THROW(r.counter_fn("kiln_steps", "x", {}, [] { return 0.0; }), std::invalid_argument);
  EXPECT_THROW(r.gauge("kiln_blocks_total", "x"), std::invalid_argument);
  EXPECT_THROW(r.gauge_fn("kiln_blocks_total", "x", {}, [] { return 0.0; }), std::invalid_argument);
  EXPECT_THROW(r.histogram("kiln_seconds_total", "x", {1}), std::invalid_argument);
  EXPECT_NO_THROW(r.counter("kiln_steps_total", "x"));
  EXPECT_EQ(r.series_count(), 1u);
}

TEST(Metrics, NamesAndLabelNamesAreChecked) {
  Registry r;
  EXPECT_THROW(r.gauge("9lives", "x"), std::invalid_argument);
  EXPECT_THROW(r.gauge("kiln-up", "x"), std::invalid_argument);
  EXPECT_THROW(r.gauge("", "x"), std::invalid_argument);
  EXPECT_THROW(r.gauge("kiln_a", "x", {{"bad-name", "v"}}), std::invalid_argument);
  EXPECT_THROW(r.gauge("kiln_b", "x", {{"__reserved", "v"}}), std::invalid_argument);
  EXPECT_THROW(r.gauge("kiln_c", "x", {{"a:b", "v"}}), std::invalid_argument);
  EXPECT_THROW(r.gauge("kiln_d", "x", {{"a", "1"}, {"a", "2"}}), std::invalid_argument);
  EXPECT_THROW(r.histogram("kiln_e_seconds", "x", {1}, {{"le", "1"}}), std::invalid_argument);
  EXPECT_NO_THROW(r.gauge("kiln:ratio", "x", {{"_model", "v"}}));
  EXPECT_EQ(r.series_count(), 1u);
}

TEST(Metrics, AFamilyKeepsItsTypeAndLabelNames) {
  Registry r;
  r.counter("kiln_requests_total", "x", {{"route", "/a"}});
  EXPECT_THROW(r.counter_fn("kiln_requests_total", "x", {{"route", "/a"}}, [] { return 1.0; }), std::invalid_argument);
  EXPECT_THROW(r.counter("kiln_requests_total", "x", {{"path", "/a"}}), std::invalid_argument);
  EXPECT_THROW(r.counter("kiln_requests_total", "x", {{"route", "/a"}, {"status", "200"}}), std::invalid_argument);
  r.gauge("kiln_depth", "x");
  EXPECT_THROW(r.histogram("kiln_depth", "x", {1}), std::invalid_argument);
  EXPECT_EQ(r.series_count(), 2u);
}

TEST(Metrics, AFamilyNeverHoldsMoreThanItsLimitAndKeepsCountingInOther) {
  Registry r(4);
  for (int i = 0; i < 1000; ++i) r.counter("kiln_hits_total", "x", {{"method", "M" + std::to_string(i)}}).inc();
  EXPECT_EQ(r.series_count(), 4u);
  std::string text = r.render();
  EXPECT_NE(text.find("kiln_hits_total{method=\"M0\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("kiln_hits_total{method=\"M2\"} 1\n"), std::string::npos);
  EXPECT_EQ(text.find("M3"), std::string::npos);
  EXPECT_NE(text.find("kiln_hits_total{method=\"other\"} 997\n"), std::string::npos);
  // Label sets seen before the limit keep their own series.
  r.counter("kiln_hits_total", "x", {{"method", "M1"}}).inc();
  EXPECT_NE(r.render().find("kiln_hits_total{method=\"M1\"} 2\n"), std::string::npos);
}

TEST(Metrics, HelpAndLabelValuesAreEscapedAndUtf8) {
  Registry r;
  r.gauge("kiln_x", "Back\\slash and\nnewline \"quoted\".", {{"model", "a\\b\"c\nd\xC3\xA9\xFF"}}).set(1);
  r.gauge("kiln_y", "Fine.", {{"model", "caf\xC3\xA9"}}).set(2);
  EXPECT_EQ(r.render(),
            "# HELP kiln_x Back\\\\slash and\\nnewline \"quoted\".\n"
            "# TYPE kiln_x gauge\n"
            "kiln_x{model=\"a\\\\b\\\"c\\nd\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\"} 1\n"
            "# HELP kiln_y Fine.\n"
            "# TYPE kiln_y gauge\n"
            "kiln_y{model=\"caf\xC3\xA9\"} 2\n");
}

TEST(Metrics, CallbacksRunWithoutTheRegistryLock) {
  // A callback that reads another layer's state under that layer's lock, while that layer
  // registers metrics under the same lock, must not deadlock: here the callback itself
  // registers a series, which would block forever if render() held the registry's lock.
  Registry r;
  r.gauge_fn("kiln_pool_models", "x", {}, [&r] {
    r.counter("kiln_model_loads_total", "x", {{"model", "m"}}).inc();
    return 1.0;
  });
  EXPECT_NE(r.render().find("kiln_pool_models 1\n"), std::string::npos);
  EXPECT_NE(r.render().find("kiln_model_loads_total{model=\"m\"} 1\n"), std::string::npos);
}

TEST(Metrics, HistogramCountMatchesItsInfBucket) {
  Registry r;
  auto& h = r.histogram("kiln_t_seconds", "x", {1, std::nan(""), 1.0 / 0.0, 2});
  EXPECT_EQ(h.bounds(), (std::vector<double>{1, 2}));
  h.observe(5);
  std::string text = r.render();
  EXPECT_NE(text.find("kiln_t_seconds_bucket{le=\"+Inf\"} 1\nkiln_t_seconds_sum 5\nkiln_t_seconds_count 1\n"),
            std::string::npos)
      << text;
}

TEST(Metrics, FormatValue) {
  EXPECT_EQ(format_value(3), "3");
  EXPECT_EQ(format_value(-0.25), "-0.25");
  EXPECT_EQ(format_value(1.0 / 0.0), "+Inf");
}

}  // namespace
}  // namespace kiln::metrics
