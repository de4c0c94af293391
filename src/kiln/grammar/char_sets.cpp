#include "kiln/grammar/char_sets.h"

#include <algorithm>

namespace kiln::grammar {

size_t decode_utf8(std::string_view s, size_t pos, uint32_t* cp) {
  auto byte = [&](size_t i) { return static_cast<uint8_t>(s[i]); };
  if (pos >= s.size()) return 0;
  uint8_t b0 = byte(pos);
  size_t len = 0;
  uint32_t v = 0;
  uint32_t min = 0;
  if (b0 < 0x80) {
    *cp = b0;
    return 1;
  } else if ((b0 & 0xE0) == 0xC0) {
    len = 2, v = b0 & 0x1F, min = 0x80;
  } else if ((b0 & 0xF0) == 0xE0) {
    len = 3, v = b0 & 0x0F, min = 0x800;
  } else if ((b0 & 0xF8) == 0xF0) {
    len = 4, v = b0 & 0x07, min = 0x10000;
  } else {
    return 0;
  }
  if (pos + len > s.size()) return 0;
  for (size_t i = 1; i < len; ++i) {
    uint8_t b = byte(pos + i);
    if ((b & 0xC0) != 0x80) return 0;
    v = (v << 6) | (b & 0x3F);
  }
  if (v < min || v > kMaxCodePoint || (v >= 0xD800 && v <= 0xDFFF)) return 0;
  *cp = v;
  return len;
}

std::vector<CharRange> digit_ranges() { return {{'0', '9'}}; }

std::vector<CharRange> word_ranges() { return {{'0', '9'}, {'A', 'Z'}, {'_', '_'}, {'a', 'z'}}; }

std::vector<CharRange> space_ranges() {
  return {{0x09, 0x0D}, {0x20, 0x20},     {0xA0, 0xA0},     {0x1680, 0x1680}, {0x2000, 0x200A},
          {0x2028, 0x2029}, {0x202F, 0x202F}, {0x205F, 0x205F}, {0x3000, 0x3000}, {0xFEFF, 0xFEFF}};
}

std::vector<CharRange> line_terminator_ranges() { return {{'\n', '\n'}, {'\r', '\r'}, {0x2028, 0x2029}}; }

std::vector<CharRange> add_ascii_case(std::vector<CharRange> ranges) {
  size_t n = ranges.size();
  for (size_t i = 0; i < n; ++i) {
    CharRange r = ranges[i];
    uint32_t lo = std::max<uint32_t>(r.lo, 'A'), hi = std::min<uint32_t>(r.hi, 'Z');
    if (lo <= hi) ranges.push_back({lo + 32, hi + 32});
    lo = std::max<uint32_t>(r.lo, 'a'), hi = std::min<uint32_t>(r.hi, 'z');
    if (lo <= hi) ranges.push_back({lo - 32, hi - 32});
  }
  return normalize_ranges(std::move(ranges));
}

}  // namespace kiln::grammar
