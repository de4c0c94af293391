// Reference semantics for grammar tests, written straight from the definitions in grammar.h and
// kept deliberately naive (sets of positions): a regex matcher over RegexPool nodes, whole-Grammar
// acceptance (through the Earley reference recognizer), and a sampler of strings from a regex. Slow; for short
// strings only. The real matcher is tested against these, and these against Node's RegExp.
#pragma once

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "earley_reference.h"
#include "kiln/grammar/grammar.h"
#include "kiln/text/utf8.h"

namespace kiln::grammar::reference {

using Positions = std::vector<bool>;  // one flag per byte offset 0..size

inline size_t decode(std::string_view s, size_t p, uint32_t* cp) {
  auto b = [&](size_t i) { return static_cast<uint8_t>(s[i]); };
  uint8_t b0 = b(p);
  size_t len = b0 < 0x80 ? 1 : (b0 >> 5) == 6 ? 2 : (b0 >> 4) == 14 ? 3 : (b0 >> 3) == 30 ? 4 : 0;
  if (len == 0 || p + len > s.size()) return 0;
  uint32_t v = len == 1 ? b0 : len == 2 ? (b0 & 0x1Fu) : len == 3 ? (b0 & 0x0Fu) : (b0 & 0x07u);
  for (size_t i = 1; i < len; ++i) {
    if ((b(p + i) & 0xC0) != 0x80) return 0;
    v = (v << 6) | (b(p + i) & 0x3Fu);
  }
  static const uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
  if (v < kMin[len] || v > kMaxCodePoint || (v >= 0xD800 && v <= 0xDFFF)) return 0;
  *cp = v;
  return len;
}

inline bool in_ranges(const std::vector<CharRange>& ranges, uint32_t v) {
  return std::any_of(ranges.begin(), ranges.end(), [v](const CharRange& r) { return r.lo <= v && v <= r.hi; });
}

// The offsets where a match of `id` starting at one of `from` can end.
inline Positions step(const RegexPool& pool, RegexId id, std::string_view s, const Positions& from) {
  const RegexNode& n = pool.node(id);
  Positions out(s.size() + 1, false);
  switch (n.kind) {
    case RegexNode::Kind::kNothing: return out;
    case RegexNode::Kind::kEmpty: return from;
    case RegexNode::Kind::kChars:
      for (size_t p = 0; p < s.size(); ++p) {
        uint32_t cp = 0;
        size_t len = from[p] ? decode(s, p, &cp) : 0;
        if (len != 0 && in_ranges(n.ranges, cp)) out[p + len] = true;
      }
      return out;
    case RegexNode::Kind::kBytes:
      for (size_t p = 0; p < s.size(); ++p) {
        if (from[p] && in_ranges(n.ranges, static_cast<uint8_t>(s[p]))) out[p + 1] = true;
      }
      return out;
    case RegexNode::Kind::kConcat: {
      Positions cur = from;
      for (RegexId c : n.children) cur = step(pool, c, s, cur);
      return cur;
    }
    case RegexNode::Kind::kAlt:
      for (RegexId c : n.children) {
        Positions o = step(pool, c, s, from);
        for (size_t i = 0; i < o.size(); ++i) out[i] = out[i] || o[i];
      }
      return out;
    case RegexNode::Kind::kRepeat: {
      Positions cur = from;
      for (uint32_t k = 0; k < n.min; ++k) {
        Positions next = step(pool, n.children[0], s, cur);
        if (next == cur) break;  // a fixpoint: every further round is the same
        cur = std::move(next);
      }
      // Beyond min, reach breadth-first: a position reached in fewer rounds has more rounds left.
      Positions seen = cur, frontier = cur;
      for (uint64_t k = n.min; k < n.max; ++k) {
        Positions next = step(pool, n.children[0], s, frontier);
        bool any = false;
        for (size_t i = 0; i < next.size(); ++i) {
          next[i] = next[i] && !seen[i];
          if (next[i]) seen[i] = true, any = true;
        }
        if (!any) break;
        frontier = std::move(next);
      }
      return seen;
    }
  }
  return out;
}

inline bool full_match(const RegexPool& pool, RegexId id, std::string_view s) {
  Positions from(s.size() + 1, false);
  from[0] = true;
  return step(pool, id, s, from).back();
}

// Whether the grammar derives exactly `s` (the Earley reference recognizer).
inline bool accepts(const Grammar& g, std::string_view s) { return grammar::testing::recognize(g, s).complete; }

// A random string of the regex's language (false when it has none or it grew past `budget`).
inline bool sample(const RegexPool& pool, RegexId id, std::mt19937& rng, std::string* out, size_t budget = 400) {
  if (out->size() > budget) return false;
  const RegexNode& n = pool.node(id);
  auto pick = [&rng](size_t size) { return std::uniform_int_distribution<size_t>(0, size - 1)(rng); };
  switch (n.kind) {
    case RegexNode::Kind::kNothing: return false;
    case RegexNode::Kind::kEmpty: return true;
    case RegexNode::Kind::kChars:
    case RegexNode::Kind::kBytes: {
      const CharRange& r = n.ranges[pick(n.ranges.size())];
      uint32_t span = r.hi - r.lo;
      // Mostly the range's ends and nearby code points, where off-by-one errors live.
      uint32_t cp = pick(3) == 0 ? r.lo + static_cast<uint32_t>(pick(static_cast<size_t>(span) + 1))
                                 : (pick(2) ? r.lo + std::min<uint32_t>(span, static_cast<uint32_t>(pick(3)))
                                            : r.hi - std::min<uint32_t>(span, static_cast<uint32_t>(pick(3))));
      if (n.kind == RegexNode::Kind::kBytes) {
        out->push_back(static_cast<char>(cp));
      } else {
        text::append_utf8(*out, static_cast<char32_t>(cp));
      }
      return true;
    }
    case RegexNode::Kind::kConcat:
      for (RegexId c : n.children) {
        if (!sample(pool, c, rng, out, budget)) return false;
      }
      return true;
    case RegexNode::Kind::kAlt: return sample(pool, n.children[pick(n.children.size())], rng, out, budget);
    case RegexNode::Kind::kRepeat: {
      uint64_t extra = n.max == kUnbounded ? 3 : std::min<uint64_t>(n.max - n.min, 3);
      uint64_t count = n.min + pick(static_cast<size_t>(extra) + 1);
      for (uint64_t k = 0; k < count; ++k) {
        if (!sample(pool, n.children[0], rng, out, budget)) return false;
      }
      return true;
    }
  }
  return false;
}

}  // namespace kiln::grammar::reference
