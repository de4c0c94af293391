// Small string helpers used across layers.
#pragma once

#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace kiln {

// str_cat("a", 1, 'b', 2.5) -> "a1b2.5"
template <typename... Args>
std::string str_cat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}

std::vector<std::string> split(std::string_view s, char sep);
std::string_view trim(std::string_view s);
bool starts_with(std::string_view s, std::string_view prefix);
bool ends_with(std::string_view s, std::string_view suffix);
// Human-readable byte count: "1.5 GiB".
std::string format_bytes(double bytes);
// Parses "512M", "2G", "1.5GiB", "1024" (bytes). Returns false when malformed.
bool parse_bytes(std::string_view s, long long* out);
// True when `s` is valid UTF-8.
bool is_valid_utf8(std::string_view s);

}  // namespace kiln
