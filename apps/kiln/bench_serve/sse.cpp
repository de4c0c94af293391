#include "bench_serve/sse.h"

#include <algorithm>

#include "kiln/core/str.h"

namespace kiln::bench_serve {

Status SseParser::feed(std::string_view bytes, std::vector<SseEvent>* out) {
  if (at_start_ && !bytes.empty()) {
    // The BOM may itself be split across pieces; wait until three bytes (or a mismatch) are seen.
    static constexpr std::string_view kBom = "\xEF\xBB\xBF";
    std::string probe = line_ + std::string(bytes.substr(0, kBom.size()));
    size_t n = std::min(probe.size(), kBom.size());
    if (probe.compare(0, n, kBom.substr(0, n)) == 0) {
      if (probe.size() < kBom.size()) {
        line_ = probe;
        return Status::ok();
      }
      bytes.remove_prefix(kBom.size() - line_.size());
      line_.clear();
    }
    at_start_ = false;
  }
  for (char c : bytes) {
    if (after_cr_) {
      after_cr_ = false;
      if (c == '\n') continue;
    }
    if (c == '\r' || c == '\n') {
      after_cr_ = c == '\r';
      process_line(line_, out);
      line_.clear();
      continue;
    }
    if (line_.size() >= kMaxLineBytes) {
      return data_loss(str_cat("event stream line longer than ", kMaxLineBytes, " bytes"));
    }
    line_.push_back(c);
  }
  return Status::ok();
}

void SseParser::process_line(std::string_view line, std::vector<SseEvent>* out) {
  if (line.empty()) {
    if (has_data_) {
      if (!data_.empty() && data_.back() == '\n') data_.pop_back();
      out->push_back(SseEvent{std::move(event_), std::move(data_)});
    }
    data_.clear();
    event_.clear();
    has_data_ = false;
    return;
  }
  if (line.front() == ':') return;  // comment (servers use these as keep-alive pings)
  std::string_view field = line;
  std::string_view value;
  if (size_t colon = line.find(':'); colon != std::string_view::npos) {
    field = line.substr(0, colon);
    value = line.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  }
  if (field == "data") {
    data_.append(value);
    data_.push_back('\n');
    has_data_ = true;
  } else if (field == "event") {
    event_ = std::string(value);
  }
  // `id` and `retry` matter only to reconnecting browsers; a benchmark never reconnects.
}

}  // namespace kiln::bench_serve
