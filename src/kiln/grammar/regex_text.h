// Regular-expression text to RegexPool nodes, and the regex / choice front ends.
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "kiln/core/status.h"
#include "kiln/grammar/grammar.h"

namespace kiln::grammar {

// ECMAScript (JSON Schema `pattern`) syntax: literals and escapes, ., [...] classes with ranges and
// negation, \d \w \s \D \W \S, \uXXXX and \u{...}, groups (capturing, (?:...), named), |, * + ?
// {m} {m,} {m,n} (lazy forms match the same strings). Anchors ^ and $ only at the ends of the
// whole pattern (reported through the out-flags). Backreferences and lookaround are refused with
// kInvalidArgument naming them.
struct ParsedRegex {
  RegexId regex = 0;
  bool anchored_start = false;
  bool anchored_end = false;
};
Result<ParsedRegex> parse_regex(RegexPool& pool, std::string_view pattern);

// The whole output matches the regex (anchors optional).
Result<Grammar> regex_grammar(std::string_view pattern);
// The output is exactly one of `choices`.
Result<Grammar> choice_grammar(std::span<const std::string> choices);

}  // namespace kiln::grammar
