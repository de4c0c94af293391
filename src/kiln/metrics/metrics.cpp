#include "kiln/metrics/metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

namespace kiln::metrics {
namespace {

void atomic_add(std::atomic<double>& a, double v) {
  double cur = a.load(std::memory_order_relaxed);
  while (!a.compare_exchange_weak(cur, cur + v, std::memory_order_relaxed)) {
  }
}

std::string render_labels(const Labels& labels, const std::string& extra_name = "",
                          const std::string& extra_value = "") {
  if (labels.empty() && extra_name.empty()) return "";
  std::string out = "{";
  bool first = true;
  for (const auto& [k, v] : labels) {
    if (!first) out += ',';
    first = false;
    out += k + "=\"" + escape_label_value(v) + "\"";
  }
  if (!extra_name.empty()) {
    if (!first) out += ',';
    out += extra_name + "=\"" + escape_label_value(extra_value) + "\"";
  }
  return out + "}";
}

}  // namespace

void Counter::inc(double v) {
  if (v < 0) return;  // a counter never goes down
  atomic_add(value_, v);
}

void Gauge::add(double v) { atomic_add(value_, v); }

Histogram::Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)) {
  std::sort(bounds_.begin(), bounds_.end());
  bounds_.erase(std::unique(bounds_.begin(), bounds_.end()), bounds_.end());
  buckets_ = std::make_unique<std::atomic<uint64_t>[]>(bounds_.size() + 1);
  for (size_t i = 0; i <= bounds_.size(); ++i) buckets_[i].store(0);
}

void Histogram::observe(double v) {
  size_t i = static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin());
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  atomic_add(sum_, v);
}

std::vector<uint64_t> Histogram::cumulative_counts() const {
  std::vector<uint64_t> out(bounds_.size() + 1);
  uint64_t acc = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    acc += buckets_[i].load(std::memory_order_relaxed);
    out[i] = acc;
  }
  return out;
}

std::vector<double> latency_buckets() {
  return {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120};
}

Registry::Family& Registry::family_locked(const std::string& name, const std::string& help, Kind kind) {
  auto [it, inserted] = families_.try_emplace(name);
  if (inserted) {
    it->second.kind = kind;
    it->second.help = help;
  }
  return it->second;
}

Counter& Registry::counter(const std::string& name, const std::string& help, const Labels& labels) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& f = family_locked(name, help, Kind::kCounter);
  auto& slot = f.counters[labels];
  if (!slot) slot = std::make_unique<Counter>();
  return *slot;
}

Gauge& Registry::gauge(const std::string& name, const std::string& help, const Labels& labels) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& f = family_locked(name, help, Kind::kGauge);
  auto& slot = f.gauges[labels];
  if (!slot) slot = std::make_unique<Gauge>();
  return *slot;
}

Histogram& Registry::histogram(const std::string& name, const std::string& help, const std::vector<double>& bounds,
                               const Labels& labels) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& f = family_locked(name, help, Kind::kHistogram);
  auto& slot = f.histograms[labels];
  if (!slot) slot = std::make_unique<Histogram>(bounds);
  return *slot;
}

void Registry::gauge_fn(const std::string& name, const std::string& help, const Labels& labels,
                        std::function<double()> fn) {
  std::lock_guard<std::mutex> lock(mu_);
  family_locked(name, help, Kind::kGauge).gauge_fns[labels] = std::move(fn);
}

void Registry::remove_gauge_fns(const Labels& labels) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [name, f] : families_) f.gauge_fns.erase(labels);
}

std::string Registry::render() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::ostringstream os;
  for (const auto& [name, f] : families_) {
    const char* type = f.kind == Kind::kCounter ? "counter" : f.kind == Kind::kGauge ? "gauge" : "histogram";
    os << "# HELP " << name << ' ' << f.help << '\n';
    os << "# TYPE " << name << ' ' << type << '\n';
    for (const auto& [labels, c] : f.counters) os << name << render_labels(labels) << ' ' << format_value(c->value()) << '\n';
    for (const auto& [labels, g] : f.gauges) os << name << render_labels(labels) << ' ' << format_value(g->value()) << '\n';
    for (const auto& [labels, fn] : f.gauge_fns) os << name << render_labels(labels) << ' ' << format_value(fn()) << '\n';
    for (const auto& [labels, h] : f.histograms) {
      auto counts = h->cumulative_counts();
      for (size_t i = 0; i < h->bounds().size(); ++i) {
        os << name << "_bucket" << render_labels(labels, "le", format_value(h->bounds()[i])) << ' ' << counts[i] << '\n';
      }
      os << name << "_bucket" << render_labels(labels, "le", "+Inf") << ' ' << counts.back() << '\n';
      os << name << "_sum" << render_labels(labels) << ' ' << format_value(h->sum()) << '\n';
      os << name << "_count" << render_labels(labels) << ' ' << h->count() << '\n';
    }
  }
  return os.str();
}

std::string format_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == std::floor(v) && std::fabs(v) < 1e15) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%.0f", v);
    return buf;
  }
  char buf[40];
  std::snprintf(buf, sizeof(buf), "%.17g", v);
  return buf;
}

std::string escape_label_value(const std::string& v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

}  // namespace kiln::metrics
