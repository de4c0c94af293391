#include "kiln/metrics/metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <stdexcept>

#include "kiln/core/log.h"
#include "kiln/core/str.h"

namespace kiln::metrics {
namespace {

void atomic_add(std::atomic<double>& a, double v) {
  double cur = a.load(std::memory_order_relaxed);
  while (!a.compare_exchange_weak(cur, cur + v, std::memory_order_relaxed)) {
  }
}

bool name_char(char c, bool first, bool colon) {
  const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':');
  return alpha || (!first && c >= '0' && c <= '9');
}

bool valid_name(std::string_view s, bool colon) {
  if (s.empty()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (!name_char(s[i], i == 0, colon)) return false;
  }
  return true;
}

[[noreturn]] void misuse(const std::string& what) { throw std::invalid_argument("metrics: " + what); }

// Escapes `v` for the text format: `quote` also escapes double quotes (label values, not HELP).
// Bytes that are not UTF-8 become U+FFFD, since a scraper rejects the whole page for one.
std::string escape(std::string_view v, bool quote) {
  const bool utf8 = is_valid_utf8(v);
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else if (quote && c == '"') out += "\\\"";
    else if (!utf8 && static_cast<unsigned char>(c) >= 0x80) out += "\xEF\xBF\xBD";
    else out += c;
  }
  return out;
}

std::string render_labels(const Labels& labels, const char* extra_name = nullptr, const std::string& extra_value = "") {
  if (labels.empty() && extra_name == nullptr) return "";
  std::string out = "{";
  for (const auto& [k, v] : labels) {
    if (out.size() > 1) out += ',';
    out += k + "=\"" + escape_label_value(v) + "\"";
  }
  if (extra_name != nullptr) {
    if (out.size() > 1) out += ',';
    out += std::string(extra_name) + "=\"" + escape_label_value(extra_value) + "\"";
  }
  return out + "}";
}

}  // namespace

void Counter::inc(double v) {
  if (!(v > 0)) return;  // a counter never goes down (NaN included)
  atomic_add(value_, v);
}

void Gauge::add(double v) { atomic_add(value_, v); }

Histogram::Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)) {
  std::erase_if(bounds_, [](double b) { return std::isnan(b) || std::isinf(b); });
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

Registry::Registry(size_t max_series_per_family) : max_series_(std::max<size_t>(1, max_series_per_family)) {}

Registry::Series& Registry::series_locked(const std::string& name, const std::string& help, Kind kind,
                                          const Labels& labels) {
  auto it = families_.find(name);
  if (it == families_.end()) {
    if (!valid_name(name, true)) misuse("invalid metric name '" + name + "'");
    const bool total = ends_with(name, "_total");
    if (kind == Kind::kCounter && !total) misuse("counter '" + name + "' must end in _total");
    if (kind != Kind::kCounter && total) misuse("'" + name + "' ends in _total but is not a counter");
    Family f;
    f.kind = kind;
    f.help = help;
    for (const auto& [k, v] : labels) {
      if (!valid_name(k, false) || starts_with(k, "__")) misuse("invalid label name '" + k + "' of " + name);
      if (kind == Kind::kHistogram && k == "le") misuse("histogram " + name + " cannot have a label 'le'");
      if (std::count(f.label_names.begin(), f.label_names.end(), k) > 0) misuse("label '" + k + "' twice in " + name);
      f.label_names.push_back(k);
    }
    it = families_.emplace(name, std::move(f)).first;
  }
  Family& f = it->second;
  if (f.kind != kind) misuse("'" + name + "' registered again as another type");
  bool same_names = labels.size() == f.label_names.size();
  for (size_t i = 0; same_names && i < labels.size(); ++i) same_names = labels[i].first == f.label_names[i];
  if (!same_names) misuse("'" + name + "' registered again with other label names");

  auto s = f.series.find(labels);
  if (s != f.series.end()) return s->second;
  if (f.series.size() + 1 < max_series_) return f.series[labels];  // one place stays for "other"
  // Full: every new label set shares one series, so the family stays bounded and keeps counting.
  Labels other = labels;
  for (auto& [k, v] : other) v = "other";
  if (!f.overflowed) {
    f.overflowed = true;
    log_warn("metrics: ", name, " reached ", max_series_, " series; further label values count as \"other\"");
  }
  return f.series[other];
}

Counter& Registry::counter(const std::string& name, const std::string& help, const Labels& labels) {
  std::lock_guard<std::mutex> lock(mu_);
  Series& s = series_locked(name, help, Kind::kCounter, labels);
  if (s.fn) misuse("'" + name + "' has a callback series with these labels");
  if (!s.counter) s.counter = std::make_unique<Counter>();
  return *s.counter;
}

Gauge& Registry::gauge(const std::string& name, const std::string& help, const Labels& labels) {
  std::lock_guard<std::mutex> lock(mu_);
  Series& s = series_locked(name, help, Kind::kGauge, labels);
  if (s.fn) misuse("'" + name + "' has a callback series with these labels");
  if (!s.gauge) s.gauge = std::make_unique<Gauge>();
  return *s.gauge;
}

Histogram& Registry::histogram(const std::string& name, const std::string& help, const std::vector<double>& bounds,
                               const Labels& labels) {
  std::lock_guard<std::mutex> lock(mu_);
  Series& s = series_locked(name, help, Kind::kHistogram, labels);
  if (!s.histogram) s.histogram = std::make_unique<Histogram>(bounds);
  return *s.histogram;
}

void Registry::gauge_fn(const std::string& name, const std::string& help, const Labels& labels,
                        std::function<double()> fn) {
  std::lock_guard<std::mutex> lock(mu_);
  Series& s = series_locked(name, help, Kind::kGauge, labels);
  if (s.gauge) misuse("'" + name + "' has a plain series with these labels");
  s.fn = std::move(fn);
}

void Registry::counter_fn(const std::string& name, const std::string& help, const Labels& labels,
                          std::function<double()> fn) {
  std::lock_guard<std::mutex> lock(mu_);
  Series& s = series_locked(name, help, Kind::kCounter, labels);
  if (s.counter) misuse("'" + name + "' has a plain series with these labels");
  s.fn = std::move(fn);
}

void Registry::remove_callbacks(const Labels& labels) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [name, f] : families_) {
    auto it = f.series.find(labels);
    if (it != f.series.end() && it->second.fn) f.series.erase(it);
  }
}

size_t Registry::series_count() const {
  std::lock_guard<std::mutex> lock(mu_);
  size_t n = 0;
  for (const auto& [name, f] : families_) n += f.series.size();
  return n;
}

std::string Registry::render() const {
  // Under the lock, take what each series needs; callbacks run after it is released, because
  // they read other layers' state under those layers' locks, and those layers register metrics
  // while holding them.
  struct Row {
    std::string labels;
    Labels label_set;  // histogram rows: the "le" label goes inside
    double value = 0;
    std::function<double()> fn;
    const Histogram* histogram = nullptr;  // never freed: only callback series are ever removed
  };
  struct Block {
    std::string head;
    std::string name;
    std::vector<Row> rows;
  };
  std::vector<Block> blocks;
  {
    std::lock_guard<std::mutex> lock(mu_);
    blocks.reserve(families_.size());
    for (const auto& [name, f] : families_) {
      const char* type = f.kind == Kind::kCounter ? "counter" : f.kind == Kind::kGauge ? "gauge" : "histogram";
      Block b;
      b.name = name;
      b.head = "# HELP " + name + ' ' + escape_help(f.help) + "\n# TYPE " + name + ' ' + type + '\n';
      b.rows.reserve(f.series.size());
      for (const auto& [labels, s] : f.series) {
        Row r;
        if (s.histogram) {
          r.histogram = s.histogram.get();
          r.label_set = labels;
        } else {
          r.labels = render_labels(labels);
          if (s.fn) r.fn = s.fn;
          else r.value = s.counter ? s.counter->value() : s.gauge ? s.gauge->value() : 0.0;
        }
        b.rows.push_back(std::move(r));
      }
      blocks.push_back(std::move(b));
    }
  }
  std::string out;
  for (const auto& b : blocks) {
    out += b.head;
    for (const auto& r : b.rows) {
      if (r.histogram != nullptr) {
        const Histogram& h = *r.histogram;
        auto counts = h.cumulative_counts();
        for (size_t i = 0; i < h.bounds().size(); ++i) {
          out += b.name + "_bucket" + render_labels(r.label_set, "le", format_value(h.bounds()[i])) + ' ' +
                 std::to_string(counts[i]) + '\n';
        }
        out += b.name + "_bucket" + render_labels(r.label_set, "le", "+Inf") + ' ' + std::to_string(counts.back()) + '\n';
        out += b.name + "_sum" + render_labels(r.label_set) + ' ' + format_value(h.sum()) + '\n';
        out += b.name + "_count" + render_labels(r.label_set) + ' ' + std::to_string(counts.back()) + '\n';
        continue;
      }
      out += b.name + r.labels + ' ' + format_value(r.fn ? r.fn() : r.value) + '\n';
    }
  }
  return out;
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

std::string escape_label_value(std::string_view v) { return escape(v, true); }

std::string escape_help(std::string_view v) { return escape(v, false); }

}  // namespace kiln::metrics
