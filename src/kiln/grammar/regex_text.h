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
//
// The flags report search semantics exactly: anchored_start is set when the pattern has a ^ (each
// start-position alternative without one then begins with "any text" in `regex`), likewise
// anchored_end for $. A caller wanting "the pattern matches somewhere" pads the unanchored ends
// with any text; one wanting a full match (regex_grammar) uses `regex` as is. docs/grammar-syntax.md
// has the whole dialect.
struct ParsedRegex {
  RegexId regex = 0;
  bool anchored_start = false;
  bool anchored_end = false;
};

// Flags as Lark's /.../flags give them; JSON Schema patterns have none.
struct RegexFlags {
  bool ignore_case = false;  // i: ASCII letters match either case
  bool dot_all = false;      // s: `.` matches line terminators too
};

Result<ParsedRegex> parse_regex(RegexPool& pool, std::string_view pattern, RegexFlags flags = {});

// The whole output matches the regex (anchors optional).
Result<Grammar> regex_grammar(std::string_view pattern);
// The output is exactly one of `choices`.
Result<Grammar> choice_grammar(std::span<const std::string> choices);

}  // namespace kiln::grammar
