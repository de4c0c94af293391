// UTF-8 helpers for the text layer: code point iteration, encoding, and lossy decoding that
// replaces invalid bytes exactly as Rust's String::from_utf8_lossy (and Python's "replace") do,
// which is what Hugging Face decoders produce.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace kiln::text {

inline constexpr char32_t kReplacementChar = 0xFFFD;
inline constexpr std::string_view kReplacementUtf8 = "\xEF\xBF\xBD";

// Length in bytes of the well-formed UTF-8 sequence starting at s[i], or 0 when it is not
// well formed (including when it is cut off by the end of s).
size_t utf8_sequence_length(std::string_view s, size_t i);

// Decodes the code point at s[i] (s must be valid UTF-8 there) and advances i past it.
char32_t next_code_point(std::string_view s, size_t& i);

void append_utf8(std::string& out, char32_t cp);

// Length of the UTF-8 character whose first byte is `lead` (1 for a stray byte).
inline size_t utf8_char_length(unsigned char lead) {
  if (lead < 0x80) return 1;
  if (lead >= 0xF0) return 4;
  if (lead >= 0xE0) return 3;
  if (lead >= 0xC0) return 2;
  return 1;
}

// Characters (code points) of UTF-8 text, as Python's len() counts a str: every byte that is not a
// continuation byte (10xxxxxx) starts one.
inline size_t utf8_code_points(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80 ? 1 : 0;
  return n;
}

// Appends `bytes` to `out`, replacing each maximal ill-formed subsequence by U+FFFD.
void append_utf8_lossy(std::string& out, std::string_view bytes);
std::string utf8_lossy(std::string_view bytes);

// Lossy UTF-8 decoding of a byte stream fed in pieces: push() appends whatever is final and keeps
// back a trailing sequence that later bytes may still complete; finish() flushes it (as U+FFFD).
class Utf8LossyStream {
 public:
  void push(std::string_view bytes, std::string& out);
  void finish(std::string& out);
  bool has_pending() const { return !pending_.empty(); }

 private:
  std::string pending_;
};

}  // namespace kiln::text
