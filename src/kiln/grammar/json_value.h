// A small JSON reader for schema text: the grammar layer sits below http/, where JSON library types
// live (DESIGN.md §1), so it reads schemas itself. Objects keep their keys in document order (a
// schema's declared property order is the order of the output).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "kiln/core/status.h"

namespace kiln::grammar {

struct JsonMember;

struct JsonValue {
  enum class Kind : uint8_t { kNull, kBool, kNumber, kString, kArray, kObject };
  Kind kind = Kind::kNull;
  bool boolean = false;
  std::string text;  // a string's decoded value, or a number's source text
  std::vector<JsonValue> items;
  std::vector<JsonMember> members;  // (a std::pair of an incomplete type is not allowed)

  bool is_object() const { return kind == Kind::kObject; }
  bool is_array() const { return kind == Kind::kArray; }
  bool is_string() const { return kind == Kind::kString; }
  bool is_number() const { return kind == Kind::kNumber; }
  bool is_bool() const { return kind == Kind::kBool; }
  const JsonValue* find(std::string_view key) const;  // null when absent or not an object
};

struct JsonMember {
  std::string first;
  JsonValue second;
};

// Parses one JSON document (RFC 8259). Duplicate keys, nesting deeper than `max_depth`, invalid
// UTF-8 and lone surrogate escapes are errors.
Result<JsonValue> parse_json(std::string_view text, size_t max_depth);

// The canonical compact form: no whitespace, members in their order, strings with only `"`, `\`
// and control characters escaped (\b \f \n \r \t, else \u00xx), numbers as written.
std::string canonical_json(const JsonValue& v);
// Appends the canonical encoding of a string's content (without quotes).
void append_canonical_string(std::string& out, std::string_view utf8);

// JSON Schema equality: numbers by value (1 == 1.0), objects regardless of member order.
bool json_equal(const JsonValue& a, const JsonValue& b);

// An exact decimal: (-1)^negative * digits * 10^exponent, `digits` without leading or trailing
// zeros (empty for zero), so equal values have equal representations.
struct Decimal {
  bool negative = false;
  std::string digits;
  int64_t exponent = 0;
  bool is_zero() const { return digits.empty(); }
  bool is_integer() const { return digits.empty() || exponent >= 0; }
  friend bool operator==(const Decimal&, const Decimal&) = default;
};
// A JSON number's text to a Decimal (false when it is not a JSON number or its exponent is huge).
bool parse_decimal(std::string_view text, Decimal* out);
int compare_decimal(const Decimal& a, const Decimal& b);  // -1, 0, 1
// The integer value when it fits an int64_t.
bool decimal_to_int64(const Decimal& d, int64_t* out);

// A JSON pointer segment (RFC 6901: ~ -> ~0, / -> ~1).
std::string pointer_escape(std::string_view key);

}  // namespace kiln::grammar
