// Character sets and UTF-8 decoding shared by the text front ends (regex, GBNF, Lark).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "kiln/grammar/grammar.h"

namespace kiln::grammar {

// Decodes the code point at `s[pos]`; returns its length in bytes, 0 when the bytes there are not
// well-formed UTF-8 (overlong, surrogate, truncated, over U+10FFFF).
size_t decode_utf8(std::string_view s, size_t pos, uint32_t* cp);

// ECMAScript's classes: \d, \w (ASCII, no i/u-case folding), \s (WhiteSpace and LineTerminator,
// the Unicode space separators included), and the line terminators `.` excludes.
std::vector<CharRange> digit_ranges();
std::vector<CharRange> word_ranges();
std::vector<CharRange> space_ranges();
std::vector<CharRange> line_terminator_ranges();

// `ranges` plus the other case of every ASCII letter in them.
std::vector<CharRange> add_ascii_case(std::vector<CharRange> ranges);

}  // namespace kiln::grammar
