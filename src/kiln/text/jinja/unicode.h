// UTF-8 and the few Unicode properties Python's str methods need (code-point indexing, whitespace,
// case mapping). Strings stay UTF-8 everywhere; these helpers give them Python's code-point view.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::text::jinja {

// Decodes one code point at s[*pos] and advances *pos. Invalid bytes decode as themselves (one
// byte each), so every input makes progress and nothing is lost when re-encoded by byte.
char32_t utf8_next(std::string_view s, size_t* pos);
void utf8_append(std::string* out, char32_t cp);
std::vector<char32_t> utf8_decode(std::string_view s);
std::string utf8_encode(const std::vector<char32_t>& cps);
// Number of code points (Python's len()).
size_t utf8_length(std::string_view s);
bool is_ascii(std::string_view s);
// Byte offsets of every code point start plus s.size() at the end.
std::vector<size_t> utf8_offsets(std::string_view s);

// Python's str.isspace() for one code point.
bool py_isspace(char32_t c);
char32_t py_upper(char32_t c);
char32_t py_lower(char32_t c);
bool py_is_upper(char32_t c);
bool py_is_lower(char32_t c);
// Characters Python's repr() prints as they are (str.isprintable()).
bool py_isprintable(char32_t c);
bool py_isalnum(char32_t c);

std::string py_str_upper(std::string_view s);
std::string py_str_lower(std::string_view s);

}  // namespace kiln::text::jinja
