#include "kiln/grammar/grammar.h"

#include <algorithm>

#include "kiln/core/str.h"
#include "kiln/grammar/limits.h"

namespace kiln::grammar {

std::vector<CharRange> normalize_ranges(std::vector<CharRange> ranges) {
  std::erase_if(ranges, [](const CharRange& r) { return r.lo > r.hi; });
  std::sort(ranges.begin(), ranges.end(),
            [](const CharRange& a, const CharRange& b) { return a.lo < b.lo || (a.lo == b.lo && a.hi < b.hi); });
  std::vector<CharRange> out;
  for (const CharRange& r : ranges) {
    if (!out.empty() && r.lo <= out.back().hi + 1 && out.back().hi != kUnbounded) {
      out.back().hi = std::max(out.back().hi, r.hi);
    } else {
      out.push_back(r);
    }
  }
  return out;
}

std::vector<CharRange> complement_ranges(const std::vector<CharRange>& ranges) {
  std::vector<CharRange> in = normalize_ranges(ranges);
  in.push_back({0xD800, 0xDFFF});
  in = normalize_ranges(std::move(in));
  std::vector<CharRange> out;
  uint32_t next = 0;
  for (const CharRange& r : in) {
    if (r.lo > kMaxCodePoint) break;
    if (r.lo > next) out.push_back({next, r.lo - 1});
    next = std::max(next, r.hi + 1);
  }
  if (next <= kMaxCodePoint) out.push_back({next, kMaxCodePoint});
  return out;
}

namespace {

std::string hex(uint32_t v, int min_digits) {
  static const char* kDigits = "0123456789ABCDEF";
  std::string out;
  while (v != 0 || static_cast<int>(out.size()) < min_digits) {
    out.insert(out.begin(), kDigits[v & 15]);
    v >>= 4;
  }
  return out;
}

std::string encode(const RegexNode& n) {
  std::string key;
  key.push_back(static_cast<char>(n.kind));
  auto put = [&key](uint32_t v) { key.append(reinterpret_cast<const char*>(&v), sizeof v); };
  put(n.min);
  put(n.max);
  put(static_cast<uint32_t>(n.ranges.size()));
  for (const CharRange& r : n.ranges) {
    put(r.lo);
    put(r.hi);
  }
  for (RegexId c : n.children) put(c);
  return key;
}

// Code points that have a UTF-8 encoding: surrogates removed, clipped to kMaxCodePoint.
std::vector<CharRange> scalar_values(std::vector<CharRange> ranges) {
  std::vector<CharRange> out;
  for (CharRange r : normalize_ranges(std::move(ranges))) {
    if (r.lo > kMaxCodePoint) continue;
    r.hi = std::min(r.hi, kMaxCodePoint);
    if (r.lo < 0xD800 && r.hi > 0xDFFF) {
      out.push_back({r.lo, 0xD7FF});
      out.push_back({0xE000, r.hi});
    } else if (r.lo >= 0xD800 && r.hi <= 0xDFFF) {
      continue;
    } else if (r.lo >= 0xD800 && r.lo <= 0xDFFF) {
      out.push_back({0xE000, r.hi});
    } else if (r.hi >= 0xD800 && r.hi <= 0xDFFF) {
      out.push_back({r.lo, 0xD7FF});
    } else {
      out.push_back(r);
    }
  }
  return out;
}

}  // namespace

RegexPool::RegexPool() {
  intern(RegexNode{RegexNode::Kind::kNothing, {}, {}, 0, 0});
  intern(RegexNode{RegexNode::Kind::kEmpty, {}, {}, 0, 0});
}

RegexId RegexPool::intern(RegexNode node) {
  std::string key = encode(node);
  auto it = index_.find(key);
  if (it != index_.end()) return it->second;
  auto id = static_cast<RegexId>(nodes_.size());
  nodes_.push_back(std::move(node));
  index_.emplace(std::move(key), id);
  return id;
}

RegexId RegexPool::chars(std::vector<CharRange> ranges) {
  ranges = scalar_values(std::move(ranges));
  if (ranges.empty()) return nothing();
  return intern(RegexNode{RegexNode::Kind::kChars, std::move(ranges), {}, 0, 0});
}

RegexId RegexPool::any_char() { return chars({{0, kMaxCodePoint}}); }

RegexId RegexPool::bytes(std::vector<CharRange> ranges) {
  std::vector<CharRange> clipped;
  for (CharRange r : normalize_ranges(std::move(ranges))) {
    if (r.lo > 255) continue;
    clipped.push_back({r.lo, std::min<uint32_t>(r.hi, 255)});
  }
  if (clipped.empty()) return nothing();
  return intern(RegexNode{RegexNode::Kind::kBytes, std::move(clipped), {}, 0, 0});
}

RegexId RegexPool::literal(std::string_view utf8) {
  std::vector<RegexId> parts;
  parts.reserve(utf8.size());
  for (unsigned char c : utf8) parts.push_back(bytes({{c, c}}));
  return concat(std::move(parts));
}

RegexId RegexPool::concat(std::vector<RegexId> parts) {
  std::vector<RegexId> flat;
  for (RegexId p : parts) {
    const RegexNode& n = nodes_[p];
    if (n.kind == RegexNode::Kind::kNothing) return nothing();
    if (n.kind == RegexNode::Kind::kEmpty) continue;
    if (n.kind == RegexNode::Kind::kConcat) {
      flat.insert(flat.end(), n.children.begin(), n.children.end());
    } else {
      flat.push_back(p);
    }
  }
  if (flat.empty()) return empty();
  if (flat.size() == 1) return flat[0];
  return intern(RegexNode{RegexNode::Kind::kConcat, {}, std::move(flat), 0, 0});
}

RegexId RegexPool::alt(std::vector<RegexId> options) {
  std::vector<RegexId> flat;
  for (RegexId o : options) {
    const RegexNode& n = nodes_[o];
    if (n.kind == RegexNode::Kind::kNothing) continue;
    if (n.kind == RegexNode::Kind::kAlt) {
      flat.insert(flat.end(), n.children.begin(), n.children.end());
    } else {
      flat.push_back(o);
    }
  }
  std::sort(flat.begin(), flat.end());
  flat.erase(std::unique(flat.begin(), flat.end()), flat.end());
  if (flat.empty()) return nothing();
  if (flat.size() == 1) return flat[0];
  return intern(RegexNode{RegexNode::Kind::kAlt, {}, std::move(flat), 0, 0});
}

RegexId RegexPool::repeat(RegexId r, uint32_t min, uint32_t max) {
  if (min > max) return nothing();
  if (max == 0) return empty();
  const RegexNode& n = nodes_[r];
  if (n.kind == RegexNode::Kind::kNothing) return min == 0 ? empty() : nothing();
  if (n.kind == RegexNode::Kind::kEmpty) return empty();
  if (min == 1 && max == 1) return r;
  return intern(RegexNode{RegexNode::Kind::kRepeat, {}, {r}, min, max});
}

std::string RegexPool::to_string(RegexId id) const {
  const RegexNode& n = nodes_[id];
  auto range_text = [](const CharRange& r, bool is_byte) {
    auto one = [is_byte](uint32_t c) {
      if (c >= 0x21 && c < 0x7F && c != '\\' && c != ']' && c != '-' && c != '^') {
        return std::string(1, static_cast<char>(c));
      }
      return is_byte ? str_cat("\\x", hex(c, 2)) : str_cat("\\u{", hex(c, 1), "}");
    };
    return r.lo == r.hi ? one(r.lo) : str_cat(one(r.lo), "-", one(r.hi));
  };
  switch (n.kind) {
    case RegexNode::Kind::kNothing: return "[]";
    case RegexNode::Kind::kEmpty: return "()";
    case RegexNode::Kind::kChars:
    case RegexNode::Kind::kBytes: {
      bool is_byte = n.kind == RegexNode::Kind::kBytes;
      if (n.ranges.size() == 1 && n.ranges[0].lo == n.ranges[0].hi) return range_text(n.ranges[0], is_byte);
      std::string s = "[";
      for (const CharRange& r : n.ranges) s += range_text(r, is_byte);
      return s + "]";
    }
    case RegexNode::Kind::kConcat: {
      std::string s;
      for (RegexId c : n.children) {
        bool wrap = nodes_[c].kind == RegexNode::Kind::kAlt;
        s += wrap ? str_cat("(", to_string(c), ")") : to_string(c);
      }
      return s;
    }
    case RegexNode::Kind::kAlt: {
      std::string s;
      for (size_t i = 0; i < n.children.size(); ++i) s += (i ? "|" : "") + to_string(n.children[i]);
      return s;
    }
    case RegexNode::Kind::kRepeat: {
      std::string inner = to_string(n.children[0]);
      const RegexNode& c = nodes_[n.children[0]];
      if (c.kind == RegexNode::Kind::kConcat || c.kind == RegexNode::Kind::kAlt ||
          c.kind == RegexNode::Kind::kRepeat) {
        inner = str_cat("(", inner, ")");
      }
      if (n.min == 0 && n.max == 1) return inner + "?";
      if (n.min == 0 && n.max == kUnbounded) return inner + "*";
      if (n.min == 1 && n.max == kUnbounded) return inner + "+";
      if (n.max == kUnbounded) return str_cat(inner, "{", n.min, ",}");
      if (n.min == n.max) return str_cat(inner, "{", n.min, "}");
      return str_cat(inner, "{", n.min, ",", n.max, "}");
    }
  }
  return "?";
}

uint32_t Grammar::add_terminal(RegexId regex, std::string name) {
  auto [it, inserted] = terminal_of_regex_.emplace(regex, static_cast<uint32_t>(terminals.size()));
  if (inserted) terminals.push_back(Terminal{regex, std::move(name)});
  return it->second;
}

uint32_t Grammar::add_rule(std::string name) {
  rules.push_back(Rule{std::move(name), {}});
  return static_cast<uint32_t>(rules.size() - 1);
}

void Grammar::add_alternative(uint32_t rule, std::vector<Symbol> symbols) {
  rules[rule].alternatives.push_back(std::move(symbols));
}

Status Grammar::validate() const {
  if (regexes.size() > limits::kMaxRegexNodes) {
    return invalid_argument(str_cat("the grammar has more than ", limits::kMaxRegexNodes, " regular-expression nodes"));
  }
  if (terminals.size() > limits::kMaxTerminals) {
    return invalid_argument(str_cat("the grammar has more than ", limits::kMaxTerminals, " terminals"));
  }
  if (rules.size() > limits::kMaxRules) {
    return invalid_argument(str_cat("the grammar has more than ", limits::kMaxRules, " rules"));
  }
  if (rules.empty() || start >= rules.size()) return invalid_argument("the grammar has no start rule");
  size_t symbols = 0;
  for (const Terminal& t : terminals) {
    if (t.regex >= regexes.size()) return internal_error(str_cat("terminal ", t.name, " has no regex"));
  }
  for (const Rule& r : rules) {
    if (r.alternatives.empty()) return invalid_argument(str_cat("rule '", r.name, "' has no alternatives"));
    for (const auto& alt : r.alternatives) {
      symbols += alt.size();
      for (Symbol s : alt) {
        size_t bound = s.is_terminal() ? terminals.size() : rules.size();
        if (s.index() >= bound) return internal_error(str_cat("rule '", r.name, "' refers to a missing symbol"));
      }
    }
  }
  if (symbols > limits::kMaxSymbols) {
    return invalid_argument(str_cat("the grammar has more than ", limits::kMaxSymbols, " symbols"));
  }
  return Status::ok();
}

std::string Grammar::to_string() const {
  std::string s;
  for (size_t i = 0; i < rules.size(); ++i) {
    const Rule& r = rules[i];
    s += str_cat(i == start ? "*" : "", r.name, " ::=");
    for (size_t a = 0; a < r.alternatives.size(); ++a) {
      s += a ? " |" : "";
      if (r.alternatives[a].empty()) s += " ()";
      for (Symbol sym : r.alternatives[a]) {
        s += " ";
        s += sym.is_terminal() ? str_cat("/", regexes.to_string(terminals[sym.index()].regex), "/")
                               : rules[sym.index()].name;
      }
    }
    s += "\n";
  }
  return s;
}

uint32_t embed_grammar(Grammar* into, const Grammar& from, std::string_view prefix) {
  // Node ids are created children first, so one pass in id order sees every child mapped.
  std::vector<RegexId> regex(from.regexes.size());
  RegexPool& pool = into->regexes;
  for (RegexId id = 0; id < from.regexes.size(); ++id) {
    const RegexNode& n = from.regexes.node(id);
    std::vector<RegexId> kids;
    for (RegexId c : n.children) kids.push_back(regex[c]);
    switch (n.kind) {
      case RegexNode::Kind::kNothing: regex[id] = pool.nothing(); break;
      case RegexNode::Kind::kEmpty: regex[id] = pool.empty(); break;
      case RegexNode::Kind::kChars: regex[id] = pool.chars(n.ranges); break;
      case RegexNode::Kind::kBytes: regex[id] = pool.bytes(n.ranges); break;
      case RegexNode::Kind::kConcat: regex[id] = pool.concat(std::move(kids)); break;
      case RegexNode::Kind::kAlt: regex[id] = pool.alt(std::move(kids)); break;
      case RegexNode::Kind::kRepeat: regex[id] = pool.repeat(kids.at(0), n.min, n.max); break;
    }
  }
  std::vector<uint32_t> terminal(from.terminals.size());
  for (size_t t = 0; t < from.terminals.size(); ++t) {
    terminal[t] = into->add_terminal(regex[from.terminals[t].regex], from.terminals[t].name);
  }
  const auto base = static_cast<uint32_t>(into->rules.size());
  for (const Rule& r : from.rules) into->add_rule(std::string(prefix) + r.name);
  for (size_t r = 0; r < from.rules.size(); ++r) {
    for (const auto& alt : from.rules[r].alternatives) {
      std::vector<Symbol> symbols;
      for (Symbol s : alt) {
        symbols.push_back(s.is_terminal() ? Symbol::terminal(terminal[s.index()]) : Symbol::rule(base + s.index()));
      }
      into->add_alternative(base + static_cast<uint32_t>(r), std::move(symbols));
    }
  }
  return base + from.start;
}

}  // namespace kiln::grammar
