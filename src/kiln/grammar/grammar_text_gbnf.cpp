// llama.cpp's GBNF: `name ::= alternatives`, "literals", [classes], ., ( ), |, * + ? {m,n}, # comments.
// A rule's body runs until the next `name ::=` (so continuation lines need no special form).
#include "kiln/core/str.h"
#include "kiln/grammar/grammar_text_internal.h"
#include "kiln/grammar/limits.h"

namespace kiln::grammar::text_detail {
namespace {

bool is_word(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

class GbnfReader {
 public:
  GbnfReader(std::string_view text, Parsed* out) : c_(text), out_(*out), pool_(*out->pool) {}

  Status run() {
    out_.start = "root";
    while (true) {
      skip();
      if (c_.done()) break;
      Pos at = c_.pos();
      std::string name = word();
      if (name.empty()) return c_.error("a rule name expected");
      skip();
      if (!c_.starts_with("::=")) return c_.error(str_cat("'::=' expected after '", name, "'"));
      c_.advance(3);
      uint32_t expr = 0;
      KILN_RETURN_IF_ERROR(alternatives(0, &expr));
      out_.rules.push_back(Definition{std::move(name), expr, at});
    }
    if (out_.rules.empty()) return invalid_argument("grammar: no rules");
    return Status::ok();
  }

 private:
  void skip() {
    while (!c_.done()) {
      char ch = c_.peek();
      if (ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n') {
        c_.advance();
      } else if (ch == '#') {
        while (!c_.done() && c_.peek() != '\n') c_.advance();
      } else {
        break;
      }
    }
  }

  std::string word() {
    std::string w;
    while (is_word(c_.peek()) && !c_.done()) w.push_back(c_.peek()), c_.advance();
    return w;
  }

  // Whether a `name ::=` (the next rule) starts here.
  bool at_definition() const {
    std::string_view r = c_.rest();
    size_t i = 0;
    while (i < r.size() && is_word(r[i])) ++i;
    if (i == 0) return false;
    while (i < r.size() && (r[i] == ' ' || r[i] == '\t')) ++i;
    return r.substr(i).starts_with("::=");
  }

  Status alternatives(size_t depth, uint32_t* out) {
    std::vector<uint32_t> options;
    Pos at = c_.pos();
    while (true) {
      uint32_t seq = 0;
      KILN_RETURN_IF_ERROR(sequence(depth, &seq));
      options.push_back(seq);
      skip();
      if (c_.peek() != '|' || c_.done()) break;
      c_.advance();
    }
    *out = options.size() == 1 ? options[0] : out_.add(Expr{Expr::Kind::kAlt, std::move(options), 0, "", 0, 0, at});
    return Status::ok();
  }

  Status sequence(size_t depth, uint32_t* out) {
    std::vector<uint32_t> items;
    Pos at = c_.pos();
    while (true) {
      skip();
      char ch = c_.peek();
      if (c_.done() || ch == '|' || ch == ')' || at_definition()) break;
      uint32_t item = 0;
      KILN_RETURN_IF_ERROR(primary(depth, &item));
      KILN_RETURN_IF_ERROR(postfix(&item));
      items.push_back(item);
    }
    *out = items.size() == 1 ? items[0] : out_.add(Expr{Expr::Kind::kSeq, std::move(items), 0, "", 0, 0, at});
    return Status::ok();
  }

  uint32_t regex_expr(RegexId r, std::string label, Pos at) {
    return out_.add(Expr{Expr::Kind::kRegex, {}, r, std::move(label), 0, 0, at});
  }

  Status primary(size_t depth, uint32_t* out) {
    Pos at = c_.pos();
    char ch = c_.peek();
    if (ch == '"') {
      size_t begin = c_.offset();
      c_.advance();
      std::vector<RegexId> parts;
      while (c_.peek() != '"' || c_.done()) {
        if (c_.done() || c_.peek() == '\n') return c_.error(at, "an unterminated string literal");
        uint32_t cp = 0;
        KILN_RETURN_IF_ERROR(c_.read_char(&cp));
        parts.push_back(pool_.chars({{cp, cp}}));
      }
      c_.advance();
      *out = regex_expr(pool_.concat(std::move(parts)), std::string(c_.text().substr(begin, c_.offset() - begin)), at);
      return Status::ok();
    }
    if (ch == '[') {
      size_t begin = c_.offset();
      c_.advance();
      bool negate = c_.peek() == '^';
      if (negate) c_.advance();
      std::vector<CharRange> ranges;
      while (c_.peek() != ']' || c_.done()) {
        if (c_.done()) return c_.error(at, "an unterminated character class");
        uint32_t lo = 0, hi = 0;
        KILN_RETURN_IF_ERROR(c_.read_char(&lo));
        hi = lo;
        if (c_.peek() == '-' && c_.peek(1) != ']') {
          c_.advance();
          KILN_RETURN_IF_ERROR(c_.read_char(&hi));
          if (hi < lo) return c_.error(at, "a character range out of order");
        }
        ranges.push_back({lo, hi});
      }
      c_.advance();
      RegexId r = pool_.chars(negate ? complement_ranges(ranges) : ranges);
      *out = regex_expr(r, std::string(c_.text().substr(begin, c_.offset() - begin)), at);
      return Status::ok();
    }
    if (ch == '.') {
      c_.advance();
      *out = regex_expr(pool_.any_char(), ".", at);
      return Status::ok();
    }
    if (ch == '(') {
      if (depth + 1 > limits::kMaxNesting) return c_.error(str_cat("groups nested deeper than ", limits::kMaxNesting));
      c_.advance();
      KILN_RETURN_IF_ERROR(alternatives(depth + 1, out));
      skip();
      if (c_.peek() != ')' || c_.done()) return c_.error(at, "an unterminated group");
      c_.advance();
      return Status::ok();
    }
    if (ch == '<' || ch == '!') return c_.error("token references (<...>, !<...>) are not supported");
    if (is_word(ch)) {
      std::string name = word();
      *out = out_.add(Expr{Expr::Kind::kRef, {}, 0, std::move(name), 0, 0, at});
      return Status::ok();
    }
    return c_.error(str_cat("unexpected '", std::string(1, ch), "'"));
  }

  Status postfix(uint32_t* item) {
    for (bool first = true;; first = false) {
      Pos at = c_.pos();
      char ch = c_.peek();
      uint32_t min = 0, max = 0;
      if (ch == '*') {
        min = 0, max = kUnbounded;
        c_.advance();
      } else if (ch == '+') {
        min = 1, max = kUnbounded;
        c_.advance();
      } else if (ch == '?') {
        min = 0, max = 1;
        c_.advance();
      } else if (ch == '{') {
        c_.advance();
        skip();
        if (c_.peek() == '}') return c_.error(at, "an invalid repetition (expected {m}, {m,}, {m,n} or {,n})");
        KILN_RETURN_IF_ERROR(c_.read_count(&min));
        max = min;
        skip();
        if (c_.peek() == ',') {
          c_.advance();
          skip();
          max = kUnbounded;
          if (c_.peek() >= '0' && c_.peek() <= '9') KILN_RETURN_IF_ERROR(c_.read_count(&max));
          skip();
        }
        if (c_.peek() != '}') return c_.error(at, "an invalid repetition (expected {m}, {m,}, {m,n} or {,n})");
        c_.advance();
        if (min > max) return c_.error(at, "a repetition range out of order");
      } else {
        return Status::ok();
      }
      if (!first) return c_.error(at, "a repetition of a repetition (put the inner one in parentheses)");
      *item = out_.add(Expr{Expr::Kind::kRepeat, {*item}, 0, "", min, max, at});
    }
  }

  Cursor c_;
  Parsed& out_;
  RegexPool& pool_;
};

}  // namespace

Status parse_gbnf(std::string_view text, Parsed* out) { return GbnfReader(text, out).run(); }

}  // namespace kiln::grammar::text_detail
