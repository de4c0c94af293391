// Helpers for the matcher tests: a JSON grammar built with the Grammar API, random grammars and
// vocabularies, a sentence sampler that reads the Grammar directly (independent of the lexer
// automata and the chart), and the brute-force mask.
#pragma once

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "kiln/grammar/grammar.h"
#include "kiln/grammar/matcher.h"
#include "kiln/text/utf8.h"

namespace kiln::grammar::test {

// JSON (RFC 8259) with optional whitespace between tokens when `ws`. `members` is left-recursive,
// `elements` right-recursive, `ws` nullable.
inline Grammar json_grammar(bool ws) {
  Grammar g;
  RegexPool& p = g.regexes;
  const RegexId digit = p.chars({{'0', '9'}});
  const RegexId hex = p.chars({{'0', '9'}, {'a', 'f'}, {'A', 'F'}});
  const RegexId plain = p.chars(complement_ranges({{'"', '"'}, {'\\', '\\'}, {0, 0x1F}}));
  const RegexId escape =
      p.concat({p.literal("\\"), p.alt({p.chars({{'"', '"'}, {'\\', '\\'}, {'/', '/'}, {'b', 'b'}, {'f', 'f'},
                                                 {'n', 'n'}, {'r', 'r'}, {'t', 't'}}),
                                        p.concat({p.literal("u"), p.repeat(hex, 4, 4)})})});
  const RegexId str = p.concat({p.literal("\""), p.star(p.alt({plain, escape})), p.literal("\"")});
  const RegexId num = p.concat({p.optional(p.literal("-")),
                                p.alt({p.literal("0"), p.concat({p.chars({{'1', '9'}}), p.star(digit)})}),
                                p.optional(p.concat({p.literal("."), p.plus(digit)})),
                                p.optional(p.concat({p.chars({{'e', 'e'}, {'E', 'E'}}),
                                                     p.optional(p.chars({{'+', '+'}, {'-', '-'}})), p.plus(digit)}))});
  auto T = [&](RegexId r, const char* name) { return Symbol::terminal(g.add_terminal(r, name)); };
  auto L = [&](const char* lit) { return T(p.literal(lit), lit); };
  const Symbol lbrace = L("{"), rbrace = L("}"), lbrack = L("["), rbrack = L("]"), comma = L(","), colon = L(":");
  const Symbol string = T(str, "string"), number = T(num, "number");
  const uint32_t start = g.add_rule("start"), value = g.add_rule("value"), object = g.add_rule("object"),
                 members = g.add_rule("members"), member = g.add_rule("member"), array = g.add_rule("array"),
                 elements = g.add_rule("elements"), w = g.add_rule("ws");
  auto R = [](uint32_t r) { return Symbol::rule(r); };
  g.add_alternative(w, {});
  if (ws) g.add_alternative(w, {T(p.plus(p.chars({{' ', ' '}, {'\t', '\t'}, {'\n', '\n'}, {'\r', '\r'}})), "ws")});
  g.add_alternative(start, {R(w), R(value), R(w)});
  for (Symbol s : {R(object), R(array), string, number, L("true"), L("false"), L("null")}) {
    g.add_alternative(value, {s});
  }
  g.add_alternative(object, {lbrace, R(w), rbrace});
  g.add_alternative(object, {lbrace, R(members), rbrace});
  g.add_alternative(members, {R(member)});
  g.add_alternative(members, {R(members), comma, R(member)});
  g.add_alternative(member, {R(w), string, R(w), colon, R(w), R(value), R(w)});
  g.add_alternative(array, {lbrack, R(w), rbrack});
  g.add_alternative(array, {lbrack, R(elements), rbrack});
  g.add_alternative(elements, {R(w), R(value), R(w)});
  g.add_alternative(elements, {R(w), R(value), R(w), comma, R(elements)});
  g.start = start;
  return g;
}

// A random small grammar over a pool of terminals chosen to be ambiguous (a | aa, [a-c]+ next to
// "ab"), nullable ([0-9]*, x y?), multi-byte (é, ü) and string-like.
inline Grammar random_grammar(std::mt19937& rng) {
  Grammar g;
  RegexPool& p = g.regexes;
  std::vector<RegexId> pool = {
      p.literal("a"),
      p.literal("ab"),
      p.literal("\""),
      p.plus(p.chars({{'a', 'c'}})),
      p.star(p.chars({{'0', '1'}})),
      p.alt({p.literal("a"), p.literal("aa")}),
      p.concat({p.literal("x"), p.optional(p.literal("y"))}),
      p.concat({p.literal("\""), p.star(p.chars(complement_ranges({{'"', '"'}}))), p.literal("\"")}),
      p.plus(p.chars({{0xE9, 0xE9}, {0xFC, 0xFC}})),
      p.literal("b"),
      p.repeat(p.chars({{'a', 'b'}, {'0', '0'}}), 1, 3),
      p.concat({p.literal("a"), p.star(p.literal(" ")), p.literal("b")}),
      // JSON string content with a maxLength: a counting lexer state.
      p.concat({p.literal("\""), p.repeat(p.chars(complement_ranges({{'"', '"'}, {'\\', '\\'}, {0, 0x1F}})), 0, 7),
                p.literal("\"")}),
  };
  std::shuffle(pool.begin(), pool.end(), rng);
  const size_t nt = 2 + rng() % 4;
  std::vector<uint32_t> terms;
  for (size_t i = 0; i < nt; ++i) terms.push_back(g.add_terminal(pool[i], "t" + std::to_string(i)));
  const size_t nr = 1 + rng() % 4;
  for (size_t r = 0; r < nr; ++r) g.add_rule("r" + std::to_string(r));
  for (size_t r = 0; r < nr; ++r) {
    const size_t na = 1 + rng() % 3;
    for (size_t a = 0; a < na; ++a) {
      std::vector<Symbol> alt;
      const size_t len = rng() % 4;
      for (size_t k = 0; k < len; ++k) {
        if (rng() % 3 == 0) {
          alt.push_back(Symbol::rule(static_cast<uint32_t>(rng() % nr)));
        } else {
          alt.push_back(Symbol::terminal(terms[rng() % terms.size()]));
        }
      }
      g.add_alternative(static_cast<uint32_t>(r), alt);
    }
  }
  g.start = 0;
  return g;
}

// Samples sentences of a Grammar by reading its rules and regex nodes directly.
class SentenceSampler {
 public:
  explicit SentenceSampler(const Grammar& g) : g_(g) {
    // height[r]: the least derivation height of rule r (kUnbounded if it derives nothing).
    height_.assign(g.rules.size(), kUnbounded);
    for (bool changed = true; changed;) {
      changed = false;
      for (size_t r = 0; r < g.rules.size(); ++r) {
        for (const auto& alt : g.rules[r].alternatives) {
          const uint32_t h = alt_height(alt);
          if (h != kUnbounded && h + 1 < height_[r]) {
            height_[r] = h + 1;
            changed = true;
          }
        }
      }
    }
  }
  bool productive() const { return height_[g_.start] != kUnbounded; }
  std::string sample(std::mt19937& rng) const {
    std::string out;
    rule(g_.start, 0, rng, out);
    return out;
  }

 private:
  uint32_t alt_height(const std::vector<Symbol>& alt) const {
    uint32_t h = 0;
    for (Symbol s : alt) {
      if (!s.is_terminal()) {
        if (height_[s.index()] == kUnbounded) return kUnbounded;
        h = std::max(h, height_[s.index()]);
      } else if (g_.regexes.node(g_.terminals[s.index()].regex).kind == RegexNode::Kind::kNothing) {
        return kUnbounded;
      }
    }
    return h;
  }
  void rule(uint32_t r, int depth, std::mt19937& rng, std::string& out) const {
    std::vector<const std::vector<Symbol>*> ok;
    for (const auto& alt : g_.rules[r].alternatives) {
      const uint32_t h = alt_height(alt);
      if (h == kUnbounded) continue;
      if (depth > 6 && h + 1 > height_[r]) continue;  // deep: only the shortest ways out
      ok.push_back(&alt);
    }
    const auto& alt = *ok[rng() % ok.size()];
    for (Symbol s : alt) {
      if (s.is_terminal()) {
        regex(g_.terminals[s.index()].regex, rng, out);
      } else {
        rule(s.index(), depth + 1, rng, out);
      }
    }
  }
  void regex(RegexId id, std::mt19937& rng, std::string& out) const {
    const RegexNode& n = g_.regexes.node(id);
    switch (n.kind) {
      case RegexNode::Kind::kNothing:
      case RegexNode::Kind::kEmpty:
        return;
      case RegexNode::Kind::kChars: {
        const CharRange& r = n.ranges[rng() % n.ranges.size()];
        // Mostly ASCII-ish ends of the range, sometimes anywhere in it.
        const uint32_t span = std::min<uint32_t>(r.hi - r.lo, rng() % 4 == 0 ? r.hi - r.lo : 40);
        text::append_utf8(out, static_cast<char32_t>(r.lo + (span ? static_cast<uint32_t>(rng() % (span + 1)) : 0)));
        return;
      }
      case RegexNode::Kind::kBytes: {
        const CharRange& r = n.ranges[rng() % n.ranges.size()];
        out += static_cast<char>(r.lo + rng() % (r.hi - r.lo + 1));
        return;
      }
      case RegexNode::Kind::kConcat:
        for (RegexId c : n.children) regex(c, rng, out);
        return;
      case RegexNode::Kind::kAlt:
        regex(n.children[rng() % n.children.size()], rng, out);
        return;
      case RegexNode::Kind::kRepeat: {
        const uint32_t extra = std::min<uint32_t>(n.max - n.min, 3);
        const uint32_t count = n.min + static_cast<uint32_t>(rng() % (extra + 1));
        for (uint32_t i = 0; i < count; ++i) regex(n.children[0], rng, out);
        return;
      }
    }
  }
  const Grammar& g_;
  std::vector<uint32_t> height_;
};

// Tokens over a small alphabet (with the bytes of é and ü, so that tokens split characters), a
// special token and an end token (both special) and a duplicate.
inline std::shared_ptr<const TokenVocabulary> random_vocabulary(std::mt19937& rng) {
  const std::vector<std::string> alphabet = {"a", "b", "c", "x", "y", "\"", "0", "1", " ", "\xC3", "\xA9", "\xBC",
                                             "{", "}", "[", "]", ",", ":", "-", "2", "e", ".", "t", "r", "u", "n", "l", "f", "s"};
  std::vector<std::string> toks = {"</s>", "<s>"};  // 0: end, 1: special
  for (const auto& a : alphabet) toks.push_back(a);
  toks.push_back("\xC3\xA9");
  toks.push_back("a");  // duplicate bytes
  const size_t extra = 60 + rng() % 80;
  for (size_t i = 0; i < extra; ++i) {
    std::string t;
    const size_t len = 2 + rng() % 4;
    for (size_t k = 0; k < len; ++k) t += alphabet[rng() % alphabet.size()];
    toks.push_back(t);
  }
  toks.push_back("");  // an empty token: never allowed
  std::vector<bool> special(toks.size(), false);
  special[0] = special[1] = true;
  return TokenVocabulary::from_bytes(toks, special, {0});
}

// The reference mask: token t is allowed when accept_token(t) succeeds on a copy.
inline std::vector<uint32_t> brute_force_mask(const Matcher& m, const TokenVocabulary& v) {
  std::vector<uint32_t> words(v.mask_words(), 0);
  for (size_t t = 0; t < v.size(); ++t) {
    Matcher c = m;
    if (c.accept_token(static_cast<int32_t>(t))) words[t / 32] |= 1u << (t % 32);
  }
  return words;
}

inline std::vector<int32_t> allowed_ids(const std::vector<uint32_t>& words) {
  std::vector<int32_t> ids;
  for (size_t w = 0; w < words.size(); ++w) {
    for (uint32_t b = 0; b < 32; ++b) {
      if (words[w] >> b & 1u) ids.push_back(static_cast<int32_t>(w * 32 + b));
    }
  }
  return ids;
}

}  // namespace kiln::grammar::test
