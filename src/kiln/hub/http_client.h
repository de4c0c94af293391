// GET over HTTP(S) with libcurl, as the Hub's client needs it: a small document into memory, or
// a file's bytes from an offset (a Range request) into a sink; redirects followed (the Hub sends
// file content from a CDN), a bearer token sent, a stalled transfer given up, and a cancel flag
// read while bytes flow. Any thread may call these; each call has its own connection.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "kiln/core/status.h"

namespace kiln::hub {

struct HttpOptions {
  // Sent as "Authorization: Bearer ..."; libcurl keeps it from hosts a redirect leads to, so a
  // token never reaches a CDN or another site.
  std::optional<std::string> token;
  int64_t connect_timeout_ms = 30000;
  // A transfer that moves no byte for this long fails (and is resumed by the caller's retry).
  int64_t stall_timeout_s = 60;
  std::string user_agent = "kiln";
  // Polled while bytes flow; true stops the transfer with kCancelled.
  std::function<bool()> cancelled;
};

// GETs `url` into memory, at most `max_bytes`. An HTTP error answers a Status that says what the
// status means for a Hub request (401/403: token; 404: not found).
Result<std::string> http_get_text(const std::string& url, const HttpOptions& options, size_t max_bytes);

// GETs `url` from byte `offset` ("Range: bytes=offset-" when offset > 0). `start` is called once,
// before any byte, with the offset the body starts at: `offset` when the server honoured the
// range, 0 when it sent the whole file. `sink` takes the bytes in order and returns false to stop
// (a sink's error ends the call with that error).
struct RangeSink {
  std::function<Status(int64_t start)> start;
  std::function<Status(const char* data, size_t n)> write;
};
Status http_get_range(const std::string& url, const HttpOptions& options, int64_t offset, const RangeSink& sink);

}  // namespace kiln::hub
