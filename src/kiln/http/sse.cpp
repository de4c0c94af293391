#include "kiln/http/sse.h"

namespace kiln::http {

std::string sse_data(std::string_view payload) {
  std::string out;
  out.reserve(payload.size() + 8);
  out += "data: ";
  for (char c : payload) {
    if (c == '\n') out += "\ndata: ";
    else if (c != '\r') out += c;
  }
  out += "\n\n";
  return out;
}

std::string sse_event(std::string_view name, std::string_view payload) {
  std::string out = "event: ";
  out += name;
  out += '\n';
  return out + sse_data(payload);
}

std::string sse_comment(std::string_view text) {
  std::string out = ": ";
  for (char c : text) {
    if (c != '\n' && c != '\r') out += c;
  }
  out += "\n\n";
  return out;
}

}  // namespace kiln::http
