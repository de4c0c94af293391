// Normalizers of tokenizer.json: NFC/NFD/NFKC/NFKD, Replace, Prepend, Strip, Sequence.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/core/status.h"
#include "kiln/text/regex.h"
#include "kiln/text/unicode.h"

namespace kiln::text {

struct NormalizerStep {
  enum class Kind { kUnicode, kReplace, kPrepend, kStrip };
  Kind kind = Kind::kUnicode;
  NormalizationForm form = NormalizationForm::kNfc;  // kUnicode
  std::string literal;                               // kReplace with a String pattern
  std::optional<Regex> regex;                        // kReplace with a Regex pattern
  std::string content;                               // kReplace replacement, kPrepend prefix
  bool strip_left = false, strip_right = false;      // kStrip
};

class Normalizer {
 public:
  void add(NormalizerStep step) { steps_.push_back(std::move(step)); }
  bool empty() const { return steps_.empty(); }
  Result<std::string> apply(std::string_view s) const;

 private:
  std::vector<NormalizerStep> steps_;
};

// Replaces every non-overlapping occurrence of `from` (leftmost first) by `to`.
std::string replace_all(std::string_view s, std::string_view from, std::string_view to);

}  // namespace kiln::text
