// Counters, gauges and histograms, rendered in the Prometheus text exposition format (0.0.4).
//
// A Registry owns metric families; each family has a fixed set of label names and one series per
// distinct label values. Updating a series is lock-free (atomics); creating one takes the
// family's mutex once, so hot paths keep the returned reference.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
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
  Registry() = default;
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Returns the series of `name` with `labels`, creating the family and the series on first use.
  // Names must match [a-zA-Z_:][a-zA-Z0-9_:]*; the label names of a family never change.
  Counter& counter(const std::string& name, const std::string& help, const Labels& labels = {});
  Gauge& gauge(const std::string& name, const std::string& help, const Labels& labels = {});
  Histogram& histogram(const std::string& name, const std::string& help, const std::vector<double>& bounds,
                       const Labels& labels = {});
  // A gauge whose value is read from `fn` each time the registry is rendered (queue depth, KV
  // usage: values that live in another layer). Registering the same name and labels again
  // replaces the function.
  void gauge_fn(const std::string& name, const std::string& help, const Labels& labels, std::function<double()> fn);
  // Removes every callback gauge series with these labels (a model that is unloaded).
  void remove_gauge_fns(const Labels& labels);

  // The whole registry in the Prometheus text format, families sorted by name.
  std::string render() const;

 private:
  enum class Kind { kCounter, kGauge, kHistogram };
  struct Family {
    Kind kind = Kind::kCounter;
    std::string help;
    std::map<Labels, std::unique_ptr<Counter>> counters;
    std::map<Labels, std::unique_ptr<Gauge>> gauges;
    std::map<Labels, std::function<double()>> gauge_fns;
    std::map<Labels, std::unique_ptr<Histogram>> histograms;
  };
  Family& family_locked(const std::string& name, const std::string& help, Kind kind);

  mutable std::mutex mu_;
  std::map<std::string, Family> families_;
};

// Formats a sample value as Prometheus expects (integers without a fraction, +Inf, NaN).
std::string format_value(double v);
// Escapes a label value (backslash, double quote, newline).
std::string escape_label_value(const std::string& v);

}  // namespace kiln::metrics
