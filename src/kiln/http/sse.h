// Server-sent events as OpenAI sends them: "data: <json>\n\n", ": comment\n\n", "data: [DONE]\n\n".
#pragma once

#include <string>
#include <string_view>

namespace kiln::http {

// One `data:` event. JSON never holds a raw newline, but any that does is split over several
// data lines as the SSE format asks, so the event stays one event.
std::string sse_data(std::string_view payload);
// One named event ("event: <name>"), as the Responses and Messages APIs send them.
std::string sse_event(std::string_view name, std::string_view payload);
// A comment line that clients ignore; sent to keep idle proxies from closing a queued stream.
std::string sse_comment(std::string_view text);
inline std::string sse_done() { return "data: [DONE]\n\n"; }

}  // namespace kiln::http
