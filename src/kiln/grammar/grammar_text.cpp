// grammar_from_text: detection, and the compiler shared by the GBNF and Lark readers.
#include "kiln/grammar/grammar_text.h"

#include <cctype>
#include <unordered_map>

#include "kiln/core/str.h"
#include "kiln/grammar/char_sets.h"
#include "kiln/grammar/grammar_text_internal.h"
#include "kiln/grammar/limits.h"

namespace kiln::grammar {
namespace text_detail {

Status Cursor::error(Pos at, std::string_view what) const {
  return invalid_argument(str_cat("grammar: line ", at.line, " column ", at.col, ": ", what));
}

Status Cursor::read_count(uint32_t* v) {
  const Pos at = pos_;
  uint64_t x = 0;
  while (peek() >= '0' && peek() <= '9') {
    x = x * 10 + static_cast<uint64_t>(peek() - '0');
    if (x > limits::kMaxRepeat) return error(at, str_cat("a repeat count over ", limits::kMaxRepeat));
    advance();
  }
  *v = static_cast<uint32_t>(x);
  return Status::ok();
}

Status Cursor::read_char(uint32_t* cp) {
  Pos at = pos_;
  if (peek() != '\\') {
    size_t n = decode_utf8(s_, i_, cp);
    if (n == 0) return error("invalid UTF-8");
    advance(n);
    return Status::ok();
  }
  advance();
  char c = peek();
  if (done()) return error(at, "'\\' at the end of the text");
  advance();
  auto hex = [&](int digits) -> Status {
    uint32_t v = 0;
    for (int k = 0; k < digits; ++k) {
      char h = peek();
      int d = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10 : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
      if (d < 0) return error(at, str_cat("an invalid \\", c, " escape (", digits, " hex digits expected)"));
      v = v * 16 + static_cast<uint32_t>(d);
      advance();
    }
    if (v > kMaxCodePoint) return error(at, "an escape over U+10FFFF");
    *cp = v;
    return Status::ok();
  };
  switch (c) {
    case 'n': *cp = '\n'; return Status::ok();
    case 'r': *cp = '\r'; return Status::ok();
    case 't': *cp = '\t'; return Status::ok();
    case 'f': *cp = '\f'; return Status::ok();
    case 'v': *cp = '\v'; return Status::ok();
    case '0': *cp = 0; return Status::ok();
    case 'x': return hex(2);
    case 'u': return hex(4);
    case 'U': return hex(8);
    default: break;
  }
  auto uc = static_cast<unsigned char>(c);
  bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
  if (uc < 0x20 || uc >= 0x7F || alnum) return error(at, str_cat("an unknown escape '\\", c, "'"));
  *cp = uc;
  return Status::ok();
}

namespace {

// Both walk a DAG whose shared nodes can be reached along exponentially many paths (a rule used
// twice by a rule used twice ...), so each node is visited once.
bool nullable_memo(const RegexPool& pool, RegexId r, std::unordered_map<RegexId, bool>* memo) {
  const RegexNode& n = pool.node(r);
  switch (n.kind) {
    case RegexNode::Kind::kEmpty: return true;
    case RegexNode::Kind::kConcat:
    case RegexNode::Kind::kAlt:
    case RegexNode::Kind::kRepeat: break;
    default: return false;
  }
  auto it = memo->find(r);
  if (it != memo->end()) return it->second;
  bool out = false;
  if (n.kind == RegexNode::Kind::kConcat) {
    out = true;
    for (RegexId c : n.children) out = out && nullable_memo(pool, c, memo);
  } else if (n.kind == RegexNode::Kind::kAlt) {
    for (RegexId c : n.children) out = out || nullable_memo(pool, c, memo);
  } else {
    out = n.min == 0 || nullable_memo(pool, n.children[0], memo);
  }
  memo->emplace(r, out);
  return out;
}

struct NonEmpty {
  RegexPool& pool;
  std::unordered_map<RegexId, bool> nullable;
  std::unordered_map<RegexId, RegexId> memo;

  bool null(RegexId r) { return nullable_memo(pool, r, &nullable); }

  RegexId of(RegexId r) {
    if (!null(r)) return r;
    auto it = memo.find(r);
    if (it != memo.end()) return it->second;
    const RegexNode n = pool.node(r);
    RegexId out = pool.nothing();
    if (n.kind == RegexNode::Kind::kAlt) {
      std::vector<RegexId> options;
      for (RegexId c : n.children) options.push_back(of(c));
      out = pool.alt(std::move(options));
    } else if (n.kind == RegexNode::Kind::kConcat) {
      // A non-empty match has a first non-empty part; every part before it matched empty.
      std::vector<RegexId> options;
      for (size_t i = 0; i < n.children.size(); ++i) {
        std::vector<RegexId> parts = {of(n.children[i])};
        parts.insert(parts.end(), n.children.begin() + static_cast<std::ptrdiff_t>(i) + 1, n.children.end());
        options.push_back(pool.concat(std::move(parts)));
      }
      out = pool.alt(std::move(options));
    } else if (n.kind == RegexNode::Kind::kRepeat) {
      RegexId x = n.children[0];
      if (!null(x)) {
        out = pool.repeat(x, 1, n.max);  // min is 0, or r would not be nullable
      } else {
        // Empty repetitions can be dropped or added freely, so one non-empty one comes first.
        uint32_t rest_max = n.max == kUnbounded ? kUnbounded : n.max - 1;
        out = pool.concat({of(x), pool.repeat(x, n.min == 0 ? 0 : n.min - 1, rest_max)});
      }
    }
    memo.emplace(r, out);
    return out;
  }
};

}  // namespace

bool nullable(const RegexPool& pool, RegexId r) {
  std::unordered_map<RegexId, bool> memo;
  return nullable_memo(pool, r, &memo);
}

RegexId non_empty(RegexPool& pool, RegexId r) { return NonEmpty{pool, {}, {}}.of(r); }

namespace {

constexpr uint32_t kNoRule = ~0u;
// Deeper chains of regular rules stay rules: every walk over a regex recurses through its depth,
// which is this times an expression's depth.
constexpr size_t kMaxInlineDepth = 16;
constexpr size_t kMaxLabel = 60;
constexpr size_t kMaxFlat = 4096;  // children of one merged concatenation or alternation

class Compiler {
 public:
  Compiler(const Parsed& p, Grammar* g) : p_(p), g_(*g), pool_(g->regexes) {}

  Status run() {
    for (size_t i = 0; i < p_.rules.size(); ++i) {
      const Definition& d = p_.rules[i];
      if (!index_.emplace(d.name, static_cast<uint32_t>(i)).second || p_.terminals.contains(d.name)) {
        return Cursor("").error(d.pos, str_cat("'", d.name, "' is defined twice"));
      }
    }
    for (const Expr& e : p_.exprs) {
      if (e.kind == Expr::Kind::kRef && !index_.contains(e.name) && !p_.terminals.contains(e.name)) {
        return Cursor("").error(e.pos, str_cat("'", e.name, "' is not defined"));
      }
    }
    auto start = index_.find(p_.start);
    if (start == index_.end()) return invalid_argument(str_cat("grammar: there is no start rule '", p_.start, "'"));
    state_.assign(p_.rules.size(), 0);
    def_regex_.assign(p_.rules.size(), std::nullopt);
    grammar_rule_.assign(p_.rules.size(), kNoRule);
    for (size_t i = 0; i < p_.rules.size(); ++i) (void)regular_def(static_cast<uint32_t>(i), 0);
    if (p_.ignore) {
      RegexId ign = pool_.star(*p_.ignore);
      KILN_ASSIGN_OR_RETURN(ignore_, symbol_for_regex(ign, "%ignore", "%ignore"));
    }
    for (size_t i = 0; i < p_.rules.size(); ++i) {
      if (!def_regex_[i] || i == start->second) grammar_rule_[i] = g_.add_rule(p_.rules[i].name);
    }
    for (size_t i = 0; i < p_.rules.size(); ++i) {
      if (grammar_rule_[i] == kNoRule) continue;
      KILN_RETURN_IF_ERROR(fill_rule(grammar_rule_[i], p_.rules[i].expr, p_.rules[i].name));
    }
    g_.start = grammar_rule_[start->second];
    if (ignore_) {
      uint32_t top = g_.add_rule("$start");
      KILN_RETURN_IF_ERROR(add_alternative(top, {*ignore_, Symbol::rule(g_.start), *ignore_}));
      g_.start = top;
    }
    return g_.validate();
  }

 private:
  // The regex a rule stands for when it is regular (refers to no rule that refers back to it).
  std::optional<RegexId> regular_def(uint32_t i, size_t depth) {
    if (p_.ignore || depth > kMaxInlineDepth) return std::nullopt;
    if (state_[i] == 2) return def_regex_[i];
    if (state_[i] == 1) return std::nullopt;  // recursive
    state_[i] = 1;
    bool capped = false;
    std::optional<RegexId> r = regex_of(p_.rules[i].expr, depth, &capped);
    if (capped) {
      state_[i] = 0;  // a shallower visit may still find it regular
      return std::nullopt;
    }
    state_[i] = 2;
    def_regex_[i] = r;
    return r;
  }

  // The regex an expression stands for when it is regular. With %ignore, only single tokens (a
  // literal, a regex, a terminal, or a choice of them) are: anything longer has gaps to fill.
  std::optional<RegexId> regex_of(uint32_t id, size_t depth, bool* capped) {
    const Expr& e = p_.exprs[id];
    if (e.kind == Expr::Kind::kRegex) return e.regex;
    if (e.kind == Expr::Kind::kRef) {
      auto t = p_.terminals.find(e.name);
      if (t != p_.terminals.end()) return t->second;
      if (depth + 1 > kMaxInlineDepth) *capped = true;
      return regular_def(index_.at(e.name), depth + 1);
    }
    if (p_.ignore && e.kind != Expr::Kind::kAlt) return std::nullopt;
    std::vector<RegexId> parts;
    size_t flat = 0;
    for (uint32_t k : e.kids) {
      std::optional<RegexId> r = regex_of(k, depth, capped);
      if (!r) return std::nullopt;
      parts.push_back(*r);
      flat += flat_size(*r);
    }
    // The pool flattens nested concatenations and alternations, so a rule used twice by a rule
    // used twice ... would double at each level: past a size, a rule stays a rule.
    if (e.kind != Expr::Kind::kRepeat && flat > kMaxFlat) return std::nullopt;
    switch (e.kind) {
      case Expr::Kind::kSeq: return pool_.concat(std::move(parts));
      case Expr::Kind::kAlt: return pool_.alt(std::move(parts));
      default: return pool_.repeat(parts[0], e.min, e.max);
    }
  }

  size_t flat_size(RegexId r) const {
    const RegexNode& n = pool_.node(r);
    bool list = n.kind == RegexNode::Kind::kConcat || n.kind == RegexNode::Kind::kAlt;
    return list ? n.children.size() : 1;
  }

  // A terminal's name for messages: the source text of its items, shortened.
  std::string label(const std::vector<uint32_t>& items) const {
    std::string s;
    for (uint32_t id : items) {
      if (!s.empty()) s += " ";
      s += p_.exprs[id].name.empty() ? "(...)" : p_.exprs[id].name;
      if (s.size() > kMaxLabel) break;
    }
    if (s.size() <= kMaxLabel) return s;
    size_t cut = kMaxLabel;
    while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;  // whole code points
    return s.substr(0, cut) + "...";
  }
  std::optional<RegexId> regex_of_cached(uint32_t id) {
    bool capped = false;
    return regex_of(id, 0, &capped);
  }

  Result<uint32_t> new_rule(std::string_view parent) {
    if (g_.rules.size() >= limits::kMaxRules) {
      return invalid_argument(str_cat("grammar: more than ", limits::kMaxRules, " rules"));
    }
    return g_.add_rule(str_cat(parent, "#", ++helpers_));
  }

  Status add_alternative(uint32_t rule, std::vector<Symbol> symbols) {
    symbols_ += symbols.size() + 1;
    if (symbols_ > limits::kMaxSymbols) {
      return invalid_argument(str_cat("grammar: more than ", limits::kMaxSymbols, " symbols"));
    }
    g_.add_alternative(rule, std::move(symbols));
    return Status::ok();
  }

  // A regex as a symbol: a terminal, or an optional one when it matches the empty string (so no
  // terminal ever matches empty); nullopt when it matches only the empty string.
  Result<std::optional<Symbol>> symbol_for_regex(RegexId r, const std::string& name, std::string_view parent) {
    if (r == pool_.empty()) return std::optional<Symbol>();
    if (!nullable(pool_, r)) return std::optional<Symbol>(Symbol::terminal(g_.add_terminal(r, name)));
    RegexId ne = non_empty(pool_, r);
    if (ne == pool_.nothing()) return std::optional<Symbol>();
    KILN_ASSIGN_OR_RETURN(uint32_t opt, new_rule(parent));
    KILN_RETURN_IF_ERROR(add_alternative(opt, {}));
    KILN_RETURN_IF_ERROR(add_alternative(opt, {Symbol::terminal(g_.add_terminal(ne, name))}));
    return std::optional<Symbol>(Symbol::rule(opt));
  }

  Status fill_rule(uint32_t rule, uint32_t expr, std::string_view name) {
    const Expr& e = p_.exprs[expr];
    std::vector<uint32_t> options = e.kind == Expr::Kind::kAlt ? e.kids : std::vector<uint32_t>{expr};
    bool any = false;
    for (uint32_t o : options) {
      std::vector<Symbol> seq;
      bool dead = false;
      KILN_RETURN_IF_ERROR(compile_seq(o, name, &seq, &dead));
      if (dead) continue;
      KILN_RETURN_IF_ERROR(add_alternative(rule, std::move(seq)));
      any = true;
    }
    if (!any) {
      return Cursor("").error(e.pos, str_cat("'", name, "' matches no string"));
    }
    return Status::ok();
  }

  void push(std::vector<Symbol>* seq, Symbol s) const {
    if (ignore_ && !seq->empty()) seq->push_back(*ignore_);
    seq->push_back(s);
  }

  // One alternative: runs of adjacent regular items become one terminal (without %ignore), the
  // rest rule references. `dead`: the alternative matches no string.
  Status compile_seq(uint32_t expr, std::string_view name, std::vector<Symbol>* seq, bool* dead) {
    const Expr& e = p_.exprs[expr];
    std::vector<uint32_t> items = e.kind == Expr::Kind::kSeq ? e.kids : std::vector<uint32_t>{expr};
    std::vector<RegexId> run;
    size_t run_flat = 0;
    std::vector<uint32_t> run_items;
    auto flush = [&]() -> Status {
      if (run.empty()) return Status::ok();
      RegexId r = pool_.concat(run);
      std::string lbl = label(run_items);
      run.clear(), run_items.clear(), run_flat = 0;
      if (r == pool_.nothing()) *dead = true;
      KILN_ASSIGN_OR_RETURN(std::optional<Symbol> s, symbol_for_regex(r, lbl, name));
      if (s) push(seq, *s);
      return Status::ok();
    };
    for (uint32_t item : items) {
      std::optional<RegexId> r = regex_of_cached(item);
      if (r) {
        if (run_flat + flat_size(*r) > kMaxFlat) KILN_RETURN_IF_ERROR(flush());  // two terminals in a row
        run_flat += flat_size(*r);
        run.push_back(*r);
        run_items.push_back(item);
        if (p_.ignore) KILN_RETURN_IF_ERROR(flush());  // every token is its own terminal
        continue;
      }
      KILN_RETURN_IF_ERROR(flush());
      KILN_ASSIGN_OR_RETURN(std::optional<Symbol> s, compile_item(item, name));
      if (s) push(seq, *s);
    }
    return flush();
  }

  // A non-regular item as one symbol (nullopt when it derives only the empty string).
  Result<std::optional<Symbol>> compile_item(uint32_t item, std::string_view name) {
    const Expr& e = p_.exprs[item];
    if (e.kind == Expr::Kind::kRef) return std::optional<Symbol>(Symbol::rule(grammar_rule_[index_.at(e.name)]));
    if (e.kind == Expr::Kind::kRegex) return symbol_for_regex(e.regex, label({item}), name);
    if (e.kind != Expr::Kind::kRepeat) {
      std::optional<RegexId> r = regex_of_cached(item);
      if (r) return symbol_for_regex(*r, label({item}), name);  // a single token (with %ignore)
      KILN_ASSIGN_OR_RETURN(uint32_t group, new_rule(name));
      KILN_RETURN_IF_ERROR(fill_rule(group, item, name));
      return std::optional<Symbol>(Symbol::rule(group));
    }
    KILN_ASSIGN_OR_RETURN(std::optional<Symbol> x, compile_item(e.kids[0], name));
    if (!x) return std::optional<Symbol>();
    return repeat_rule(*x, e.min, e.max, name);
  }

  // x{min,max} over rules: x (gap x){min-1} then a tail of (gap x){0,k}, a chain of optional
  // rules or, unbounded, a left-recursive one; with min 0, nothing or x and the tail.
  Result<std::optional<Symbol>> repeat_rule(Symbol x, uint32_t min, uint32_t max, std::string_view name) {
    if (max == 0) return std::optional<Symbol>();
    bool star_only = min == 0 && max == kUnbounded && !ignore_;  // x*: the tail rule alone
    std::vector<Symbol> gap_x;
    if (ignore_) gap_x.push_back(*ignore_);
    gap_x.push_back(x);
    uint32_t first = min == 0 ? 1 : min;
    std::optional<Symbol> tail;
    if (max == kUnbounded) {
      KILN_ASSIGN_OR_RETURN(uint32_t star, new_rule(name));
      KILN_RETURN_IF_ERROR(add_alternative(star, {}));
      std::vector<Symbol> more = {Symbol::rule(star)};
      more.insert(more.end(), gap_x.begin(), gap_x.end());
      KILN_RETURN_IF_ERROR(add_alternative(star, std::move(more)));
      tail = Symbol::rule(star);
      if (star_only) return tail;
    } else {
      for (uint32_t k = first; k < max; ++k) {
        KILN_ASSIGN_OR_RETURN(uint32_t opt, new_rule(name));
        KILN_RETURN_IF_ERROR(add_alternative(opt, {}));
        std::vector<Symbol> more = gap_x;
        if (tail) more.push_back(*tail);
        KILN_RETURN_IF_ERROR(add_alternative(opt, std::move(more)));
        tail = Symbol::rule(opt);
      }
    }
    KILN_ASSIGN_OR_RETURN(uint32_t rep, new_rule(name));
    if (min == 0) KILN_RETURN_IF_ERROR(add_alternative(rep, {}));
    std::vector<Symbol> body = {x};
    for (uint32_t k = 1; k < first; ++k) body.insert(body.end(), gap_x.begin(), gap_x.end());
    if (tail) body.push_back(*tail);
    KILN_RETURN_IF_ERROR(add_alternative(rep, std::move(body)));
    return std::optional<Symbol>(Symbol::rule(rep));
  }

  const Parsed& p_;
  Grammar& g_;
  RegexPool& pool_;
  std::unordered_map<std::string, uint32_t> index_;
  std::vector<uint8_t> state_;  // 0 unvisited, 1 in progress, 2 done
  std::vector<std::optional<RegexId>> def_regex_;
  std::vector<uint32_t> grammar_rule_;
  std::optional<Symbol> ignore_;
  size_t symbols_ = 0;
  uint32_t helpers_ = 0;
};

}  // namespace

Status compile_parsed(const Parsed& parsed, Grammar* g) { return Compiler(parsed, g).run(); }

}  // namespace text_detail

Result<Grammar> grammar_from_text(std::string_view text) {
  if (text.size() > limits::kMaxSourceBytes) {
    return invalid_argument(str_cat("grammar: the text is longer than ", limits::kMaxSourceBytes, " bytes"));
  }
  Grammar g;
  text_detail::Parsed parsed;
  parsed.pool = &g.regexes;
  // GBNF defines rules with "name ::=" (Lark with "name:"); a "::=" inside a Lark literal does
  // not count, since it does not follow a name at the start of a line.
  bool gbnf = false;
  for (size_t line = 0; line < text.size() && !gbnf;) {
    size_t i = line;
    while (i < text.size() && (text[i] == ' ' || text[i] == '\t')) ++i;
    size_t name = i;
    while (i < text.size() && (std::isalnum(static_cast<unsigned char>(text[i])) || text[i] == '-' || text[i] == '_')) ++i;
    bool named = i > name;
    while (i < text.size() && (text[i] == ' ' || text[i] == '\t')) ++i;
    gbnf = named && text.substr(i).starts_with("::=");
    size_t next = text.find('\n', i);
    line = next == std::string_view::npos ? text.size() : next + 1;
  }
  KILN_RETURN_IF_ERROR(gbnf ? text_detail::parse_gbnf(text, &parsed) : text_detail::parse_lark(text, &parsed));
  KILN_RETURN_IF_ERROR(text_detail::compile_parsed(parsed, &g));
  return g;
}

}  // namespace kiln::grammar
