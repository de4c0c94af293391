#include "kiln/grammar/regex_text.h"

#include <utility>

#include "kiln/core/str.h"
#include "kiln/grammar/char_sets.h"
#include "kiln/grammar/grammar_text_internal.h"
#include "kiln/grammar/limits.h"

namespace kiln::grammar {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The pattern is parsed to this small tree first because whether a ^ or $ is legal, and whether an
// alternative needs "any text" in front of it, depends on what follows it.
struct Ast {
  enum class Kind : uint8_t { kAtom, kConcat, kAlt, kRepeat, kStart, kEnd };
  Kind kind = Kind::kAtom;
  RegexId atom = 0;
  std::vector<uint32_t> kids;
  uint32_t min = 0;
  uint32_t max = 0;
  size_t offset = 0;
};

// One class atom: a code point, or a whole set (\d, \w, ...).
struct ClassAtom {
  bool is_set = false;
  uint32_t cp = 0;
  std::vector<CharRange> set;
};

class Parser {
 public:
  Parser(RegexPool& pool, std::string_view s, RegexFlags flags) : pool_(pool), s_(s), flags_(flags) {}

  Result<ParsedRegex> run() {
    if (s_.size() > limits::kMaxSourceBytes) {
      return invalid_argument(str_cat("regex: the pattern is longer than ", limits::kMaxSourceBytes, " bytes"));
    }
    uint32_t root = 0;
    KILN_RETURN_IF_ERROR(parse_alt(&root, 0));
    if (pos_ < s_.size()) return fail(pos_, "unmatched ')'");
    for (const Ast& a : ast_) {
      pad_start_ = pad_start_ || a.kind == Ast::Kind::kStart;
      pad_end_ = pad_end_ || a.kind == Ast::Kind::kEnd;
    }
    any_text_ = pool_.star(pool_.any_char());
    ParsedRegex out;
    KILN_RETURN_IF_ERROR(emit(root, true, true, &out.regex));
    out.anchored_start = pad_start_;
    out.anchored_end = pad_end_;
    if (pool_.size() > limits::kMaxRegexNodes) {
      return invalid_argument(str_cat("regex: the pattern needs more than ", limits::kMaxRegexNodes, " nodes"));
    }
    return out;
  }

 private:
  Status fail(size_t at, std::string_view what) const {
    return invalid_argument(str_cat("regex: ", what, " at offset ", at));
  }
  bool at_end() const { return pos_ >= s_.size(); }
  char peek(size_t ahead = 0) const { return pos_ + ahead < s_.size() ? s_[pos_ + ahead] : '\0'; }

  uint32_t add(Ast a) {
    ast_.push_back(std::move(a));
    return static_cast<uint32_t>(ast_.size() - 1);
  }
  uint32_t add_atom(RegexId r) { return add(Ast{Ast::Kind::kAtom, r, {}, 0, 0, 0}); }
  RegexId chars(std::vector<CharRange> ranges) {
    return pool_.chars(flags_.ignore_case ? add_ascii_case(std::move(ranges)) : std::move(ranges));
  }
  RegexId negated(std::vector<CharRange> ranges) {
    if (flags_.ignore_case) ranges = add_ascii_case(std::move(ranges));
    return pool_.chars(complement_ranges(ranges));
  }

  Status parse_alt(uint32_t* out, size_t depth) {
    std::vector<uint32_t> options;
    while (true) {
      uint32_t c = 0;
      KILN_RETURN_IF_ERROR(parse_concat(&c, depth));
      options.push_back(c);
      if (peek() != '|' || at_end()) break;
      ++pos_;
    }
    *out = options.size() == 1 ? options[0] : add(Ast{Ast::Kind::kAlt, 0, std::move(options), 0, 0, 0});
    return Status::ok();
  }

  Status parse_concat(uint32_t* out, size_t depth) {
    std::vector<uint32_t> items;
    while (!at_end() && peek() != '|' && peek() != ')') {
      size_t start = pos_;
      uint32_t item = 0;
      if (peek() == '^' || peek() == '$') {
        item = add(Ast{peek() == '^' ? Ast::Kind::kStart : Ast::Kind::kEnd, 0, {}, 0, 0, pos_});
        ++pos_;
        if (quantifier_ahead()) return fail(pos_, "a quantifier after an anchor");
      } else {
        KILN_RETURN_IF_ERROR(parse_atom(&item, depth));
        uint32_t min = 0, max = 0;
        bool quantified = false;
        KILN_RETURN_IF_ERROR(parse_quantifier(&quantified, &min, &max));
        if (quantified) {
          if (peek() == '?') ++pos_;  // lazy: the same strings
          if (quantifier_ahead()) return fail(pos_, "nothing to repeat");
          item = add(Ast{Ast::Kind::kRepeat, 0, {item}, min, max, start});
        }
      }
      items.push_back(item);
    }
    *out = items.size() == 1 ? items[0] : add(Ast{Ast::Kind::kConcat, 0, std::move(items), 0, 0, 0});
    return Status::ok();
  }

  // Reads a decimal count, refusing one over kMaxRepeat.
  bool read_count(size_t* p, uint32_t* v, bool* too_big) const {
    if (*p >= s_.size() || !is_digit(s_[*p])) return false;
    uint64_t x = 0;
    while (*p < s_.size() && is_digit(s_[*p])) {
      x = x * 10 + static_cast<uint64_t>(s_[*p] - '0');
      if (x > limits::kMaxRepeat) *too_big = true, x = limits::kMaxRepeat + 1;
      ++*p;
    }
    *v = static_cast<uint32_t>(x);
    return true;
  }

  // {m}, {m,} or {m,n} at `p`; its end in *end. A '{' that does not start one is a literal.
  bool brace_quantifier(size_t p, size_t* end, uint32_t* min, uint32_t* max, bool* too_big) const {
    if (p >= s_.size() || s_[p] != '{') return false;
    ++p;
    if (!read_count(&p, min, too_big)) return false;
    *max = *min;
    if (p < s_.size() && s_[p] == ',') {
      ++p;
      *max = kUnbounded;
      if (p < s_.size() && is_digit(s_[p]) && !read_count(&p, max, too_big)) return false;
    }
    if (p >= s_.size() || s_[p] != '}') return false;
    *end = p + 1;
    return true;
  }

  bool quantifier_ahead() const {
    char c = peek();
    if (at_end()) return false;
    if (c == '*' || c == '+' || c == '?') return true;
    size_t end = 0;
    uint32_t a = 0, b = 0;
    bool big = false;
    return brace_quantifier(pos_, &end, &a, &b, &big);
  }

  Status parse_quantifier(bool* quantified, uint32_t* min, uint32_t* max) {
    *quantified = true;
    switch (peek()) {
      case '*': ++pos_, *min = 0, *max = kUnbounded; return Status::ok();
      case '+': ++pos_, *min = 1, *max = kUnbounded; return Status::ok();
      case '?': ++pos_, *min = 0, *max = 1; return Status::ok();
      default: break;
    }
    size_t end = 0;
    bool too_big = false;
    if (!at_end() && brace_quantifier(pos_, &end, min, max, &too_big)) {
      if (too_big) return fail(pos_, str_cat("a repeat count over ", limits::kMaxRepeat));
      if (*min > *max) return fail(pos_, "a repeat range out of order");
      pos_ = end;
      return Status::ok();
    }
    *quantified = false;
    return Status::ok();
  }

  Status parse_atom(uint32_t* out, size_t depth) {
    size_t start = pos_;
    char c = peek();
    if (c == '*' || c == '+' || c == '?' || quantifier_ahead()) return fail(start, "nothing to repeat");
    if (c == '(') return parse_group(out, depth);
    if (c == '.') {
      ++pos_;
      *out = add_atom(flags_.dot_all ? pool_.any_char() : pool_.chars(complement_ranges(line_terminator_ranges())));
      return Status::ok();
    }
    if (c == '[') return parse_class(out);
    if (c == '\\') {
      ClassAtom a;
      KILN_RETURN_IF_ERROR(parse_escape(false, &a));
      *out = add_atom(a.is_set ? chars(std::move(a.set)) : chars({{a.cp, a.cp}}));
      return Status::ok();
    }
    uint32_t cp = 0;
    size_t n = decode_utf8(s_, pos_, &cp);
    if (n == 0) return fail(pos_, "invalid UTF-8");
    pos_ += n;
    *out = add_atom(chars({{cp, cp}}));
    return Status::ok();
  }

  Status parse_group(uint32_t* out, size_t depth) {
    size_t start = pos_;
    if (depth + 1 > limits::kMaxNesting) {
      return fail(start, str_cat("groups nested deeper than ", limits::kMaxNesting));
    }
    ++pos_;
    if (peek() == '?') {
      std::string_view rest = s_.substr(pos_);
      if (rest.starts_with("?:")) {
        pos_ += 2;
      } else if (rest.starts_with("?=") || rest.starts_with("?!")) {
        return fail(start, "lookahead (?= / (?! is not supported");
      } else if (rest.starts_with("?<=") || rest.starts_with("?<!")) {
        return fail(start, "lookbehind (?<= / (?<! is not supported");
      } else if (rest.starts_with("?<")) {
        pos_ += 2;
        size_t name_start = pos_;
        while (!at_end() && peek() != '>') {
          char ch = peek();
          bool ok = ch == '_' || ch == '$' || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                    (pos_ > name_start && is_digit(ch));
          if (!ok) return fail(pos_, "an invalid group name");
          ++pos_;
        }
        if (at_end() || pos_ == name_start) return fail(start, "an invalid group name");
        ++pos_;
      } else {
        return fail(start, "an unsupported group '(?' (inline flags and modifiers are not supported)");
      }
    }
    uint32_t inner = 0;
    KILN_RETURN_IF_ERROR(parse_alt(&inner, depth + 1));
    if (peek() != ')' || at_end()) return fail(start, "an unterminated group");
    ++pos_;
    *out = inner;
    return Status::ok();
  }

  Status parse_class(uint32_t* out) {
    size_t start = pos_;
    ++pos_;
    bool negate = false;
    if (peek() == '^' && !at_end()) negate = true, ++pos_;
    std::vector<CharRange> ranges;
    while (true) {
      if (at_end()) return fail(start, "an unterminated character class");
      if (peek() == ']') break;
      size_t atom_at = pos_;
      ClassAtom lo;
      KILN_RETURN_IF_ERROR(parse_class_atom(&lo));
      if (peek() == '-' && pos_ + 1 < s_.size() && s_[pos_ + 1] != ']') {
        ++pos_;
        ClassAtom hi;
        KILN_RETURN_IF_ERROR(parse_class_atom(&hi));
        if (lo.is_set || hi.is_set) return fail(atom_at, "a class escape as a range bound");
        if (lo.cp > hi.cp) return fail(atom_at, "a character range out of order");
        ranges.push_back({lo.cp, hi.cp});
      } else if (lo.is_set) {
        ranges.insert(ranges.end(), lo.set.begin(), lo.set.end());
      } else {
        ranges.push_back({lo.cp, lo.cp});
      }
    }
    ++pos_;
    *out = add_atom(negate ? negated(std::move(ranges)) : chars(std::move(ranges)));
    return Status::ok();
  }

  Status parse_class_atom(ClassAtom* a) {
    if (peek() == '\\') return parse_escape(true, a);
    size_t n = decode_utf8(s_, pos_, &a->cp);
    if (n == 0) return fail(pos_, "invalid UTF-8");
    pos_ += n;
    return Status::ok();
  }

  // After a backslash. In a class, \b is a backspace and \- a hyphen.
  Status parse_escape(bool in_class, ClassAtom* a) {
    size_t start = pos_;
    ++pos_;
    if (at_end()) return fail(start, "'\\' at the end of the pattern");
    char c = peek();
    ++pos_;
    auto set = [a](std::vector<CharRange> r, bool negate) {
      a->is_set = true;
      a->set = negate ? complement_ranges(r) : std::move(r);
      return Status::ok();
    };
    auto code = [a](uint32_t cp) {
      a->cp = cp;
      return Status::ok();
    };
    switch (c) {
      case 'd': return set(digit_ranges(), false);
      case 'D': return set(digit_ranges(), true);
      case 'w': return set(word_ranges(), false);
      case 'W': return set(word_ranges(), true);
      case 's': return set(space_ranges(), false);
      case 'S': return set(space_ranges(), true);
      case 'n': return code('\n');
      case 'r': return code('\r');
      case 't': return code('\t');
      case 'f': return code('\f');
      case 'v': return code('\v');
      case 'b':
        if (in_class) return code('\b');
        return fail(start, "the word boundary \\b is not supported");
      case 'B': return fail(start, "the word boundary \\B is not supported");
      case '-':
        if (in_class) return code('-');
        break;
      case '0':
        if (is_digit(peek())) return fail(start, "an octal escape");
        return code(0);
      case 'k': return fail(start, "the backreference \\k is not supported");
      case 'p':
      case 'P': {
        // Only properties whose tables are small enough to write here; the rest are refused.
        size_t close = s_.find('}', pos_);
        std::string_view name = peek() == '{' && close != std::string_view::npos ? s_.substr(pos_ + 1, close - pos_ - 1)
                                                                                : std::string_view();
        std::vector<CharRange> ranges;
        if (name == "Zs" || name == "Space_Separator" || name == "General_Category=Zs") {
          ranges = {{0x20, 0x20}, {0xA0, 0xA0}, {0x1680, 0x1680}, {0x2000, 0x200A}, {0x202F, 0x202F},
                    {0x205F, 0x205F}, {0x3000, 0x3000}};
        } else if (name == "ASCII") {
          ranges = {{0, 0x7F}};
        } else if (name == "Any") {
          ranges = {{0, kMaxCodePoint}};
        } else {
          return fail(start, str_cat("the Unicode property escape \\", c, "{", name.substr(0, 40),
                                     "} is not supported (only Zs, ASCII and Any are)"));
        }
        pos_ = close + 1;
        return set(std::move(ranges), c == 'P');
      }
      case 'c': {
        char l = peek();
        if (!((l >= 'a' && l <= 'z') || (l >= 'A' && l <= 'Z'))) return fail(start, "an invalid \\c escape");
        ++pos_;
        return code(static_cast<uint32_t>(l) % 32);
      }
      case 'x': {
        int h = hex_value(peek()), l = hex_value(peek(1));
        if (h < 0 || l < 0) return fail(start, "an invalid \\x escape (two hex digits expected)");
        pos_ += 2;
        return code(static_cast<uint32_t>(h * 16 + l));
      }
      case 'u': {
        uint32_t cp = 0;
        KILN_RETURN_IF_ERROR(parse_unicode_escape(start, &cp));
        // A surrogate pair written as two escapes is one code point.
        if (cp >= 0xD800 && cp <= 0xDBFF && peek() == '\\' && peek(1) == 'u' && peek(2) != '{') {
          size_t save = pos_;
          pos_ += 2;
          uint32_t low = 0;
          if (parse_unicode_escape(save, &low).is_ok() && low >= 0xDC00 && low <= 0xDFFF) {
            return code(0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00));
          }
          pos_ = save;
        }
        return code(cp);
      }
      default: break;
    }
    if (is_digit(c)) return fail(start, "a backreference (\\1-\\9) is not supported");
    auto uc = static_cast<unsigned char>(c);
    if (uc >= 0x80) {  // an escaped non-ASCII character is itself
      --pos_;
      size_t n = decode_utf8(s_, pos_, &a->cp);
      if (n == 0) return fail(pos_, "invalid UTF-8");
      pos_ += n;
      return Status::ok();
    }
    bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (uc < 0x20 || uc == 0x7F || alnum) return fail(start, str_cat("an unknown escape '\\", c, "'"));
    return code(uc);
  }

  // After "\u": XXXX or {X...}.
  Status parse_unicode_escape(size_t start, uint32_t* cp) {
    if (peek() == '{') {
      ++pos_;
      uint64_t v = 0;
      size_t digits = 0;
      while (hex_value(peek()) >= 0 && !at_end()) {
        v = v * 16 + static_cast<uint64_t>(hex_value(peek()));
        if (v > kMaxCodePoint) return fail(start, "a \\u{...} escape over U+10FFFF");
        ++pos_, ++digits;
      }
      if (digits == 0 || peek() != '}') return fail(start, "an invalid \\u{...} escape");
      ++pos_;
      *cp = static_cast<uint32_t>(v);
      return Status::ok();
    }
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      int h = hex_value(peek());
      if (h < 0) return fail(start, "an invalid \\u escape (four hex digits expected)");
      v = v * 16 + static_cast<uint32_t>(h);
      ++pos_;
    }
    *cp = v;
    return Status::ok();
  }

  // `at_start` / `at_end`: this node begins / ends the text the pattern matches, so a ^ / $ is
  // legal here and, when the pattern has one elsewhere, a node without one is padded with any text.
  Status emit(uint32_t id, bool at_start, bool at_end, RegexId* out) {
    const Ast a = ast_[id];
    RegexId r = pool_.empty();
    switch (a.kind) {
      case Ast::Kind::kStart:
        if (!at_start) return fail(a.offset, "'^' not at the start of the pattern or a top-level alternative");
        at_start = false;
        break;
      case Ast::Kind::kEnd:
        if (!at_end) return fail(a.offset, "'$' not at the end of the pattern or a top-level alternative");
        at_end = false;
        break;
      case Ast::Kind::kAtom: r = a.atom; break;
      case Ast::Kind::kRepeat: {
        RegexId inner = 0;
        KILN_RETURN_IF_ERROR(emit(a.kids[0], false, false, &inner));
        r = pool_.repeat(inner, a.min, a.max);
        break;
      }
      case Ast::Kind::kAlt: {
        std::vector<RegexId> options;
        for (uint32_t k : a.kids) {
          RegexId o = 0;
          KILN_RETURN_IF_ERROR(emit(k, at_start, at_end, &o));
          options.push_back(o);
        }
        *out = pool_.alt(std::move(options));
        return Status::ok();
      }
      case Ast::Kind::kConcat: {
        std::vector<RegexId> parts;
        for (size_t i = 0; i < a.kids.size(); ++i) {
          RegexId p = 0;
          KILN_RETURN_IF_ERROR(emit(a.kids[i], at_start && i == 0, at_end && i + 1 == a.kids.size(), &p));
          parts.push_back(p);
        }
        *out = pool_.concat(std::move(parts));
        return Status::ok();
      }
    }
    bool pad_start = at_start && pad_start_;
    bool pad_end = at_end && pad_end_;
    if (pad_start && pad_end && r == pool_.empty()) {
      r = any_text_;
    } else {
      r = pool_.concat({pad_start ? any_text_ : pool_.empty(), r, pad_end ? any_text_ : pool_.empty()});
    }
    *out = r;
    return Status::ok();
  }

  RegexPool& pool_;
  std::string_view s_;
  RegexFlags flags_;
  size_t pos_ = 0;
  std::vector<Ast> ast_;
  bool pad_start_ = false;
  bool pad_end_ = false;
  RegexId any_text_ = 0;
};

}  // namespace

Result<ParsedRegex> parse_regex(RegexPool& pool, std::string_view pattern, RegexFlags flags) {
  return Parser(pool, pattern, flags).run();
}

namespace {

// start ::= the regex; a regex that also matches the empty string becomes an optional terminal of
// its non-empty strings, so that no terminal matches empty.
Result<Grammar> single_regex_grammar(Grammar g, RegexId r, const char* name) {
  uint32_t start = g.add_rule("start");
  g.start = start;
  if (text_detail::nullable(g.regexes, r)) {
    g.add_alternative(start, {});
    r = text_detail::non_empty(g.regexes, r);
  }
  if (r != g.regexes.nothing()) g.add_alternative(start, {Symbol::terminal(g.add_terminal(r, name))});
  KILN_RETURN_IF_ERROR(g.validate());
  return g;
}

}  // namespace

Result<Grammar> regex_grammar(std::string_view pattern) {
  Grammar g;
  KILN_ASSIGN_OR_RETURN(ParsedRegex parsed, parse_regex(g.regexes, pattern));
  if (parsed.regex == g.regexes.nothing()) return invalid_argument("regex: the pattern matches no string");
  return single_regex_grammar(std::move(g), parsed.regex, "regex");
}

Result<Grammar> choice_grammar(std::span<const std::string> choices) {
  if (choices.empty()) return invalid_argument("choice: the list of choices is empty");
  if (choices.size() > limits::kMaxChoices) {
    return invalid_argument(str_cat("choice: more than ", limits::kMaxChoices, " choices"));
  }
  Grammar g;
  size_t bytes = 0;
  std::vector<RegexId> options;
  for (const std::string& c : choices) {
    bytes += c.size();
    if (bytes > limits::kMaxSourceBytes) {
      return invalid_argument(str_cat("choice: the choices are longer than ", limits::kMaxSourceBytes, " bytes"));
    }
    if (!is_valid_utf8(c)) return invalid_argument("choice: a choice is not valid UTF-8");
    options.push_back(g.regexes.literal(c));
  }
  RegexId all = g.regexes.alt(std::move(options));
  return single_regex_grammar(std::move(g), all, "choice");
}

}  // namespace kiln::grammar
