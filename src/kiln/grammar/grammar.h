// The grammar representation every front end compiles to and the matcher runs: context-free rules
// over terminals, each terminal a regular expression over UTF-8 text (a lexer / parser split, as
// llguidance does it). Front ends (JSON Schema, regex, choice, GBNF/Lark text) build a Grammar;
// CompiledGrammar (matcher.h) turns it into lexer automata and parser tables.
//
// Semantics: the language of a Grammar is exactly that of the context-free grammar obtained by
// replacing every terminal with its regular language. A lexeme may end at any point where its
// terminal's regex has matched (the matcher keeps every viable split), so no lexing policy
// (longest match, priorities) changes what is accepted.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "kiln/core/status.h"

namespace kiln::grammar {

// An inclusive range of code points (in a kChars node) or of byte values (in a kBytes node).
struct CharRange {
  uint32_t lo = 0;
  uint32_t hi = 0;
  friend bool operator==(const CharRange&, const CharRange&) = default;
};

inline constexpr uint32_t kMaxCodePoint = 0x10FFFF;
inline constexpr uint32_t kUnbounded = std::numeric_limits<uint32_t>::max();

// Sorts and merges ranges; drops empty ones.
std::vector<CharRange> normalize_ranges(std::vector<CharRange> ranges);
// The code points of [0, kMaxCodePoint] not in `ranges` (surrogates D800-DFFF are never included).
std::vector<CharRange> complement_ranges(const std::vector<CharRange>& ranges);

using RegexId = uint32_t;

struct RegexNode {
  enum class Kind : uint8_t {
    kNothing,  // matches no string
    kEmpty,    // matches only the empty string
    kChars,    // one code point from `ranges`, as its UTF-8 bytes (surrogates never match)
    kBytes,    // one raw byte from `ranges` (0..255); for byte-level grammars
    kConcat,   // children in order
    kAlt,      // any one child
    kRepeat,   // child repeated min..max times (max may be kUnbounded)
  };
  Kind kind = Kind::kNothing;
  std::vector<CharRange> ranges;
  std::vector<RegexId> children;
  uint32_t min = 0;
  uint32_t max = 0;
};

// Regular expressions as a DAG of nodes. Constructors simplify (concat with kNothing is kNothing,
// alt of one child is the child, ...) and identical nodes are shared (hash-consed), so equal
// regexes built twice get the same id.
class RegexPool {
 public:
  RegexPool();
  RegexId nothing() const { return 0; }
  RegexId empty() const { return 1; }
  RegexId chars(std::vector<CharRange> ranges);   // one code point
  RegexId any_char();                              // any code point but surrogates
  RegexId bytes(std::vector<CharRange> ranges);   // one byte
  RegexId literal(std::string_view utf8);          // exactly these bytes
  RegexId concat(std::vector<RegexId> parts);
  RegexId alt(std::vector<RegexId> options);
  RegexId repeat(RegexId r, uint32_t min, uint32_t max);
  RegexId optional(RegexId r) { return repeat(r, 0, 1); }
  RegexId star(RegexId r) { return repeat(r, 0, kUnbounded); }
  RegexId plus(RegexId r) { return repeat(r, 1, kUnbounded); }

  const RegexNode& node(RegexId id) const { return nodes_[id]; }
  size_t size() const { return nodes_.size(); }
  std::string to_string(RegexId id) const;  // for messages and tests

 private:
  RegexId intern(RegexNode node);
  std::vector<RegexNode> nodes_;
  std::unordered_map<std::string, RegexId> index_;  // a node's encoding -> its id
};

struct Symbol {
  uint32_t bits = 0;
  static Symbol terminal(uint32_t index) { return {index << 1}; }
  static Symbol rule(uint32_t index) { return {(index << 1) | 1u}; }
  bool is_terminal() const { return (bits & 1u) == 0; }
  uint32_t index() const { return bits >> 1; }
  friend bool operator==(const Symbol&, const Symbol&) = default;
};

struct Terminal {
  RegexId regex = 0;
  std::string name;  // for messages ("string", "\"name\"", "number")
};

struct Rule {
  std::string name;
  std::vector<std::vector<Symbol>> alternatives;  // an empty alternative derives the empty string
};

class Grammar {
 public:
  RegexPool regexes;
  std::vector<Terminal> terminals;
  std::vector<Rule> rules;
  uint32_t start = 0;  // a rule index

  // The same regex added twice gives the same terminal.
  uint32_t add_terminal(RegexId regex, std::string name);
  uint32_t add_rule(std::string name);  // no alternatives yet (so rules can refer to each other)
  void add_alternative(uint32_t rule, std::vector<Symbol> symbols);

  // Symbols in range, every rule with at least one alternative, sizes within limits.h.
  Status validate() const;
  std::string to_string() const;  // a readable listing, for tests and error messages

 private:
  std::unordered_map<RegexId, uint32_t> terminal_of_regex_;
};

// Copies every regex, terminal and rule of `from` into `into` (its rules appended, names prefixed
// with `prefix`) and returns the index in `into` of `from`'s start rule, so that one grammar (a
// compiled JSON Schema) can be used as a nonterminal of another (a tool call's arguments).
uint32_t embed_grammar(Grammar* into, const Grammar& from, std::string_view prefix);

}  // namespace kiln::grammar
