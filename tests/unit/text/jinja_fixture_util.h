// Shared by the Jinja fixture tests: reading fixtures and turning their JSON into Values.
#pragma once

#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "kiln/core/file.h"
#include "kiln/text/jinja/template.h"

namespace kiln::text::testing {

using OrderedJson = nlohmann::ordered_json;

// The instant the fixtures pin strftime_now to (tools/make_template_fixtures.py FIXED_NOW).
constexpr std::time_t kFixedNow = 1721995200;

inline std::filesystem::path fixture_dir() {
  return std::filesystem::path(KILN_SOURCE_DIR) / "tests" / "fixtures" / "templates";
}

inline OrderedJson read_json(const std::filesystem::path& path) {
  auto text = read_file(path);
  if (!text.is_ok()) return OrderedJson();
  return OrderedJson::parse(*text, nullptr, /*allow_exceptions=*/false);
}

// Fixture JSON -> Value, keeping key order (the fixtures were written by Python's json).
inline jinja::Value to_value(const OrderedJson& j) {
  auto v = jinja::value_from_json(j.dump());
  return v.is_ok() ? *v : jinja::Value::undefined();
}

}  // namespace kiln::text::testing
