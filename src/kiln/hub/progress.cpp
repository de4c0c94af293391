#include "kiln/hub/progress.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "kiln/core/str.h"

namespace kiln::hub {

void RateMeter::add(double t_s, int64_t done_bytes) {
  samples_.emplace_back(t_s, done_bytes);
  while (samples_.size() > 2 && samples_.front().first < t_s - window_s_) samples_.pop_front();
}

double RateMeter::bytes_per_second() const {
  if (samples_.size() < 2) return 0.0;
  const double dt = samples_.back().first - samples_.front().first;
  if (dt <= 0) return 0.0;
  return std::max(0.0, static_cast<double>(samples_.back().second - samples_.front().second) / dt);
}

std::string format_eta(double seconds) {
  if (!(seconds >= 0) || !std::isfinite(seconds) || seconds > 99.0 * 3600) return "--:--";
  const auto s = static_cast<int64_t>(std::llround(seconds));
  char buf[32];
  if (s >= 3600) {
    std::snprintf(buf, sizeof(buf), "%lld:%02lld:%02lld", static_cast<long long>(s / 3600),
                  static_cast<long long>(s / 60 % 60), static_cast<long long>(s % 60));
  } else {
    std::snprintf(buf, sizeof(buf), "%lld:%02lld", static_cast<long long>(s / 60), static_cast<long long>(s % 60));
  }
  return buf;
}

namespace {
int percent(int64_t done, int64_t total) {
  if (total <= 0) return 100;
  return static_cast<int>(std::min<int64_t>(100, done * 100 / total));
}
std::string eta(int64_t done, int64_t total, double rate) {
  if (done >= total) return "0:00";
  return format_eta(rate > 0 ? static_cast<double>(total - done) / rate : -1.0);
}
}  // namespace

std::string progress_bar_line(int64_t done, int64_t total, double rate, int bar_width) {
  std::string bar;
  if (bar_width > 0) {
    const int filled = total <= 0 ? bar_width : static_cast<int>(static_cast<double>(bar_width) * static_cast<double>(done) / static_cast<double>(total));
    bar = "[" + std::string(static_cast<size_t>(std::clamp(filled, 0, bar_width)), '#') +
          std::string(static_cast<size_t>(bar_width - std::clamp(filled, 0, bar_width)), '.') + "]  ";
  }
  return str_cat(bar, format_bytes(static_cast<double>(done)), " / ", format_bytes(static_cast<double>(total)), "  ",
                 percent(done, total), "%  ", format_bytes(rate), "/s  ETA ", eta(done, total, rate));
}

std::string progress_plain_line(int64_t done, int64_t total, double rate) {
  return str_cat("pull: ", format_bytes(static_cast<double>(done)), " / ", format_bytes(static_cast<double>(total)), " (",
                 percent(done, total), "%), ", format_bytes(rate), "/s, ETA ", eta(done, total, rate));
}

}  // namespace kiln::hub
