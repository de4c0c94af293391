#include "kiln/text/utf8.h"

namespace kiln::text {
namespace {

// How many bytes of the sequence starting at s[i] are a valid prefix of some well-formed
// sequence, and how long that sequence must be. valid == need means complete.
struct Prefix {
  size_t valid;
  size_t need;
};

Prefix valid_prefix(std::string_view s, size_t i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) return {1, 1};
  size_t need;
  unsigned char lo = 0x80, hi = 0xBF;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 3;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 4;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    return {0, 1};
  }
  size_t n = 1;
  while (n < need && i + n < s.size()) {
    const auto b = static_cast<unsigned char>(s[i + n]);
    if (n == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) break;
    ++n;
  }
  return {n, need};
}

}  // namespace

size_t utf8_sequence_length(std::string_view s, size_t i) {
  const Prefix p = valid_prefix(s, i);
  return p.valid == p.need ? p.need : 0;
}

char32_t next_code_point(std::string_view s, size_t& i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) {
    ++i;
    return b0;
  }
  const size_t n = utf8_char_length(b0);
  char32_t cp = n == 2 ? (b0 & 0x1F) : n == 3 ? (b0 & 0x0F) : (b0 & 0x07);
  for (size_t k = 1; k < n && i + k < s.size(); ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
  i += n;
  return cp;
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

void append_utf8_lossy(std::string& out, std::string_view bytes) {
  size_t i = 0;
  while (i < bytes.size()) {
    size_t run = i;  // copy valid runs in one go
    while (run < bytes.size()) {
      if (static_cast<unsigned char>(bytes[run]) < 0x80) {
        ++run;
        continue;
      }
      const Prefix p = valid_prefix(bytes, run);
      if (p.valid != p.need) break;
      run += p.need;
    }
    out.append(bytes.substr(i, run - i));
    i = run;
    if (i < bytes.size()) {
      const Prefix p = valid_prefix(bytes, i);
      out.append(kReplacementUtf8);
      i += p.valid == 0 ? 1 : p.valid;
    }
  }
}

std::string utf8_lossy(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  append_utf8_lossy(out, bytes);
  return out;
}

void Utf8LossyStream::push(std::string_view bytes, std::string& out) {
  pending_.append(bytes);
  // Keep back the last sequence if it is a valid but incomplete prefix; everything before it is final.
  size_t keep = pending_.size();
  const size_t start = pending_.size() > 3 ? pending_.size() - 3 : 0;
  for (size_t i = start; i < pending_.size(); ++i) {
    const auto b = static_cast<unsigned char>(pending_[i]);
    if (b < 0x80 || (b & 0xC0) == 0x80) continue;
    const Prefix p = valid_prefix(pending_, i);
    if (i + p.valid == pending_.size() && p.valid < p.need) keep = i;
  }
  append_utf8_lossy(out, std::string_view(pending_).substr(0, keep));
  pending_.erase(0, keep);
}

void Utf8LossyStream::finish(std::string& out) {
  append_utf8_lossy(out, pending_);
  pending_.clear();
}

}  // namespace kiln::text
