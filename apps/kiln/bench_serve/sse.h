// Incremental parser for a text/event-stream body (the SSE framing OpenAI-compatible servers use
// for `stream: true`). Bytes arrive in arbitrary pieces; events come out whole.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/core/status.h"

namespace kiln::bench_serve {

struct SseEvent {
  std::string event;  // the `event:` field; empty for the default "message" type
  std::string data;   // `data:` lines joined with '\n'
};

class SseParser {
 public:
  // A single line longer than this is treated as a broken stream rather than buffered forever.
  static constexpr size_t kMaxLineBytes = 16u << 20;

  // Consumes `bytes` and appends every event completed by them to `out`.
  Status feed(std::string_view bytes, std::vector<SseEvent>* out);

  // True when data lines were read but the blank line that ends their event never came.
  bool has_pending_event() const { return has_data_ || !line_.empty(); }

 private:
  void process_line(std::string_view line, std::vector<SseEvent>* out);

  std::string line_;    // the current line, not yet terminated
  std::string data_;    // data of the current event, each line followed by '\n'
  std::string event_;   // event type of the current event
  bool has_data_ = false;
  bool after_cr_ = false;  // last byte was CR: a following LF belongs to the same line break
  bool at_start_ = true;   // a UTF-8 BOM may open the stream
};

}  // namespace kiln::bench_serve
