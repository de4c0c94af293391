// Shared between the GBNF and Lark readers (grammar_text_gbnf.cpp, grammar_text_lark.cpp) and the
// compiler to a Grammar (grammar_text.cpp): the parsed form of a grammar text and a cursor that
// knows lines and columns.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "kiln/core/status.h"
#include "kiln/grammar/grammar.h"

namespace kiln::grammar::text_detail {

struct Pos {
  uint32_t line = 1;
  uint32_t col = 1;
};

// An expression of a rule's right-hand side; children are indices into Parsed::exprs.
struct Expr {
  enum class Kind : uint8_t { kSeq, kAlt, kRepeat, kRegex, kRef };
  Kind kind = Kind::kSeq;
  std::vector<uint32_t> kids;
  RegexId regex = 0;  // kRegex
  std::string name;   // kRef: the rule or terminal named; kRegex: a label for messages
  uint32_t min = 0;   // kRepeat
  uint32_t max = 0;
  Pos pos;
};

struct Definition {
  std::string name;
  uint32_t expr = 0;
  Pos pos;
};

struct Parsed {
  RegexPool* pool = nullptr;  // where kRegex nodes live (the Grammar's own pool)
  std::vector<Expr> exprs;
  std::vector<Definition> rules;
  std::string start;
  // Lark: named terminals, already regexes; references to them are tokens of their own.
  std::unordered_map<std::string, RegexId> terminals;
  // Lark %ignore: what may appear between any two tokens of a rule (nothing when absent).
  std::optional<RegexId> ignore;

  uint32_t add(Expr e) {
    exprs.push_back(std::move(e));
    return static_cast<uint32_t>(exprs.size() - 1);
  }
};

class Cursor {
 public:
  explicit Cursor(std::string_view s) : s_(s) {}
  bool done() const { return i_ >= s_.size(); }
  char peek(size_t ahead = 0) const { return i_ + ahead < s_.size() ? s_[i_ + ahead] : '\0'; }
  bool starts_with(std::string_view w) const { return s_.substr(i_).starts_with(w); }
  void advance(size_t n = 1) {
    for (size_t k = 0; k < n && i_ < s_.size(); ++k, ++i_) {
      if (s_[i_] == '\n') {
        ++pos_.line, pos_.col = 1;
      } else if ((static_cast<unsigned char>(s_[i_]) & 0xC0) != 0x80) {
        ++pos_.col;
      }
    }
  }
  Pos pos() const { return pos_; }
  size_t offset() const { return i_; }
  std::string_view rest() const { return s_.substr(i_); }
  std::string_view text() const { return s_; }
  Status error(Pos at, std::string_view what) const;
  Status error(std::string_view what) const { return error(pos_, what); }

  // A code point of a quoted literal or class: a UTF-8 character or an escape (\n \r \t \\ \" \'
  // \[ \] \- \/ \xHH \uHHHH \UHHHHHHHH and any escaped punctuation).
  Status read_char(uint32_t* cp);
  // A repeat count (decimal digits; none reads 0), at most limits::kMaxRepeat.
  Status read_count(uint32_t* v);

 private:
  std::string_view s_;
  size_t i_ = 0;
  Pos pos_;
};

Status parse_gbnf(std::string_view text, Parsed* out);
Status parse_lark(std::string_view text, Parsed* out);
// Turns the parsed rules into `g`'s rules (g.regexes is the pool the parse used).
Status compile_parsed(const Parsed& parsed, Grammar* g);

// Regex-level helpers for the compilers.
bool nullable(const RegexPool& pool, RegexId r);
// The non-empty strings of r.
RegexId non_empty(RegexPool& pool, RegexId r);

}  // namespace kiln::grammar::text_detail
