// A reader for the subset of TOML that kiln.toml uses: comments, [tables], `key = value` with
// strings (basic and literal), integers, floats, booleans and one-line arrays of those. Values
// come back as the text a command-line flag would take, so settings from the file go through
// the same parsing and validation as flags.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/core/status.h"

namespace kiln::http {

struct TomlValue {
  std::vector<std::string> items;  // one for a scalar, each element for an array
  bool is_array = false;
  int line = 0;
};

// Keys inside a table are "table.key". Errors name `source` and the line.
Result<std::map<std::string, TomlValue>> parse_toml(std::string_view text, std::string_view source);
Result<std::map<std::string, TomlValue>> load_toml(const std::filesystem::path& path);

}  // namespace kiln::http
