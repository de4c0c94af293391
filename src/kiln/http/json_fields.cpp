#include "kiln/http/json_fields.h"

#include <limits>

#include "kiln/core/str.h"
#include "kiln/http/openai_request.h"

namespace kiln::http {

namespace jinja = text::jinja;

std::optional<ApiError> parse_json_body(std::string_view body, Json* out) {
  if (!is_valid_utf8(body)) {
    ApiError e = error_with_status(400, "The request body is not valid UTF-8.", "invalid_encoding");
    return e;
  }
  struct TooDeep {};
  try {
    *out = Json::parse(body, [](int depth, Json::parse_event_t, Json&) {
      if (depth > kMaxJsonDepth) throw TooDeep{};
      return true;
    });
  } catch (const TooDeep&) {
    return error_with_status(400, str_cat("The request body nests deeper than ", kMaxJsonDepth, " levels."));
  } catch (const Json::parse_error& e) {
    std::string what = e.what();
    // nlohmann's message starts "[json.exception.parse_error.101] parse error at ...".
    auto pos = what.find("] ");
    return malformed_json_error(pos == std::string::npos ? what : what.substr(pos + 2));
  }
  if (!out->is_object()) {
    return error_with_status(400, str_cat("The request body must be a JSON object, not ", json_type_phrase(*out), "."));
  }
  return std::nullopt;
}

ApiError malformed_json_error(const std::string& detail) {
  return error_with_status(400,
      str_cat("We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP "
              "library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON. ",
              "Parser: ", detail, ")"));
}

std::string json_type_phrase(const Json& j) {
  switch (j.type()) {
    case Json::value_t::string: return "a string";
    case Json::value_t::boolean: return "a boolean";
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned: return "an integer";
    case Json::value_t::number_float: return "a number";
    case Json::value_t::object: return "an object";
    case Json::value_t::array: return "an array";
    case Json::value_t::null: return "null";
    default: return "an unknown type";
  }
}

bool json_to_int(const Json& j, int64_t* out) {
  if (j.is_number_integer()) {
    if (j.is_number_unsigned() && j.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return false;
    }
    *out = j.get<int64_t>();
    return true;
  }
  if (j.is_number_float()) {
    double d = j.get<double>();
    if (!std::isfinite(d) || d != std::floor(d) || std::fabs(d) > 9.0e15) return false;
    *out = static_cast<int64_t>(d);
    return true;
  }
  return false;
}

std::optional<ApiError> read_bool(const Json& obj, const char* name, bool* out) {
  auto it = obj.find(name);
  if (it == obj.end() || it->is_null()) return std::nullopt;
  if (!it->is_boolean()) return invalid_type(name, "a boolean", json_type_phrase(*it));
  *out = it->get<bool>();
  return std::nullopt;
}

std::optional<ApiError> read_string(const Json& obj, const char* name, std::string* out) {
  auto it = obj.find(name);
  if (it == obj.end() || it->is_null()) return std::nullopt;
  if (!it->is_string()) return invalid_type(name, "a string", json_type_phrase(*it));
  *out = it->get<std::string>();
  return std::nullopt;
}

std::optional<ApiError> read_int(const Json& obj, const char* name, int64_t lo, int64_t hi,
                                 std::optional<int64_t>* out) {
  auto it = obj.find(name);
  if (it == obj.end() || it->is_null()) return std::nullopt;
  int64_t v = 0;
  if (!json_to_int(*it, &v)) {
    if (it->is_number()) return invalid_type(name, "an integer", "a number with a fraction");
    return invalid_type(name, "an integer", json_type_phrase(*it));
  }
  if (v < lo || v > hi) {
    if (hi == std::numeric_limits<int64_t>::max()) {
      return invalid_param(name, str_cat(v, " is less than the minimum of ", lo, "."));
    }
    return invalid_param(name, str_cat(v, " is not between ", lo, " and ", hi, "."));
  }
  *out = v;
  return std::nullopt;
}

std::optional<ApiError> read_number(const Json& obj, const char* name, double lo, double hi,
                                    std::optional<double>* out, bool lo_exclusive) {
  auto it = obj.find(name);
  if (it == obj.end() || it->is_null()) return std::nullopt;
  if (!it->is_number()) return invalid_type(name, "a number", json_type_phrase(*it));
  double v = it->get<double>();
  bool below = lo_exclusive ? v <= lo : v < lo;
  if (!std::isfinite(v) || below || v > hi) {
    return invalid_param(name, str_cat(it->dump(), " is not in the range ", lo_exclusive ? "(" : "[", lo, ", ", hi,
                                       "]."));
  }
  *out = v;
  return std::nullopt;
}

jinja::Value json_to_value(const Json& j) {
  switch (j.type()) {
    case Json::value_t::null: return jinja::Value(nullptr);
    case Json::value_t::boolean: return jinja::Value(j.get<bool>());
    case Json::value_t::number_integer: return jinja::Value(j.get<int64_t>());
    case Json::value_t::number_unsigned: {
      uint64_t u = j.get<uint64_t>();
      if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return jinja::Value(static_cast<double>(u));
      return jinja::Value(static_cast<int64_t>(u));
    }
    case Json::value_t::number_float: return jinja::Value(j.get<double>());
    case Json::value_t::string: return jinja::Value(j.get<std::string>());
    case Json::value_t::array: {
      std::vector<jinja::Value> items;
      items.reserve(j.size());
      for (const auto& e : j) items.push_back(json_to_value(e));
      return jinja::Value::list(std::move(items));
    }
    case Json::value_t::object: {
      std::vector<std::pair<std::string, jinja::Value>> items;
      items.reserve(j.size());
      for (auto it = j.begin(); it != j.end(); ++it) items.emplace_back(it.key(), json_to_value(it.value()));
      return jinja::Value::dict(std::move(items));
    }
    default: return jinja::Value(nullptr);
  }
}

}  // namespace kiln::http
