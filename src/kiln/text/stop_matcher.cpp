#include "kiln/text/stop_matcher.h"

#include "kiln/core/str.h"

namespace kiln::text {

Result<StopMatcher> StopMatcher::create(std::vector<std::string> stops) {
  for (size_t i = 0; i < stops.size(); ++i) {
    if (stops[i].empty()) return invalid_argument(str_cat("stop[", i, "] is empty"));
    if (!is_valid_utf8(stops[i])) return invalid_argument(str_cat("stop[", i, "] is not valid UTF-8"));
  }
  StopMatcher m;
  m.stops_ = std::move(stops);
  return m;
}

StopMatcher::Output StopMatcher::push(std::string_view delta) {
  Output out;
  if (stopped_) return out;
  held_.append(delta);
  // The earliest-ending match; held_ had none before this delta, so only new ones can appear.
  size_t best_start = std::string::npos, best_end = std::string::npos;
  int best = -1;
  for (size_t i = 0; i < stops_.size(); ++i) {
    const size_t at = held_.find(stops_[i]);
    if (at == std::string::npos) continue;
    const size_t end = at + stops_[i].size();
    if (end < best_end || (end == best_end && at < best_start)) {
      best_start = at;
      best_end = end;
      best = static_cast<int>(i);
    }
  }
  if (best >= 0) {
    out.text = held_.substr(0, best_start);
    out.stopped = true;
    out.stop_index = best;
    stopped_ = true;
    held_.clear();
    return out;
  }
  // Keep the longest tail that is a proper prefix of some stop: only it can still become one.
  size_t keep = 0;
  for (const std::string& s : stops_) {
    for (size_t k = std::min(s.size() - 1, held_.size()); k > keep; --k) {
      if (held_.compare(held_.size() - k, k, s, 0, k) == 0) {
        keep = k;
        break;
      }
    }
  }
  out.text = held_.substr(0, held_.size() - keep);
  held_.erase(0, held_.size() - keep);
  return out;
}

std::string StopMatcher::finish() {
  std::string rest;
  rest.swap(held_);
  return stopped_ ? std::string() : rest;
}

}  // namespace kiln::text
