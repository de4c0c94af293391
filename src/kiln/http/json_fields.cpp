#include "kiln/http/json_fields.h"

#include <algorithm>
#include <limits>
#include <unordered_map>
#include <vector>

#include "kiln/core/str.h"
#include "kiln/http/openai_request.h"

namespace kiln::http {

namespace jinja = text::jinja;

namespace {

// nlohmann's ordered_map is a vector of pairs whose insert searches it linearly; the builder
// appends to the vector itself and finds repeated keys with an index instead.
using ObjectItems = Json::object_t::Container;

// Objects up to this many keys look for a repeated key by scanning; larger ones build an index.
constexpr size_t kScanKeys = 16;

// A SAX handler that builds the document (what nlohmann's own DOM parser does, in linear time),
// holds it to the limits of request_limits.h and knows where in the document it is, so that an
// error can name the parameter.
class DomBuilder {
 public:
  explicit DomBuilder(Json* root) : root_(root) {}

  bool null() { return put(Json(nullptr)) != nullptr; }
  bool boolean(bool v) { return put(Json(v)) != nullptr; }
  bool number_integer(Json::number_integer_t v) { return put(Json(v)) != nullptr; }
  bool number_unsigned(Json::number_unsigned_t v) { return put(Json(v)) != nullptr; }
  bool number_float(Json::number_float_t v, const Json::string_t&) { return put(Json(v)) != nullptr; }
  bool string(Json::string_t& v) { return put(Json(std::move(v))) != nullptr; }
  bool binary(Json::binary_t&) { return fail(malformed_json_error("binary values are not JSON.")); }
  bool start_object(size_t) { return open(Json::value_t::object); }
  bool start_array(size_t) { return open(Json::value_t::array); }
  bool end_object() { return close(); }
  bool end_array() { return close(); }

  bool key(Json::string_t& k) {
    Frame& f = stack_.back();
    if (++f.keys > kMaxJsonObjectKeys) {
      return fail(located_error(path(false), str_cat("an object may hold at most ", kMaxJsonObjectKeys, " keys.")));
    }
    ObjectItems& items = object_items(f);
    if (auto at = find_key(f, items, k)) {
      f.current = *at;  // a repeated key: its value is replaced where it stands
      return true;
    }
    if (!f.index.empty()) f.index.emplace(k, items.size());
    items.emplace_back(std::move(k), Json());
    f.current = items.size() - 1;
    return true;
  }

  bool parse_error(size_t, const std::string& token, const Json::exception& ex) {
    if (ex.id == kNumberOverflow) {
      return fail(located_error(path(true),
                                str_cat("the number ", echo_value(token, 32), " does not fit a 64-bit float.")));
    }
    // nlohmann's message starts "[json.exception.parse_error.101] parse error at ..." and quotes
    // the last token read, which may be a whole (long) string.
    std::string what = ex.what();
    auto start = what.find("] ");
    std::string detail = start == std::string::npos ? what : what.substr(start + 2);
    if (token.size() > kMaxEchoBytes) {
      auto at = detail.find(token);
      if (at != std::string::npos) detail.replace(at, token.size(), echo_value(token));
    }
    return fail(malformed_json_error(echo_value(detail, kMaxErrorMessageBytes / 2)));
  }

  std::optional<ApiError> take_error() { return std::move(error_); }

 private:
  static constexpr int kNumberOverflow = 406;  // json.exception.out_of_range.406

  struct Frame {
    Json* value = nullptr;  // the open array or object
    size_t keys = 0;        // objects: keys read, repeats included
    size_t current = 0;     // objects: the item the last key names
    std::unordered_map<std::string, size_t> index;  // objects past kScanKeys keys: key -> item
  };

  static ObjectItems& object_items(Frame& f) { return f.value->get_ref<Json::object_t&>(); }
  static const ObjectItems& object_items(const Frame& f) { return f.value->get_ref<const Json::object_t&>(); }

  static std::optional<size_t> find_key(Frame& f, const ObjectItems& items, const std::string& k) {
    if (items.size() <= kScanKeys) {
      for (size_t i = 0; i < items.size(); ++i) {
        if (items[i].first == k) return i;
      }
      return std::nullopt;
    }
    if (f.index.empty()) {
      f.index.reserve(items.size() * 2);
      for (size_t i = 0; i < items.size(); ++i) f.index.emplace(items[i].first, i);
    }
    auto it = f.index.find(k);
    if (it == f.index.end()) return std::nullopt;
    return it->second;
  }

  // Places a value where the document is: the root, the end of the open array, or the open
  // object's current key. Returns where it went, or nullptr past a limit.
  Json* put(Json&& v) {
    if (++values_ > kMaxJsonValues) {
      fail(located_error("", str_cat("the request body holds more than ", kMaxJsonValues, " JSON values.")));
      return nullptr;
    }
    if (stack_.empty()) {
      *root_ = std::move(v);
      return root_;
    }
    Frame& f = stack_.back();
    if (f.value->is_array()) {
      auto& arr = f.value->get_ref<Json::array_t&>();
      if (arr.size() >= kMaxJsonArrayItems) {
        fail(located_error(path(false), str_cat("an array may hold at most ", kMaxJsonArrayItems, " items.")));
        return nullptr;
      }
      arr.push_back(std::move(v));
      return &arr.back();
    }
    Json& slot = object_items(f)[f.current].second;
    slot = std::move(v);
    return &slot;
  }

  bool open(Json::value_t type) {
    if (stack_.size() >= static_cast<size_t>(kMaxJsonDepth)) {
      return fail(located_error(path(true), str_cat("the request body nests deeper than ", kMaxJsonDepth, " levels.")));
    }
    Json* v = put(Json(type));
    if (v == nullptr) return false;
    stack_.emplace_back();
    stack_.back().value = v;
    return true;
  }

  bool close() {
    stack_.pop_back();
    return true;
  }

  // Where the parser is, as OpenAI names parameters: "max_tokens", "messages[2].content".
  // `pending`: include the value being read in the innermost container (else: that container).
  std::string path(bool pending) const {
    std::string p;
    for (size_t i = 0; i < stack_.size(); ++i) {
      const Frame& f = stack_[i];
      const bool innermost = i + 1 == stack_.size();
      if (innermost && !pending) break;
      if (f.value->is_array()) {
        // An outer array's open child is its last item; the innermost one's is not added yet.
        const size_t n = f.value->size();
        p += str_cat("[", innermost ? n : n - 1, "]");
      } else if (f.keys > 0) {
        if (!p.empty()) p += '.';
        p += echo_value(object_items(f)[f.current].first);
      }
    }
    return echo_value(p);
  }

  // A 400 "invalid_value" naming `param`, or the body when there is no parameter to name.
  static ApiError located_error(const std::string& param, const std::string& message) {
    if (param.empty()) return error_with_status(400, "Invalid request body: " + message, "invalid_value");
    return invalid_param(param, message);
  }

  bool fail(ApiError e) {
    if (!error_) error_ = std::move(e);
    return false;
  }

  Json* root_;
  std::vector<Frame> stack_;
  size_t values_ = 0;
  std::optional<ApiError> error_;
};

}  // namespace

std::optional<ApiError> parse_json_value(std::string_view text, Json* out) {
  DomBuilder builder(out);
  if (Json::sax_parse(text, &builder)) return std::nullopt;
  auto e = builder.take_error();
  return e ? std::move(e) : malformed_json_error("the parser stopped.");
}

std::optional<ApiError> parse_json_body(std::string_view body, Json* out) {
  if (!is_valid_utf8(body)) {
    ApiError e = error_with_status(400, "The request body is not valid UTF-8.", "invalid_encoding");
    return e;
  }
  if (auto e = parse_json_value(body, out)) return e;
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
      // A JSON object's keys are distinct, so the items go in as they are (DictData::set would
      // search for each key: quadratic in the keys of a large object).
      jinja::DictData d;
      d.items.reserve(j.size());
      for (auto it = j.begin(); it != j.end(); ++it) {
        d.items.emplace_back(jinja::Value(it.key()), json_to_value(it.value()));
      }
      return jinja::Value::dict(std::move(d));
    }
    default: return jinja::Value(nullptr);
  }
}

std::optional<ApiError> content_text(const Json& content, const std::string& param, std::string_view array_what,
                                     std::initializer_list<std::string_view> text_types, const OtherPart& other,
                                     std::string* out) {
  if (content.is_string()) {
    *out = content.get<std::string>();
    return std::nullopt;
  }
  if (!content.is_array()) return invalid_type(param, str_cat("a string or an array of ", array_what), json_type_phrase(content));
  out->clear();
  for (size_t i = 0; i < content.size(); ++i) {
    const Json& p = content[i];
    const std::string pp = str_cat(param, "[", i, "]");
    if (!p.is_object()) return invalid_type(pp, "an object", json_type_phrase(p));
    auto type = p.find("type");
    const std::string t = type != p.end() && type->is_string() ? type->get<std::string>() : "";
    if (std::find(text_types.begin(), text_types.end(), t) == text_types.end()) {
      if (auto e = other(p, t, pp, out)) return e;
      continue;
    }
    auto tx = p.find("text");
    if (tx == p.end() || !tx->is_string()) {
      return invalid_type(pp + ".text", "a string", tx == p.end() ? "nothing" : json_type_phrase(*tx));
    }
    if (!out->empty()) *out += "\n";
    *out += tx->get<std::string>();
  }
  return std::nullopt;
}

}  // namespace kiln::http
