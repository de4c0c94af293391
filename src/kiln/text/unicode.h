// Unicode normalization (NFC, NFD, NFKC, NFKD) and the character classes that Hugging Face's
// added-token matching uses, from tables generated out of the Unicode Character Database.
#pragma once

#include <string>
#include <string_view>

namespace kiln::text {

enum class NormalizationForm { kNfc, kNfd, kNfkc, kNfkd };

// `s` must be valid UTF-8.
std::string normalize(std::string_view s, NormalizationForm form);
int combining_class(char32_t cp);
// White_Space (what `\s` means in Rust's regex crate).
bool is_white_space(char32_t cp);
// Alphabetic, marks, decimal digits, connector punctuation, joiners (`\w` in Rust's regex crate).
bool is_word_char(char32_t cp);
const char* unicode_version();

}  // namespace kiln::text
