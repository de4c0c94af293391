// Counters, gauges and histograms, rendered in the Prometheus text exposition format (0.0.4).
//
// A Registry owns metric families; each family has one type, one help text, a fixed set of label
// names and one series per distinct label values. Updating a series is lock-free (atomics);
// creating one takes the registry's mutex once, so hot paths may keep the returned reference.
//
// The registry holds the exposition rules so that callers cannot break them (docs/metrics.md):
// names and label names are checked, counters end in `_total` and nothing else does, a family
// keeps its type and label names, and a family never holds more than `max_series_per_family`
// series: past that, new label values fold into one series whose values are all "other", so no
// caller can grow the registry without bound, whatever its labels come from.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::metrics {

using Labels = std::vector<std::pair<std::string, std::string>>;

class Counter {
 public:
  void inc(double v = 1.0);
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

class Gauge {
 public:
  void set(double v) { value_.store(v, std::memory_order_relaxed); }
  void add(double v);
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

class Histogram {
 public:
  // `bounds`: the upper bounds of the buckets, increasing; +Inf is implied.
  explicit Histogram(std::vector<double> bounds);
  void observe(double v);
  const std::vector<double>& bounds() const { return bounds_; }
  // Cumulative counts per bound, then the +Inf count (== count()).
  std::vector<uint64_t> cumulative_counts() const;
  uint64_t count() const { return count_.load(std::memory_order_relaxed); }
  double sum() const { return sum_.load(std::memory_order_relaxed); }

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;  // [bounds + 1], not cumulative
  std::atomic<uint64_t> count_{0};
  std::atomic<double> sum_{0.0};
};

// Buckets for latencies in seconds, from 5 ms to 2 minutes.
std::vector<double> latency_buckets();

class Registry {
 public:
  // Enough for every bounded label set kiln has (routes x methods x statuses, models); reaching
  // it means a label is not bounded, and the overflow series says so.
  static constexpr size_t kDefaultMaxSeriesPerFamily = 5000;

  explicit Registry(size_t max_series_per_family = kDefaultMaxSeriesPerFamily);
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Returns the series of `name` with `labels`, creating the family and the series on first use.
  // Names must match [a-zA-Z_:][a-zA-Z0-9_:]* and label names [a-zA-Z_][a-zA-Z0-9_]* (not
  // starting with "__"; "le" is the histograms'); a counter's name ends in "_total" and no other
  // type's does; the type and label names of a family never change. Breaking a rule is a bug in
  // the caller and throws std::invalid_argument.
  Counter& counter(const std::string& name, const std::string& help, const Labels& labels = {});
  Gauge& gauge(const std::string& name, const std::string& help, const Labels& labels = {});
  Histogram& histogram(const std::string& name, const std::string& help, const std::vector<double>& bounds,
                       const Labels& labels = {});
  // Series whose value is read from `fn` each time the registry is rendered (queue depth, steps
  // run: values that live in another layer). Registering the same name and labels again replaces
  // the function. A counter's function must not decrease while it is registered; a new one may
  // start again from zero (Prometheus reads that as a counter reset, like a restart).
  void gauge_fn(const std::string& name, const std::string& help, const Labels& labels, std::function<double()> fn);
  void counter_fn(const std::string& name, const std::string& help, const Labels& labels, std::function<double()> fn);
  // Removes every callback series (gauge or counter) with exactly these labels (a model that is
  // unloaded).
  void remove_callbacks(const Labels& labels);

  // The whole registry in the Prometheus text format, families sorted by name. Callbacks run
  // without the registry's lock held, so they may take locks of their own.
  std::string render() const;
  // Series in the registry, all families together (histograms count one per label set).
  size_t series_count() const;

 private:
  enum class Kind { kCounter, kGauge, kHistogram };
  struct Series {
    std::unique_ptr<Counter> counter;
    std::unique_ptr<Gauge> gauge;
    std::unique_ptr<Histogram> histogram;
    std::function<double()> fn;  // a callback series instead of one of the above
  };
  struct Family {
    Kind kind = Kind::kCounter;
    std::string help;
    std::vector<std::string> label_names;
    std::map<Labels, Series> series;
    bool overflowed = false;
  };
  // The series of `name` with `labels` (or the family's overflow series), created empty.
  Series& series_locked(const std::string& name, const std::string& help, Kind kind, const Labels& labels);

  const size_t max_series_;
  mutable std::mutex mu_;
  std::map<std::string, Family> families_;
};

// Formats a sample value as Prometheus expects (integers without a fraction, +Inf, NaN).
std::string format_value(double v);
// Escapes a label value (backslash, double quote, newline). The text format must be UTF-8: in a
// value that is not, each non-ASCII byte becomes U+FFFD.
std::string escape_label_value(std::string_view v);
// Escapes a HELP text (backslash, newline), made UTF-8 the same way.
std::string escape_help(std::string_view v);

}  // namespace kiln::metrics
