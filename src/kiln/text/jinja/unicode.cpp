#include "kiln/text/jinja/unicode.h"

namespace kiln::text::jinja {

char32_t utf8_next(std::string_view s, size_t* pos) {
  size_t i = *pos;
  auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) {
    *pos = i + 1;
    return b0;
  }
  int len = b0 >= 0xF0 ? 4 : b0 >= 0xE0 ? 3 : b0 >= 0xC0 ? 2 : 0;
  if (len == 0 || b0 > 0xF4 || i + len > s.size()) {
    *pos = i + 1;
    return b0;
  }
  char32_t cp = b0 & (0x7F >> len);
  for (int k = 1; k < len; ++k) {
    auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xC0) != 0x80) {
      *pos = i + 1;
      return b0;
    }
    cp = (cp << 6) | (b & 0x3F);
  }
  *pos = i + len;
  return cp;
}

void utf8_append(std::string* out, char32_t cp) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

std::vector<char32_t> utf8_decode(std::string_view s) {
  std::vector<char32_t> out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) out.push_back(utf8_next(s, &i));
  return out;
}

std::string utf8_encode(const std::vector<char32_t>& cps) {
  std::string out;
  out.reserve(cps.size());
  for (char32_t c : cps) utf8_append(&out, c);
  return out;
}

size_t utf8_length(std::string_view s) {
  size_t n = 0;
  for (size_t i = 0; i < s.size();) {
    utf8_next(s, &i);
    ++n;
  }
  return n;
}

bool is_ascii(std::string_view s) {
  for (char c : s)
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  return true;
}

std::vector<size_t> utf8_offsets(std::string_view s) {
  std::vector<size_t> out;
  out.reserve(s.size() + 1);
  for (size_t i = 0; i < s.size();) {
    out.push_back(i);
    utf8_next(s, &i);
  }
  out.push_back(s.size());
  return out;
}

bool py_isspace(char32_t c) {
  if (c <= 0x20) return c == 0x20 || (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x1F);
  switch (c) {
    case 0x85: case 0xA0: case 0x1680: case 0x2028: case 0x2029: case 0x202F: case 0x205F:
    case 0x3000:
      return true;
    default:
      return c >= 0x2000 && c <= 0x200A;
  }
}

namespace {

// Case pairs outside ASCII that differ by a fixed offset over a range, with an optional
// alternate-position rule (Latin Extended-A pairs letters as even upper / odd lower).
struct CaseRange {
  char32_t lo, hi;  // upper-case range
  int delta;        // lower = upper + delta; delta 1 means pairs (upper, lower) from lo on
};

constexpr CaseRange kCaseRanges[] = {
    {0x00C0, 0x00D6, 32}, {0x00D8, 0x00DE, 32}, {0x0100, 0x012F, 1},
    {0x0132, 0x0137, 1},   {0x0139, 0x0148, 1},  {0x014A, 0x0177, 1},
    {0x0179, 0x017E, 1},  {0x0391, 0x03A1, 32}, {0x03A3, 0x03AB, 32},
    {0x0400, 0x040F, 80}, {0x0410, 0x042F, 32}, {0x0460, 0x0481, 1},
    {0x048A, 0x04BF, 1},   {0x04D0, 0x052F, 1},   {0x0531, 0x0556, 48},
    {0x1E00, 0x1E95, 1},   {0x1EA0, 0x1EFF, 1},   {0xFF21, 0xFF3A, 32},
};

bool in_upper_range(const CaseRange& r, char32_t c) {
  if (c < r.lo || c > r.hi) return false;
  if (r.delta != 1) return true;
  return ((c - r.lo) % 2) == 0;
}

}  // namespace

char32_t py_lower(char32_t c) {
  if (c < 0x80) return (c >= 'A' && c <= 'Z') ? c + 32 : c;
  for (const auto& r : kCaseRanges)
    if (in_upper_range(r, c)) return c + r.delta;
  return c;
}

char32_t py_upper(char32_t c) {
  if (c < 0x80) return (c >= 'a' && c <= 'z') ? c - 32 : c;
  if (c == 0xFF) return 0x178;
  if (c == 0xB5) return 0x39C;
  if (c == 0x3C2) return 0x3A3;  // final sigma
  for (const auto& r : kCaseRanges) {
    if (c < r.lo + r.delta || c > r.hi + r.delta) continue;
    char32_t u = c - r.delta;
    if (in_upper_range(r, u)) return u;
  }
  return c;
}

bool py_is_upper(char32_t c) { return py_lower(c) != c; }
bool py_is_lower(char32_t c) { return py_upper(c) != c || c == 0xDF; }

bool py_isprintable(char32_t c) {
  if (c < 0x20 || c == 0x7F) return false;
  if (c < 0x7F) return true;
  if (c >= 0x80 && c <= 0xA0) return false;
  if (c == 0xAD) return false;
  if (c >= 0x2000 && c <= 0x200F) return false;
  if (c >= 0x2028 && c <= 0x202F) return false;
  if (c >= 0x205F && c <= 0x206F) return false;
  if (c == 0x3000 || c == 0xFEFF || c == 0x1680 || c == 0x180E) return false;
  if (c >= 0xD800 && c <= 0xF8FF) return false;  // surrogates and private use
  if (c >= 0xFFF0 && c <= 0xFFFB) return false;
  if (c == 0xFFFE || c == 0xFFFF) return false;
  if (c >= 0xE0000) return false;  // tags, variation selectors supplement, private use planes
  return c <= 0x10FFFF;
}

bool py_isalnum(char32_t c) {
  if (c < 0x80) return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
  // Letters of the scripts the case table knows, plus CJK and other scripts as letters: Python's
  // title() treats them as cased or uncased letters; here only the cased/uncased split matters.
  return !py_isspace(c) && py_isprintable(c) && !(c >= 0x2000 && c <= 0x2BFF) &&
         !(c >= 0x3000 && c <= 0x303F) && !(c >= 0xFF00 && c <= 0xFF20) && c != 0xD7 && c != 0xF7 &&
         !(c >= 0xA1 && c <= 0xBF);
}

std::string py_str_upper(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    char32_t c = utf8_next(s, &i);
    if (c == 0xDF) {
      out += "SS";
      continue;
    }
    utf8_append(&out, py_upper(c));
  }
  return out;
}

std::string py_str_lower(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) utf8_append(&out, py_lower(utf8_next(s, &i)));
  return out;
}

}  // namespace kiln::text::jinja
