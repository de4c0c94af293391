// Typed reads of request fields with OpenAI-style errors (internal to http/: it exposes JSON).
#pragma once

#include <cmath>
#include <functional>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "kiln/http/errors.h"
#include "kiln/http/request_limits.h"
#include "kiln/text/jinja/value.h"

namespace kiln::http {

// Ordered: templates print tool schemas with tojson, and Python keeps the client's key order.
using Json = nlohmann::ordered_json;

// Parses JSON text in time linear in its size, within the limits of request_limits.h (depth,
// keys per object, items per array, values in all); a repeated key keeps its first position and
// its last value. Errors are 400s: malformed JSON, a limit passed (naming where), or a number
// too large for a double ("invalid_value" naming the parameter, e.g. 'max_tokens' or
// 'messages[0].content').
std::optional<ApiError> parse_json_value(std::string_view text, Json* out);

// Parses a request body: valid UTF-8, then parse_json_value, and the result must be an object.
std::optional<ApiError> parse_json_body(std::string_view body, Json* out);

// "a string", "an integer", "a number", "a boolean", "an object", "an array", "null".
std::string json_type_phrase(const Json& j);

// Each reader leaves *out untouched and returns nullopt when the field is absent or null (OpenAI
// treats null as omitted); returns the 400 when the field has the wrong type or range.
std::optional<ApiError> read_bool(const Json& obj, const char* name, bool* out);
std::optional<ApiError> read_string(const Json& obj, const char* name, std::string* out);
std::optional<ApiError> read_int(const Json& obj, const char* name, int64_t lo, int64_t hi,
                                 std::optional<int64_t>* out);
std::optional<ApiError> read_number(const Json& obj, const char* name, double lo, double hi,
                                    std::optional<double>* out, bool lo_exclusive = false);

// A whole-number JSON value (3 or 3.0, as OpenAI accepts; never 3.5 or "3").
bool json_to_int(const Json& j, int64_t* out);

// The text of a message's content: a string, or an array of typed parts (`array_what` names it in
// the error) whose "text" is joined by newlines where the part's "type" is one of `text_types`.
// Any other part goes to `other` (with its type, "" when absent, and its parameter path), which
// returns its 400 or adds what it has to *out.
using OtherPart =
    std::function<std::optional<ApiError>(const Json& part, const std::string& type, const std::string& param, std::string* out)>;
std::optional<ApiError> content_text(const Json& content, const std::string& param, std::string_view array_what,
                                     std::initializer_list<std::string_view> text_types, const OtherPart& other,
                                     std::string* out);

// JSON -> the chat template's values, with a bound on nesting.
text::jinja::Value json_to_value(const Json& j);

}  // namespace kiln::http
