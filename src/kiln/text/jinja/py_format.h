// Python's text formatting as templates reach it: `fmt % args`, str.format, format specs and
// json.dumps (transformers' tojson filter).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "kiln/text/jinja/value.h"

namespace kiln::text::jinja {

// Python's `fmt % args` (args a tuple, a dict for %(name)s, or one value).
std::string percent_format(std::string_view fmt, const Value& args);
// Python's str.format(*args, **kwargs).
std::string str_format(std::string_view fmt, const CallArgs& args);
// Python's format(value, spec).
std::string format_value(const Value& v, std::string_view spec);

struct JsonOptions {
  bool ensure_ascii = false;
  std::optional<std::string> indent;  // None, or the text of one indentation level
  std::string item_separator = ", ";
  std::string key_separator = ": ";
  bool sort_keys = false;
};
// Python's json.dumps with those options; raises TypeError for values JSON cannot hold.
std::string json_dumps(const Value& v, const JsonOptions& options);

}  // namespace kiln::text::jinja
