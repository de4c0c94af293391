// Minimal leveled logging to stderr. Thread-safe; one line per call.
#pragma once

#include <string_view>

#include "kiln/core/str.h"

namespace kiln {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3, kOff = 4 };

void set_log_level(LogLevel level);
LogLevel log_level();
// Parses "debug", "info", "warn", "error", "off".
bool parse_log_level(std::string_view s, LogLevel* out);
void log_line(LogLevel level, std::string_view message);
// Writes `line` as is (for structured access logs), regardless of level unless kOff.
void log_raw(std::string_view line);

template <typename... Args>
void log_debug(const Args&... a) { if (log_level() <= LogLevel::kDebug) log_line(LogLevel::kDebug, str_cat(a...)); }
template <typename... Args>
void log_info(const Args&... a) { if (log_level() <= LogLevel::kInfo) log_line(LogLevel::kInfo, str_cat(a...)); }
template <typename... Args>
void log_warn(const Args&... a) { if (log_level() <= LogLevel::kWarn) log_line(LogLevel::kWarn, str_cat(a...)); }
template <typename... Args>
void log_error(const Args&... a) { if (log_level() <= LogLevel::kError) log_line(LogLevel::kError, str_cat(a...)); }

}  // namespace kiln
