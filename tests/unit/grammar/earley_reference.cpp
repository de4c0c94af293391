#include "earley_reference.h"

#include <algorithm>
#include <map>
#include <set>
#include <unordered_map>
#include <vector>

namespace kiln::grammar::testing {

namespace {

constexpr size_t kPartial = static_cast<size_t>(-1);  // ran out of text inside a match

class RegexEnds {
 public:
  RegexEnds(const RegexPool& pool, std::string_view text) : p_(pool), s_(text) {}

  // The positions where a match of `r` starting at `pos` can end (kPartial: at the text's end,
  // with more to come).
  const std::vector<size_t>& ends(RegexId r, size_t pos) {
    auto key = (static_cast<uint64_t>(r) << 32) | pos;
    if (auto it = memo_.find(key); it != memo_.end()) return it->second;
    std::vector<size_t> out = compute(r, pos);
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return memo_[key] = std::move(out);
  }

 private:
  std::vector<size_t> compute(RegexId r, size_t pos) {
    const RegexNode& n = p_.node(r);
    switch (n.kind) {
      case RegexNode::Kind::kNothing: return {};
      case RegexNode::Kind::kEmpty: return {pos};
      case RegexNode::Kind::kBytes: {
        if (pos >= s_.size()) return {kPartial};
        auto b = static_cast<unsigned char>(s_[pos]);
        for (const CharRange& x : n.ranges) {
          if (b >= x.lo && b <= x.hi) return {pos + 1};
        }
        return {};
      }
      case RegexNode::Kind::kChars: {
        if (pos >= s_.size()) return {kPartial};
        auto c = static_cast<unsigned char>(s_[pos]);
        size_t len = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 0;
        if (len == 0) return {};
        if (pos + len > s_.size()) return {kPartial};
        uint32_t cp = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
        for (size_t i = 1; i < len; ++i) {
          auto d = static_cast<unsigned char>(s_[pos + i]);
          if ((d & 0xC0) != 0x80) return {};
          cp = (cp << 6) | (d & 0x3F);
        }
        for (const CharRange& x : n.ranges) {
          if (cp >= x.lo && cp <= x.hi) return {pos + len};
        }
        return {};
      }
      case RegexNode::Kind::kConcat: {
        std::vector<size_t> cur = {pos};
        bool partial = false;
        for (RegexId c : n.children) {
          std::set<size_t> next;
          for (size_t at : cur) {
            for (size_t e : ends(c, at)) {
              if (e == kPartial) partial = true;
              else next.insert(e);
            }
          }
          cur.assign(next.begin(), next.end());
          if (cur.empty()) break;
        }
        if (partial) cur.push_back(kPartial);
        return cur;
      }
      case RegexNode::Kind::kAlt: {
        std::vector<size_t> out;
        for (RegexId c : n.children) {
          const auto& e = ends(c, pos);
          out.insert(out.end(), e.begin(), e.end());
        }
        return out;
      }
      case RegexNode::Kind::kRepeat: {
        std::set<size_t> result, seen;
        std::set<size_t> cur = {pos};
        bool partial = false;
        if (n.min == 0) result.insert(pos);
        for (uint64_t k = 1; k <= n.max && !cur.empty(); ++k) {
          std::set<size_t> next;
          for (size_t at : cur) {
            for (size_t e : ends(n.children[0], at)) {
              if (e == kPartial) partial = true;
              else next.insert(e);
            }
          }
          if (k >= n.min) {
            // Past the minimum only new positions matter.
            std::set<size_t> fresh;
            for (size_t e : next) {
              if (seen.insert(e).second) fresh.insert(e);
            }
            result.insert(fresh.begin(), fresh.end());
            next = std::move(fresh);
          }
          cur = std::move(next);
        }
        std::vector<size_t> out(result.begin(), result.end());
        if (partial) out.push_back(kPartial);
        return out;
      }
    }
    return {};
  }

  const RegexPool& p_;
  std::string_view s_;
  std::unordered_map<uint64_t, std::vector<size_t>> memo_;
};

struct Item {
  uint32_t rule, alt, dot, origin;
  auto operator<=>(const Item&) const = default;
};

}  // namespace

Recognition recognize(const Grammar& g, std::string_view text) {
  // Nullable rules, to the fixed point.
  std::vector<bool> nullable(g.rules.size(), false);
  for (bool changed = true; changed;) {
    changed = false;
    for (size_t r = 0; r < g.rules.size(); ++r) {
      if (nullable[r]) continue;
      for (const auto& alt : g.rules[r].alternatives) {
        if (std::all_of(alt.begin(), alt.end(), [&](Symbol s) { return !s.is_terminal() && nullable[s.index()]; })) {
          nullable[r] = changed = true;
          break;
        }
      }
    }
  }
  RegexEnds lex(g.regexes, text);
  size_t n = text.size();
  std::vector<std::set<Item>> sets(n + 1);
  Recognition out;
  for (uint32_t a = 0; a < g.rules[g.start].alternatives.size(); ++a) sets[0].insert({g.start, a, 0, 0});
  for (size_t i = 0; i <= n; ++i) {
    std::vector<Item> work(sets[i].begin(), sets[i].end());
    auto add = [&](size_t at, Item it) {
      if (sets[at].insert(it).second && at == i) work.push_back(it);
    };
    while (!work.empty()) {
      Item it = work.back();
      work.pop_back();
      const auto& alt = g.rules[it.rule].alternatives[it.alt];
      if (it.dot == alt.size()) {
        // Complete: advance the items of the origin set waiting for this rule.
        std::vector<Item> waiting;
        for (const Item& w : sets[it.origin]) {
          const auto& walt = g.rules[w.rule].alternatives[w.alt];
          if (w.dot < walt.size() && walt[w.dot] == Symbol::rule(it.rule)) waiting.push_back(w);
        }
        for (Item w : waiting) add(i, {w.rule, w.alt, w.dot + 1, w.origin});
        continue;
      }
      Symbol s = alt[it.dot];
      if (s.is_terminal()) {
        for (size_t e : lex.ends(g.terminals[s.index()].regex, i)) {
          if (e == kPartial) {
            out.viable = true;
          } else if (e > i) {
            add(e, {it.rule, it.alt, it.dot + 1, it.origin});
          } else {
            add(i, {it.rule, it.alt, it.dot + 1, it.origin});
          }
        }
        continue;
      }
      for (uint32_t a = 0; a < g.rules[s.index()].alternatives.size(); ++a) add(i, {s.index(), a, 0, static_cast<uint32_t>(i)});
      if (nullable[s.index()]) add(i, {it.rule, it.alt, it.dot + 1, it.origin});
    }
  }
  if (!sets[n].empty()) out.viable = true;
  for (const Item& it : sets[n]) {
    if (it.rule == g.start && it.origin == 0 && it.dot == g.rules[it.rule].alternatives[it.alt].size()) out.complete = true;
  }
  return out;
}

}  // namespace kiln::grammar::testing
