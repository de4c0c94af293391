// The lexemes of the JSON Schema compiler as regular expressions: JSON strings (any, bounded in
// length, or constrained by a pattern on their decoded value), numbers and integers in ranges,
// multiples, and the `format`s. Internal to json_schema*.cpp.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/core/status.h"
#include "kiln/grammar/grammar.h"
#include "kiln/grammar/json_value.h"

namespace kiln::grammar::jsonlex {

// One character of a JSON string's content, as written: a raw character (not `"`, `\` or a
// control character) or any escape (a surrogate pair of \u escapes counts as one character).
RegexId string_char(RegexPool& p);
// A whole JSON string of min..max characters (max may be kUnbounded), quotes included.
RegexId string_of_length(RegexPool& p, uint32_t min, uint32_t max);

// `decoded` matches decoded string values; the result matches their canonical JSON encodings
// (without quotes): raw characters except `"`, `\` and control characters, which are escaped as
// \" \\ \b \f \n \r \t or \u00xx. Other encodings of the same value (\/, \u0041) are not accepted.
RegexId encode_canonical(RegexPool& p, RegexId decoded);

// The least and greatest number of code points of the strings `r` matches (max kUnbounded when
// unbounded). An empty language gives min > max.
struct LengthBounds {
  uint64_t min = 0;
  uint64_t max = 0;
};
LengthBounds length_bounds(const RegexPool& p, RegexId r);

// A regex for strings of `r` that have min..max code points. Exact where one part of `r` varies
// in length ([a-z]+ with maxLength 8 -> [a-z]{1,8}); where several do (.*@.* with maxLength 64)
// each gets a share of the length, which keeps a subset of the strings, all of them valid, and
// `*exact` is set to false.
RegexId fit_length(RegexPool& p, RegexId r, uint64_t min, uint64_t max, bool* exact);

// Canonically encoded string contents (no quotes) whose decoded value is none of `values`.
RegexId canonical_not_in(RegexPool& p, const std::vector<std::string>& values);

// A number bound: the value and whether it is exclusive.
struct Bound {
  Decimal value;
  bool exclusive = false;
};

// JSON numbers / integers between optional bounds. Integers are written as digits only; numbers
// with a bound have no exponent (kiln writes them as digits and an optional fraction). Bounds must
// be integers for numbers (else kInvalidArgument) and fit in 18 digits.
// `fraction_digits`: for numbers, at most this many digits after the point (multipleOf 10^-k);
// kUnbounded for no limit.
Result<RegexId> number_in_range(RegexPool& p, bool integer, const std::optional<Bound>& lo,
                                const std::optional<Bound>& hi, uint32_t fraction_digits);
// Non-negative or all integers that are multiples of k (k > 1 dividing a power of ten up to
// 10^4, else kInvalidArgument); `nonnegative` restricts to >= 0.
Result<RegexId> integer_multiple_of(RegexPool& p, int64_t k, bool nonnegative);
// Any JSON number (RFC 8259 grammar).
RegexId any_number(RegexPool& p);

// A `format`'s decoded value (date-time, date, time, duration, email, uuid, uri, uri-reference,
// ipv4, ipv6, hostname); kNotFound when kiln has no regex for it.
Result<RegexId> format_regex(RegexPool& p, std::string_view format);

}  // namespace kiln::grammar::jsonlex
