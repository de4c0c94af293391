// Pre-tokenizers of tokenizer.json: Split, ByteLevel, Metaspace, Digits, Whitespace,
// WhitespaceSplit and Sequence. They cut a normalized segment into the words the model sees.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "kiln/core/status.h"
#include "kiln/text/regex.h"

namespace kiln::text {

enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };
enum class PrependScheme { kAlways, kFirst, kNever };

struct PreTokenizerStep {
  enum class Kind { kSplit, kByteLevel, kMetaspace, kDigits, kWhitespace, kWhitespaceSplit };
  Kind kind = Kind::kSplit;
  // kSplit: a literal (`literal`, used when `regex` is empty) or a regex; also kWhitespace's regex.
  std::string literal;
  std::optional<Regex> regex;
  SplitBehavior behavior = SplitBehavior::kIsolated;
  bool invert = false;
  // kByteLevel
  bool add_prefix_space = false;
  bool use_regex = false;
  // kMetaspace
  std::string replacement = "\xE2\x96\x81";  // U+2581
  PrependScheme prepend_scheme = PrependScheme::kAlways;
  bool split = true;
  // kDigits
  bool individual_digits = false;
};

// A word in the making. `at_origin`: it starts at offset 0 of the original input (Metaspace's
// "first" prepend scheme only adds the replacement there).
struct Piece {
  std::string text;
  bool at_origin = false;
};

class PreTokenizer {
 public:
  void add(PreTokenizerStep step) { steps_.push_back(std::move(step)); }
  bool empty() const { return steps_.empty(); }
  // Pre-tokenizes one segment (text between added tokens). Empty pieces are dropped.
  Status run(std::string_view segment, bool at_origin, std::vector<Piece>& out) const;

  // For encoding a long segment a window at a time: the first step's regex when that step keeps
  // every character in order (Split, Isolated, not inverted) and its matches look at no text
  // before them (no lookbehind, anchor or word boundary), so a search started at a piece's start
  // finds what the search over the whole segment finds there. Otherwise nullptr.
  const Regex* windowable_split() const;
  // Runs the steps after the first on one piece that the first step made.
  Status run_after_first(Piece piece, std::vector<Piece>& out) const;
  // True when no step drops characters (Whitespace, WhitespaceSplit, Split with Removed): every
  // character of a segment then ends up in some piece.
  bool keeps_all_text() const;

 private:
  Status run_steps(size_t first_step, std::vector<Piece> cur, std::vector<Piece>& out) const;

  std::vector<PreTokenizerStep> steps_;
};

// The printable character that ByteLevel maps each byte to, as UTF-8, and back.
const std::string& byte_level_char(unsigned char b);
// Maps a string of byte-level characters back to bytes; false when some character is not one.
bool byte_level_decode(std::string_view token, std::string& out);

// Cuts [0, size) into pieces at `matches` (sorted, non-overlapping) per `behavior`, as
// NormalizedString::split does. Appends [start, end) pairs, empty ones included.
void split_by_matches(size_t size, const std::vector<std::pair<size_t, size_t>>& matches, SplitBehavior behavior,
                      bool invert, std::vector<std::pair<size_t, size_t>>& out);

}  // namespace kiln::text
