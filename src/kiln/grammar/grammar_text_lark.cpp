// A Lark-style grammar: `rule: expansions`, `TERMINAL: expansions`, "literals"i, /regex/flags,
// "a".."z", ( ), [ ], | , ? * + ~n ~n..m, `-> alias`, `//` comments, %import common.X and
// %ignore. A definition ends at a newline unless the next line starts with `|`; newlines inside
// brackets are spaces. docs/grammar-syntax.md says what differs from Lark itself.
#include <unordered_map>

#include "kiln/core/str.h"
#include "kiln/grammar/grammar_text_internal.h"
#include "kiln/grammar/limits.h"
#include "kiln/grammar/regex_text.h"

namespace kiln::grammar::text_detail {
namespace {

// kiln's versions of Lark's common.lark terminals. Where Lark relies on its lexer's shortest
// match (ESCAPED_STRING, C_COMMENT), the regexes here say the same language outright.
constexpr std::string_view kCommon = R"(
DIGIT: "0".."9"
HEXDIGIT: "a".."f" | "A".."F" | DIGIT
INT: DIGIT+
SIGNED_INT: ["+" | "-"] INT
DECIMAL: INT "." INT? | "." INT
_EXP: ("e" | "E") SIGNED_INT
FLOAT: INT _EXP | DECIMAL _EXP?
SIGNED_FLOAT: ["+" | "-"] FLOAT
NUMBER: FLOAT | INT
SIGNED_NUMBER: ["+" | "-"] NUMBER
ESCAPED_STRING: "\"" /([^"\\\n]|\\[^\n])*/ "\""
LCASE_LETTER: "a".."z"
UCASE_LETTER: "A".."Z"
LETTER: UCASE_LETTER | LCASE_LETTER
WORD: LETTER+
CNAME: ("_" | LETTER) ("_" | LETTER | DIGIT)*
WS_INLINE: (" " | /\t/)+
WS: /[ \t\f\r\n]/+
CR: /\r/
LF: /\n/
NEWLINE: (CR? LF)+
SH_COMMENT: /#[^\n]*/
CPP_COMMENT: /\/\/[^\n]*/
C_COMMENT: /\/\*([^*]|\*+[^*\/])*\*+\//
SQL_COMMENT: /--[^\n]*/
)";

// Terminals used by terminals used by ...: every walk over a regex recurses through its depth.
constexpr size_t kMaxTerminalDepth = 16;

bool is_name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_name_char(char c) { return is_name_start(c) || (c >= '0' && c <= '9'); }
bool is_terminal_name(std::string_view n) {
  for (char c : n) {
    if (c != '_') return c >= 'A' && c <= 'Z';
  }
  return false;
}

class LarkReader {
 public:
  LarkReader(std::string_view text, Parsed* out) : c_(text), out_(*out), pool_(*out->pool) {}

  // Reads every definition; terminals are resolved to regexes, rules left to compile_parsed.
  Status run(bool library) {
    out_.start = "start";
    while (true) {
      skip_all();
      if (c_.done()) break;
      if (c_.peek() == '%') {
        KILN_RETURN_IF_ERROR(directive());
      } else {
        KILN_RETURN_IF_ERROR(definition());
      }
      skip_inline();
      if (!c_.done() && c_.peek() != '\n') return c_.error(str_cat("unexpected '", std::string(1, c_.peek()), "'"));
    }
    if (!library && out_.rules.empty()) return invalid_argument("grammar: no rules");
    KILN_RETURN_IF_ERROR(resolve_imports());
    for (const Definition& d : term_defs_) {  // in order, so the first error is the first in the text
      RegexId r = 0;
      KILN_RETURN_IF_ERROR(resolve(d.name, 0, &r));
    }
    for (const auto& [alias, r] : imported_) out_.terminals[alias] = r;
    for (size_t i = 0; i < term_defs_.size(); ++i) out_.terminals[term_defs_[i].name] = resolved_[i];
    if (!ignores_.empty()) {
      std::vector<RegexId> options;
      for (uint32_t e : ignores_) {
        RegexId r = 0;
        KILN_RETURN_IF_ERROR(term_regex(e, 0, &r));
        options.push_back(r);
      }
      out_.ignore = pool_.alt(std::move(options));
    }
    return Status::ok();
  }

 private:
  // The imported common terminals, from one reading of kCommon.
  Status resolve_imports() {
    if (imports_.empty()) return Status::ok();
    Parsed common;
    common.pool = &pool_;
    LarkReader reader(kCommon, &common);
    KILN_RETURN_IF_ERROR(reader.run(true));
    for (const auto& [alias, name] : imports_) {
      auto found = common.terminals.find(name);
      if (found == common.terminals.end()) {
        return invalid_argument(str_cat("grammar: common.", name, " is not one of the common terminals kiln has"));
      }
      auto [it, added] = imported_.emplace(alias, found->second);
      if (term_index_.contains(alias) || (!added && it->second != found->second)) {
        return invalid_argument(str_cat("grammar: '", alias, "' is defined twice"));
      }
    }
    return Status::ok();
  }

  void skip_inline() {
    while (!c_.done()) {
      char ch = c_.peek();
      if (ch == ' ' || ch == '\t' || ch == '\r') {
        c_.advance();
      } else if (c_.starts_with("//")) {
        while (!c_.done() && c_.peek() != '\n') c_.advance();
      } else {
        break;
      }
    }
  }
  void skip_all() {
    while (true) {
      skip_inline();
      if (c_.peek() != '\n' || c_.done()) return;
      c_.advance();
    }
  }
  // At a newline outside brackets: whether the definition goes on (the next line that is not
  // blank starts with '|'); if so, moves to that '|'.
  bool continuation() {
    Cursor save = c_;
    skip_all();
    if (c_.peek() == '|' && !c_.done()) return true;
    c_ = save;
    return false;
  }
  // Skips what separates items here; false at the end of the definition.
  bool gap(size_t depth) {
    skip_inline();
    if (c_.peek() == '\n' && !c_.done()) {
      if (depth > 0) {
        skip_all();
      } else {
        return continuation();
      }
    }
    return !c_.done();
  }

  std::string name() {
    std::string n;
    while (!c_.done() && is_name_char(c_.peek())) n.push_back(c_.peek()), c_.advance();
    return n;
  }

  Status directive() {
    Pos at = c_.pos();
    c_.advance();
    std::string word = name();
    skip_inline();
    if (word == "ignore") {
      uint32_t e = 0;
      KILN_RETURN_IF_ERROR(alternatives(0, &e));
      ignores_.push_back(e);
      return Status::ok();
    }
    if (word != "import") return c_.error(at, str_cat("%", word, " is not supported (only %import and %ignore are)"));
    std::string module = name();
    if (module != "common") return c_.error(at, str_cat("%import of '", module, "' (only common.X can be imported)"));
    if (c_.peek() == '.') {
      c_.advance();
      std::string n = name();
      if (n.empty()) return c_.error("a terminal name expected after 'common.'");
      skip_inline();
      std::string alias = n;
      if (c_.starts_with("->")) {
        c_.advance(2);
        skip_inline();
        alias = name();
      }
      if (!is_terminal_name(n) || !is_terminal_name(alias)) return c_.error(at, "only terminals can be imported");
      imports_.emplace_back(alias, n);
      return Status::ok();
    }
    skip_inline();
    if (c_.peek() != '(') return c_.error("'.NAME' or '(NAMES)' expected after '%import common'");
    c_.advance();
    while (true) {
      skip_all();
      std::string n = name();
      if (n.empty() || !is_terminal_name(n)) return c_.error("a terminal name expected");
      imports_.emplace_back(n, n);
      skip_all();
      if (c_.peek() == ',') {
        c_.advance();
        continue;
      }
      if (c_.peek() != ')') return c_.error("')' expected");
      c_.advance();
      return Status::ok();
    }
  }

  Status definition() {
    Pos at = c_.pos();
    if (c_.peek() == '?' || c_.peek() == '!') c_.advance();  // tree shaping: no effect on the language
    std::string n = name();
    if (n.empty()) return c_.error("a rule or terminal name expected");
    if (c_.peek() == '.') {  // a priority: no effect on the language
      c_.advance();
      if (c_.peek() == '-') c_.advance();
      if (name().empty()) return c_.error("a priority number expected");
    }
    if (c_.peek() == '{') return c_.error("rule templates are not supported");
    skip_inline();
    if (c_.peek() != ':') return c_.error(str_cat("':' expected after '", n, "'"));
    c_.advance();
    uint32_t expr = 0;
    KILN_RETURN_IF_ERROR(alternatives(0, &expr));
    if (is_terminal_name(n)) {
      if (!term_index_.emplace(n, static_cast<uint32_t>(term_defs_.size())).second) {
        return c_.error(at, str_cat("'", n, "' is defined twice"));
      }
      term_defs_.push_back(Definition{n, expr, at});
    } else {
      out_.rules.push_back(Definition{n, expr, at});
    }
    return Status::ok();
  }

  Status alternatives(size_t depth, uint32_t* out) {
    std::vector<uint32_t> options;
    Pos at = c_.pos();
    while (true) {
      uint32_t seq = 0;
      KILN_RETURN_IF_ERROR(sequence(depth, &seq));
      options.push_back(seq);
      if (!gap(depth) || c_.peek() != '|') break;
      c_.advance();
    }
    *out = options.size() == 1 ? options[0] : out_.add(Expr{Expr::Kind::kAlt, std::move(options), 0, "", 0, 0, at});
    return Status::ok();
  }

  Status sequence(size_t depth, uint32_t* out) {
    std::vector<uint32_t> items;
    Pos at = c_.pos();
    while (true) {
      if (!gap(depth)) break;
      char ch = c_.peek();
      if (ch == '|' || ch == ')' || ch == ']') break;
      if (c_.starts_with("->")) {  // an alias names the tree node: no effect on the language
        c_.advance(2);
        skip_inline();
        if (name().empty()) return c_.error("a name expected after '->'");
        continue;
      }
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

  // A "..." literal's code points (and whether an i flag follows).
  Status literal(std::vector<uint32_t>* cps, bool* ignore_case) {
    Pos at = c_.pos();
    c_.advance();
    while (c_.peek() != '"' || c_.done()) {
      if (c_.done() || c_.peek() == '\n') return c_.error(at, "an unterminated string literal");
      uint32_t cp = 0;
      KILN_RETURN_IF_ERROR(c_.read_char(&cp));
      cps->push_back(cp);
    }
    c_.advance();
    *ignore_case = c_.peek() == 'i' && !is_name_char(c_.peek(1));
    if (*ignore_case) c_.advance();
    return Status::ok();
  }

  Status primary(size_t depth, uint32_t* out) {
    Pos at = c_.pos();
    char ch = c_.peek();
    size_t begin = c_.offset();
    if (ch == '"') {
      std::vector<uint32_t> cps;
      bool icase = false;
      KILN_RETURN_IF_ERROR(literal(&cps, &icase));
      if (c_.starts_with("..")) {
        c_.advance(2);
        std::vector<uint32_t> hi;
        bool icase_hi = false;
        if (c_.peek() != '"') return c_.error("a literal expected after '..'");
        KILN_RETURN_IF_ERROR(literal(&hi, &icase_hi));
        if (cps.size() != 1 || hi.size() != 1) return c_.error(at, "a range needs one-character literals");
        if (hi[0] < cps[0]) return c_.error(at, "a character range out of order");
        *out = regex_expr(pool_.chars({{cps[0], hi[0]}}), std::string(c_.text().substr(begin, c_.offset() - begin)), at);
        return Status::ok();
      }
      std::vector<RegexId> parts;
      for (uint32_t cp : cps) {
        bool letter = (cp | 0x20u) >= 'a' && (cp | 0x20u) <= 'z';
        parts.push_back(icase && letter ? pool_.chars({{cp, cp}, {cp ^ 0x20u, cp ^ 0x20u}}) : pool_.chars({{cp, cp}}));
      }
      *out = regex_expr(pool_.concat(std::move(parts)), std::string(c_.text().substr(begin, c_.offset() - begin)), at);
      return Status::ok();
    }
    if (ch == '/') {
      c_.advance();
      size_t start = c_.offset();
      while (c_.peek() != '/' || c_.done()) {
        if (c_.done() || c_.peek() == '\n') return c_.error(at, "an unterminated regex literal");
        if (c_.peek() == '\\') c_.advance();
        c_.advance();
      }
      std::string_view pattern = c_.text().substr(start, c_.offset() - start);
      c_.advance();
      RegexFlags flags;
      while (is_name_char(c_.peek()) && !c_.done()) {
        char f = c_.peek();
        if (f == 'i') {
          flags.ignore_case = true;
        } else if (f == 's') {
          flags.dot_all = true;
        } else if (f != 'm' && f != 'u') {  // m only changes ^ and $, which are refused anyway
          return c_.error(str_cat("the regex flag '", std::string(1, f), "' is not supported (i, m, s and u are)"));
        }
        c_.advance();
      }
      auto parsed = parse_regex(pool_, pattern, flags);
      if (!parsed.is_ok()) return c_.error(at, parsed.status().message());
      if (parsed->anchored_start || parsed->anchored_end) return c_.error(at, "anchors (^, $) in a regex literal");
      *out = regex_expr(parsed->regex, std::string(c_.text().substr(begin, c_.offset() - begin)), at);
      return Status::ok();
    }
    if (ch == '(' || ch == '[') {
      if (depth + 1 > limits::kMaxNesting) return c_.error(str_cat("groups nested deeper than ", limits::kMaxNesting));
      c_.advance();
      KILN_RETURN_IF_ERROR(alternatives(depth + 1, out));
      gap(depth + 1);
      char close = ch == '(' ? ')' : ']';
      if (c_.peek() != close || c_.done()) return c_.error(at, str_cat("'", std::string(1, close), "' expected"));
      c_.advance();
      if (ch == '[') *out = out_.add(Expr{Expr::Kind::kRepeat, {*out}, 0, "", 0, 1, at});
      return Status::ok();
    }
    if (is_name_start(ch)) {
      std::string n = name();
      *out = out_.add(Expr{Expr::Kind::kRef, {}, 0, std::move(n), 0, 0, at});
      return Status::ok();
    }
    return c_.error(str_cat("unexpected '", std::string(1, ch), "'"));
  }

  Status number(uint32_t* v) {
    if (c_.peek() < '0' || c_.peek() > '9') return c_.error("a number expected");
    return c_.read_count(v);
  }

  Status postfix(uint32_t* item) {
    Pos at = c_.pos();
    char ch = c_.peek();
    uint32_t min = 0, max = 0;
    if (ch == '*' || ch == '+' || ch == '?') {
      c_.advance();
      min = ch == '+' ? 1 : 0;
      max = ch == '?' ? 1 : kUnbounded;
    } else if (ch == '~') {
      c_.advance();
      skip_inline();
      KILN_RETURN_IF_ERROR(number(&min));
      max = min;
      if (c_.starts_with("..")) {
        c_.advance(2);
        KILN_RETURN_IF_ERROR(number(&max));
        if (max < min) return c_.error(at, "a repetition range out of order");
      }
    } else {
      return Status::ok();
    }
    *item = out_.add(Expr{Expr::Kind::kRepeat, {*item}, 0, "", min, max, at});
    char next = c_.peek();
    if (next == '*' || next == '+' || next == '?' || next == '~') {
      return c_.error("a repetition of a repetition (put the inner one in parentheses)");
    }
    return Status::ok();
  }

  // A terminal's regex; terminals may use terminals, never rules, and never themselves.
  Status resolve(const std::string& n, size_t depth, RegexId* out) {
    auto it = term_index_.find(n);
    if (it == term_index_.end()) {
      auto imported = imported_.find(n);
      if (imported != imported_.end()) {
        *out = imported->second;
        return Status::ok();
      }
      return invalid_argument(str_cat("grammar: terminal '", n, "' is not defined"));
    }
    uint32_t i = it->second;
    if (resolved_.size() < term_defs_.size()) resolved_.resize(term_defs_.size()), state_.resize(term_defs_.size());
    if (state_[i] == 2) {
      *out = resolved_[i];
      return Status::ok();
    }
    if (state_[i] == 1) {
      return c_.error(term_defs_[i].pos, str_cat("terminal '", n, "' refers to itself (terminals must be regular)"));
    }
    if (depth > kMaxTerminalDepth) {
      return c_.error(term_defs_[i].pos, str_cat("terminals nested deeper than ", kMaxTerminalDepth));
    }
    state_[i] = 1;
    KILN_RETURN_IF_ERROR(term_regex(term_defs_[i].expr, depth + 1, out));
    state_[i] = 2;
    resolved_[i] = *out;
    return Status::ok();
  }

  Status term_regex(uint32_t id, size_t depth, RegexId* out) {
    const Expr& e = out_.exprs[id];
    switch (e.kind) {
      case Expr::Kind::kRegex: *out = e.regex; return Status::ok();
      case Expr::Kind::kRef:
        if (!is_terminal_name(e.name)) {
          return c_.error(e.pos, str_cat("'", e.name, "' is a rule: a terminal can use only terminals"));
        }
        if (!term_index_.contains(e.name) && !imported(e.name)) {
          return c_.error(e.pos, str_cat("'", e.name, "' is not defined"));
        }
        return resolve(e.name, depth, out);
      default: break;
    }
    std::vector<RegexId> parts;
    size_t flat = 0;
    for (uint32_t k : e.kids) {
      RegexId r = 0;
      KILN_RETURN_IF_ERROR(term_regex(k, depth, &r));
      parts.push_back(r);
      const RegexNode& n = pool_.node(r);
      flat += n.kind == RegexNode::Kind::kConcat || n.kind == RegexNode::Kind::kAlt ? n.children.size() : 1;
    }
    // Terminals used twice by terminals used twice ... double at each level (the pool flattens).
    if (flat > limits::kMaxRegexNodes) {
      return c_.error(e.pos, str_cat("a terminal larger than ", limits::kMaxRegexNodes, " regex nodes"));
    }
    *out = e.kind == Expr::Kind::kSeq   ? pool_.concat(std::move(parts))
           : e.kind == Expr::Kind::kAlt ? pool_.alt(std::move(parts))
                                        : pool_.repeat(parts[0], e.min, e.max);
    return Status::ok();
  }

  bool imported(const std::string& n) const { return imported_.contains(n); }

  Cursor c_;
  Parsed& out_;
  RegexPool& pool_;
  std::vector<Definition> term_defs_;
  std::unordered_map<std::string, uint32_t> term_index_;
  std::vector<RegexId> resolved_;
  std::vector<uint8_t> state_;
  std::vector<std::pair<std::string, std::string>> imports_;  // alias, common name
  std::unordered_map<std::string, RegexId> imported_;          // alias -> regex
  std::vector<uint32_t> ignores_;
};

}  // namespace

Status parse_lark(std::string_view text, Parsed* out) { return LarkReader(text, out).run(false); }

}  // namespace kiln::grammar::text_detail
