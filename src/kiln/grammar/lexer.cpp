#include "kiln/grammar/lexer.h"

#include <algorithm>
#include <optional>

#include "kiln/core/str.h"
#include "kiln/grammar/limits.h"

namespace kiln::grammar::detail {
namespace {

struct ByteRange {
  uint8_t lo, hi;
};

void utf8_encode(uint32_t cp, std::vector<uint8_t>& out) {
  out.clear();
  if (cp < 0x80) {
    out.push_back(static_cast<uint8_t>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<uint8_t>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<uint8_t>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<uint8_t>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<uint8_t>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<uint8_t>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<uint8_t>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<uint8_t>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<uint8_t>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<uint8_t>(0x80 | (cp & 0x3F)));
  }
}

// Splits a code point range into sequences of byte ranges, each the cross product of its ranges,
// as the UTF-8 automata of RE2 and Rust's regex do.
void utf8_sequences(uint32_t lo, uint32_t hi, std::vector<std::vector<ByteRange>>& out) {
  if (lo > hi) return;
  for (uint32_t max : {0x7Fu, 0x7FFu, 0xFFFFu}) {
    if (lo <= max && max < hi) {
      utf8_sequences(lo, max, out);
      utf8_sequences(max + 1, hi, out);
      return;
    }
  }
  if (hi <= 0x7F) {
    out.push_back({{static_cast<uint8_t>(lo), static_cast<uint8_t>(hi)}});
    return;
  }
  for (uint32_t i = 1; i < 4; ++i) {
    const uint32_t m = (1u << (6 * i)) - 1;
    if ((lo & ~m) != (hi & ~m)) {
      if ((lo & m) != 0) {
        utf8_sequences(lo, lo | m, out);
        utf8_sequences((lo | m) + 1, hi, out);
        return;
      }
      if ((hi & m) != m) {
        utf8_sequences(lo, (hi & ~m) - 1, out);
        utf8_sequences(hi & ~m, hi, out);
        return;
      }
    }
  }
  std::vector<uint8_t> a, b;
  utf8_encode(lo, a);
  utf8_encode(hi, b);
  std::vector<ByteRange> seq;
  for (size_t k = 0; k < a.size(); ++k) seq.push_back({a[k], b[k]});
  out.push_back(std::move(seq));
}

bool same_ranges(const std::vector<ByteRange>& a, const std::vector<ByteRange>& b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(),
                    [](ByteRange x, ByteRange y) { return x.lo == y.lo && x.hi == y.hi; });
}

// Thompson construction. build(id, from) adds the fragment for `id` starting at `from` and returns
// its end state; it never adds an edge into `from`, so alternatives may share their start.
struct RawEdge {
  uint32_t from;
  Nfa::Edge e;
};
struct RawEps {
  uint32_t from, to;
};

// The states and edges one build(child, from) added: a bounded repeat builds its child once and
// copies this for every further copy instead of walking the regex (and re-deriving UTF-8
// sequences) again.
struct Fragment {
  uint32_t from, end, s0, s1;
  size_t e0, e1, p0, p1;
};

struct Builder {
  const RegexPool& pool;
  std::vector<RawEdge> edges;
  std::vector<RawEps> epss;
  std::vector<uint32_t> final_of;  // per state
  bool too_big = false;

  uint32_t add() {
    if (final_of.size() >= limits::kMaxLexerStates) {
      too_big = true;
      return 0;
    }
    final_of.push_back(kNone);
    return static_cast<uint32_t>(final_of.size() - 1);
  }
  void edge(uint32_t from, uint8_t lo, uint8_t hi, uint32_t to) { edges.push_back({from, {lo, hi, to}}); }
  void eps(uint32_t from, uint32_t to) { epss.push_back({from, to}); }

  // The fragment's states and edges again, starting at `from`; returns its end.
  uint32_t copy(const Fragment& f, uint32_t from) {
    const size_t count = f.s1 - f.s0;
    if (final_of.size() + count > limits::kMaxLexerStates) {
      too_big = true;
      return 0;
    }
    const auto base = static_cast<uint32_t>(final_of.size());
    final_of.resize(final_of.size() + count, kNone);
    auto map = [&](uint32_t u) {
      if (u == f.from) return from;
      return u >= f.s0 && u < f.s1 ? u - f.s0 + base : u;
    };
    edges.reserve(edges.size() + (f.e1 - f.e0));
    for (size_t i = f.e0; i < f.e1; ++i) {
      const RawEdge r = edges[i];
      edges.push_back({map(r.from), {r.e.lo, r.e.hi, map(r.e.to)}});
    }
    epss.reserve(epss.size() + (f.p1 - f.p0));
    for (size_t i = f.p0; i < f.p1; ++i) {
      const RawEps r = epss[i];
      epss.push_back({map(r.from), map(r.to)});
    }
    return map(f.end);
  }

  // One copy of `child` from `from`: built the first time, copied from `frag` after.
  uint32_t copy_of(RegexId child, uint32_t from, std::optional<Fragment>& frag) {
    if (frag) return copy(*frag, from);
    Fragment f{from, 0, static_cast<uint32_t>(final_of.size()), 0, edges.size(), 0, epss.size(), 0};
    f.end = build(child, from);
    if (too_big) return 0;
    f.s1 = static_cast<uint32_t>(final_of.size());
    f.e1 = edges.size();
    f.p1 = epss.size();
    frag = f;
    return f.end;
  }

  uint32_t build(RegexId id, uint32_t from) {
    if (too_big) return 0;
    const RegexNode& n = pool.node(id);
    switch (n.kind) {
      case RegexNode::Kind::kNothing:
        return add();  // unreachable from `from`: trimmed away
      case RegexNode::Kind::kEmpty:
        return from;
      case RegexNode::Kind::kBytes: {
        const uint32_t end = add();
        if (too_big) return 0;
        for (const CharRange& r : n.ranges) edge(from, static_cast<uint8_t>(r.lo), static_cast<uint8_t>(r.hi), end);
        return end;
      }
      case RegexNode::Kind::kChars: {
        // Sequences share their suffixes (one state for "any two continuation bytes left", ...):
        // a class like [^"\\] then costs 8 states instead of 17, which matters most where a
        // bounded repeat unrolls it thousands of times.
        const uint32_t end = add();
        std::vector<std::vector<ByteRange>> seqs;
        for (const CharRange& r : n.ranges) utf8_sequences(r.lo, r.hi, seqs);
        std::vector<std::pair<std::vector<ByteRange>, uint32_t>> suffix_states;
        std::vector<ByteRange> suffix;
        for (const auto& seq : seqs) {
          uint32_t to = end;  // the state after seq[k]
          for (size_t k = seq.size() - 1; k > 0; --k) {
            suffix.assign(seq.begin() + static_cast<std::ptrdiff_t>(k), seq.end());
            auto it = std::find_if(suffix_states.begin(), suffix_states.end(),
                                   [&](const auto& e) { return same_ranges(e.first, suffix); });
            if (it != suffix_states.end()) {
              to = it->second;
              continue;
            }
            const uint32_t st = add();
            if (too_big) return 0;
            edge(st, seq[k].lo, seq[k].hi, to);
            suffix_states.emplace_back(suffix, st);
            to = st;
          }
          if (too_big) return 0;
          edge(from, seq[0].lo, seq[0].hi, to);
        }
        return end;
      }
      case RegexNode::Kind::kConcat: {
        uint32_t cur = from;
        for (RegexId c : n.children) cur = build(c, cur);
        return cur;
      }
      case RegexNode::Kind::kAlt: {
        const uint32_t end = add();
        for (RegexId c : n.children) {
          const uint32_t e = build(c, from);
          if (too_big) return 0;
          eps(e, end);
        }
        return end;
      }
      case RegexNode::Kind::kRepeat: {
        const RegexId child = n.children[0];
        std::optional<Fragment> frag;
        uint32_t cur = from;
        for (uint32_t i = 0; i < n.min && !too_big; ++i) cur = copy_of(child, cur, frag);
        if (n.max == kUnbounded) {
          const uint32_t s = add();
          if (too_big) return 0;
          eps(cur, s);
          const uint32_t e = copy_of(child, s, frag);
          if (too_big) return 0;
          eps(e, s);
          return s;
        }
        const uint32_t end = add();
        for (uint32_t i = n.min; i < n.max && !too_big; ++i) {
          eps(cur, end);
          cur = copy_of(child, cur, frag);
        }
        if (too_big) return 0;
        eps(cur, end);
        return end;
      }
    }
    return add();
  }
};

}  // namespace

namespace {

// With only_reached, only terminals the start rule can reach: a compiler may leave terminals
// behind that it merged into larger ones (the JSON Schema compiler does, for every suffix of an
// object), and building them cost quadratic NFA states for a long run of properties. It is the
// fallback only: built, the unreached terminals measured faster masks on the corpus (31 against
// 303 µs mean on 300 schemas), a cause not yet found.
Result<Nfa> build_nfa(const Grammar& g, bool only_reached) {
  std::vector<uint8_t> used(g.terminals.size(), only_reached ? 0 : 1), seen_rule(g.rules.size(), 0);
  std::vector<uint32_t> todo;
  if (only_reached && g.start < g.rules.size()) {
    seen_rule[g.start] = 1;
    todo.push_back(g.start);
  }
  while (!todo.empty()) {
    const uint32_t r = todo.back();
    todo.pop_back();
    for (const auto& alt : g.rules[r].alternatives) {
      for (Symbol x : alt) {
        if (x.is_terminal()) {
          used[x.index()] = 1;
        } else if (!seen_rule[x.index()]) {
          seen_rule[x.index()] = 1;
          todo.push_back(x.index());
        }
      }
    }
  }
  Builder b{g.regexes, {}, {}, {}};
  std::vector<uint32_t> starts(g.terminals.size(), kNone);
  for (size_t t = 0; t < g.terminals.size(); ++t) {
    if (!used[t]) continue;
    const uint32_t s = b.add();
    const uint32_t e = b.build(g.terminals[t].regex, s);
    const uint32_t f = b.add();
    if (b.too_big) break;
    b.eps(e, f);
    b.final_of[f] = static_cast<uint32_t>(t);
    starts[t] = s;
  }
  if (b.too_big) {
    return invalid_argument(
        str_cat("the grammar's lexer needs more than ", limits::kMaxLexerStates, " automaton states"));
  }
  // Trim: keep only states from which a final state can be reached (over reverse edges in CSR).
  const size_t n = b.final_of.size();
  std::vector<uint32_t> rev_begin(n + 1, 0), rev;
  for (const RawEdge& r : b.edges) ++rev_begin[r.e.to + 1];
  for (const RawEps& r : b.epss) ++rev_begin[r.to + 1];
  for (size_t s = 0; s < n; ++s) rev_begin[s + 1] += rev_begin[s];
  rev.resize(rev_begin[n]);
  {
    std::vector<uint32_t> fill(rev_begin.begin(), rev_begin.end() - 1);
    for (const RawEdge& r : b.edges) rev[fill[r.e.to]++] = r.from;
    for (const RawEps& r : b.epss) rev[fill[r.to]++] = r.from;
  }
  std::vector<uint8_t> live(n, 0);
  std::vector<uint32_t> stack;
  for (uint32_t s = 0; s < n; ++s) {
    if (b.final_of[s] != kNone) {
      live[s] = 1;
      stack.push_back(s);
    }
  }
  while (!stack.empty()) {
    const uint32_t s = stack.back();
    stack.pop_back();
    for (uint32_t i = rev_begin[s]; i < rev_begin[s + 1]; ++i) {
      const uint32_t p = rev[i];
      if (!live[p]) {
        live[p] = 1;
        stack.push_back(p);
      }
    }
  }
  Nfa nfa;
  nfa.edge_begin.assign(n + 1, 0);
  nfa.eps_begin.assign(n + 1, 0);
  for (const RawEdge& r : b.edges) {
    if (live[r.from] && live[r.e.to]) ++nfa.edge_begin[r.from + 1];
  }
  for (const RawEps& r : b.epss) {
    if (live[r.from] && live[r.to]) ++nfa.eps_begin[r.from + 1];
  }
  for (size_t s = 0; s < n; ++s) {
    nfa.edge_begin[s + 1] += nfa.edge_begin[s];
    nfa.eps_begin[s + 1] += nfa.eps_begin[s];
  }
  nfa.edges.resize(nfa.edge_begin[n]);
  nfa.eps.resize(nfa.eps_begin[n]);
  {
    std::vector<uint32_t> fill(nfa.edge_begin.begin(), nfa.edge_begin.end() - 1);
    for (const RawEdge& r : b.edges) {
      if (live[r.from] && live[r.e.to]) nfa.edges[fill[r.from]++] = r.e;
    }
    fill.assign(nfa.eps_begin.begin(), nfa.eps_begin.end() - 1);
    for (const RawEps& r : b.epss) {
      if (live[r.from] && live[r.to]) nfa.eps[fill[r.from]++] = r.to;
    }
  }
  nfa.final_of = std::move(b.final_of);
  nfa.start_of.assign(g.terminals.size(), kNone);
  nfa.nullable.assign(g.terminals.size(), 0);
  std::vector<uint8_t> seen(n, 0);
  for (size_t t = 0; t < starts.size(); ++t) {
    if (starts[t] == kNone || !live[starts[t]]) continue;
    nfa.start_of[t] = starts[t];
    // Nullable: the final state is in the start's epsilon closure.
    std::vector<uint32_t> visit{starts[t]}, touched{starts[t]};
    seen[starts[t]] = 1;
    while (!visit.empty()) {
      const uint32_t s = visit.back();
      visit.pop_back();
      if (nfa.final_of[s] == t) nfa.nullable[t] = 1;
      for (uint32_t e : nfa.eps_of(s)) {
        if (!seen[e]) {
          seen[e] = 1;
          touched.push_back(e);
          visit.push_back(e);
        }
      }
    }
    for (uint32_t s : touched) seen[s] = 0;
  }
  return nfa;
}

}  // namespace

Result<Nfa> build_nfa(const Grammar& g) {
  Result<Nfa> all = build_nfa(g, false);
  if (all.is_ok()) return all;
  return build_nfa(g, true);
}

Dfa::Dfa(Nfa nfa, size_t max_states) : nfa_(std::move(nfa)), max_states_(std::max<size_t>(max_states, 2)) {
  std::array<uint8_t, 257> cut{};
  cut[0] = 1;
  for (const auto& e : nfa_.edges) {
    cut[e.lo] = 1;
    cut[e.hi + 1] = 1;
  }
  int cls = -1;
  for (int b = 0; b < 256; ++b) {
    if (cut[b]) ++cls;
    byte_class_[b] = static_cast<uint8_t>(cls);
  }
  num_classes_ = static_cast<size_t>(cls + 1);
  chunks_ = std::vector<std::atomic<Chunk*>>(max_states_ / kChunk + 1);
  stamp_.assign(nfa_.num_states(), 0);
  std::lock_guard lock(mu_);
  std::vector<uint32_t> none;
  intern_closure(none);  // state 0: the dead state
}

Dfa::~Dfa() {
  for (auto& c : chunks_) delete c.load();
}

uint32_t Dfa::intern_closure(std::vector<uint32_t>& seeds) const {
  if (++stamp_gen_ == 0) {
    std::fill(stamp_.begin(), stamp_.end(), 0);
    stamp_gen_ = 1;
  }
  std::vector<uint32_t> set;
  std::vector<uint32_t> stack;
  for (uint32_t s : seeds) {
    if (stamp_[s] != stamp_gen_) {
      stamp_[s] = stamp_gen_;
      stack.push_back(s);
    }
  }
  while (!stack.empty()) {
    const uint32_t s = stack.back();
    stack.pop_back();
    if (!nfa_.edges_of(s).empty() || nfa_.final_of[s] != kNone) set.push_back(s);
    for (uint32_t e : nfa_.eps_of(s)) {
      if (stamp_[e] != stamp_gen_) {
        stamp_[e] = stamp_gen_;
        stack.push_back(e);
      }
    }
  }
  std::sort(set.begin(), set.end());
  const size_t count = count_.load(std::memory_order_relaxed);
  if (set.empty() && count > 0) return kDead;
  if (auto it = by_set_.find(set); it != by_set_.end()) return it->second;
  if (count >= max_states_) {
    overflowed_.store(true, std::memory_order_relaxed);
    return kDead;
  }
  const auto id = static_cast<uint32_t>(count);
  Chunk* chunk = chunks_[id / kChunk].load(std::memory_order_relaxed);
  if (chunk == nullptr) {
    chunk = new Chunk;
    chunk->rows = std::make_unique<std::atomic<uint32_t>[]>(kChunk * num_classes_);
    for (size_t i = 0; i < kChunk * num_classes_; ++i) chunk->rows[i].store(kNone);
    chunks_[id / kChunk].store(chunk, std::memory_order_release);
  }
  Record& r = chunk->records[id % kChunk];
  for (uint32_t s : set) {
    if (nfa_.final_of[s] != kNone) r.accepts.push_back(nfa_.final_of[s]);
    if (!nfa_.edges_of(s).empty()) r.can_continue = true;
  }
  std::sort(r.accepts.begin(), r.accepts.end());
  r.accepts.erase(std::unique(r.accepts.begin(), r.accepts.end()), r.accepts.end());
  r.nfa_states = set;
  by_set_.emplace(std::move(set), id);
  count_.store(count + 1, std::memory_order_release);
  return id;
}

uint32_t Dfa::fill(uint32_t s, uint8_t b) const {
  std::lock_guard lock(mu_);
  std::atomic<uint32_t>& cell = row(s)[byte_class_[b]];
  if (uint32_t t = cell.load(std::memory_order_relaxed); t != kNone) return t;
  std::vector<uint32_t> seeds;
  for (uint32_t q : record(s).nfa_states) {
    for (const auto& e : nfa_.edges_of(q)) {
      if (e.lo <= b && b <= e.hi) seeds.push_back(e.to);
    }
  }
  const uint32_t t = intern_closure(seeds);
  // A transition that overflowed is not stored, so that it reads as dead without being cached.
  if (t != kDead || !overflowed()) cell.store(t, std::memory_order_release);
  return t;
}

uint32_t Dfa::start(std::span<const uint32_t> terminals) const {
  std::lock_guard lock(mu_);
  std::vector<uint32_t> key(terminals.begin(), terminals.end());
  if (auto it = start_cache_.find(key); it != start_cache_.end()) return it->second;
  std::vector<uint32_t> seeds;
  for (uint32_t t : terminals) {
    if (nfa_.start_of[t] != kNone) seeds.push_back(nfa_.start_of[t]);
  }
  const uint32_t s = intern_closure(seeds);
  if (start_cache_.size() >= max_states_) start_cache_.clear();
  if (s != kDead || !overflowed()) start_cache_.emplace(std::move(key), s);
  return s;
}

}  // namespace kiln::grammar::detail
