// TokenVocabulary (each token's bytes and the token trie) and the per-lexer-state token caches.
#include <algorithm>
#include <cstring>
#include <unordered_set>

#include "kiln/core/str.h"
#include "kiln/grammar/engine.h"
#include "kiln/text/tokenizer.h"

namespace kiln::grammar {
namespace detail {

FlatTrie FlatTrie::build(const std::vector<std::pair<std::string_view, int32_t>>& entries) {
  FlatTrie t;
  t.nodes.push_back({});
  std::vector<uint32_t> path{0};  // path[d]: the node at depth d of the current entry
  std::string_view prev;
  auto close_to = [&](size_t depth) {
    while (path.size() > depth + 1) {
      t.nodes[path.back()].next = static_cast<uint32_t>(t.nodes.size());
      path.pop_back();
    }
  };
  for (const auto& [s, id] : entries) {
    if (s.empty()) continue;
    size_t common = 0;
    while (common < prev.size() && common < s.size() && prev[common] == s[common]) ++common;
    close_to(common);
    for (size_t k = common; k < s.size(); ++k) {
      FlatTrie::Node n;
      n.byte = static_cast<uint8_t>(s[k]);
      t.nodes.push_back(n);
      path.push_back(static_cast<uint32_t>(t.nodes.size() - 1));
    }
    Node& n = t.nodes[path.back()];
    if (n.tok_end == n.tok_begin) n.tok_begin = static_cast<uint32_t>(t.tokens.size());
    t.tokens.push_back(id);
    n.tok_end = static_cast<uint32_t>(t.tokens.size());
    prev = s;
  }
  close_to(0);
  t.nodes[0].next = static_cast<uint32_t>(t.nodes.size());
  return t;
}

namespace {
std::atomic<size_t> g_total_cache_bytes{0};
// A crossing subtree of more nodes than this is walked in the vocabulary trie, not copied.
constexpr uint32_t kCopiedSubtreeNodes = 64;
}  // namespace

TokenCache::TokenCache(const Dfa& dfa, std::shared_ptr<const TokenVocabulary> vocab, size_t max_bytes)
    : dfa_(dfa), vocab_(std::move(vocab)), max_bytes_(max_bytes) {}

TokenCache::~TokenCache() { g_total_cache_bytes.fetch_sub(bytes_); }

std::shared_ptr<const StateTokens> TokenCache::get(uint32_t dfa_state) {
  {
    std::shared_lock lock(mu_);
    auto it = by_state_.find(dfa_state);
    if (it != by_state_.end()) return it->second;
  }
  std::shared_ptr<const StateTokens> st = compute(dfa_state);
  std::unique_lock lock(mu_);
  auto it = by_state_.find(dfa_state);
  if (it != by_state_.end()) return it->second;
  const size_t b = st->memory_bytes;
  if (bytes_ + b <= max_bytes_ && g_total_cache_bytes.load() + b <= limits::kMaxTokenCacheBytesTotal) {
    g_total_cache_bytes.fetch_add(b);
    bytes_ += b;
    by_state_.emplace(dfa_state, st);
  }
  return st;
}

// One walk of the vocabulary trie from the lexer state: a token is inside when the DFA stays live
// over all its bytes; where the DFA accepts with more bytes below, the subtree's tokens get their
// remaining bytes recorded under that accepting state.
std::shared_ptr<const StateTokens> TokenCache::compute(uint32_t dfa_state) const {
  auto out = std::make_shared<StateTokens>();
  const TokenVocabulary::Impl& v = vocab_->impl();
  out->trie = &v.trie;
  out->inside.assign(vocab_->mask_words(), 0);
  for (const auto& slice : v.slices) {
    if (covers(slice, dfa_state)) {
      out->inside = slice.mask;
      out->trie = &slice.rest;
      break;
    }
  }
  const FlatTrie& trie = *out->trie;
  std::span<uint32_t> words(out->inside);
  struct Pending {
    uint32_t state;
    std::vector<std::pair<std::string_view, int32_t>> entries;
    std::vector<uint32_t> roots;
  };
  std::vector<Pending> groups;
  struct Frame {
    uint32_t end;
    uint32_t state;
  };
  std::vector<Frame> stack{{static_cast<uint32_t>(trie.nodes.size()), dfa_state}};
  for (uint32_t n = 1; n < trie.nodes.size();) {
    while (n >= stack.back().end) stack.pop_back();
    const FlatTrie::Node& node = trie.nodes[n];
    const uint32_t s = dfa_.next(stack.back().state, node.byte);
    if (s == kDead) {
      n = node.next;
      continue;
    }
    for (uint32_t k = node.tok_begin; k < node.tok_end; ++k) set_bit(words, trie.tokens[k]);
    if (node.next > n + 1) {
      if (dfa_.accepting(s)) {
        const size_t depth = stack.size();  // bytes of this node's prefix
        auto g = std::find_if(groups.begin(), groups.end(), [&](const Pending& e) { return e.state == s; });
        if (g == groups.end()) {
          groups.push_back({s, {}, {}});
          g = groups.end() - 1;
        }
        if (node.next - n - 1 > kCopiedSubtreeNodes) {
          g->roots.push_back(n);
        } else {
          for (uint32_t m = n + 1; m < node.next; ++m) {
            for (uint32_t k = trie.nodes[m].tok_begin; k < trie.nodes[m].tok_end; ++k) {
              const int32_t id = trie.tokens[k];
              g->entries.emplace_back(std::string_view(v.bytes[static_cast<size_t>(id)]).substr(depth), id);
            }
          }
        }
      }
      stack.push_back({node.next, s});
    }
    ++n;
  }
  out->memory_bytes = sizeof(StateTokens) + out->inside.size() * sizeof(uint32_t);
  for (Pending& p : groups) {
    std::sort(p.entries.begin(), p.entries.end());
    StateTokens::Group g;
    g.accept_state = p.state;
    g.suffixes = FlatTrie::build(p.entries);
    g.roots = std::move(p.roots);
    out->memory_bytes += g.suffixes.memory_bytes() + g.roots.size() * sizeof(uint32_t) + sizeof g;
    out->groups.push_back(std::move(g));
  }
  return out;
}


// True when from `dfa_state` every prefix of a slice match keeps the DFA live and not accepting
// (a product walk of the two automata over all bytes, given up past a bound).
bool TokenCache::covers(const TokenVocabulary::Impl::Slice& slice, uint32_t dfa_state) const {
  // Breadth first, so each pair is first reached by its shortest prefix: exploring it to the
  // depth left under the longest slice token then covers every token that reaches it. The bound
  // on depth lets a counting state (a string with maxLength) pass while far from its limit.
  // A key state that still tells several declared property names apart (an object with
  // additionalProperties beside them) needs over a thousand pairs; a failed check costs about as
  // much as the trie walk it would have saved.
  constexpr size_t kMaxPairs = 16384;
  struct Pair {
    uint32_t q, x, depth;
  };
  // One byte per class of both automata's byte classes together: the others lead to the same pair.
  uint8_t reps[256];
  size_t n_reps = 0;
  {
    std::unordered_set<uint32_t> joint;
    for (int b = 0; b < 256; ++b) {
      const auto u = static_cast<uint8_t>(b);
      if (joint.insert((uint32_t{slice.dfa->byte_class(u)} << 8) | dfa_.byte_class(u)).second) reps[n_reps++] = u;
    }
  }
  std::vector<Pair> todo{{slice.start, dfa_state, 0}};
  std::unordered_set<uint64_t> seen{(uint64_t{slice.start} << 32) | dfa_state};
  for (size_t i = 0; i < todo.size(); ++i) {
    const Pair p = todo[i];
    if (p.depth >= slice.max_len) continue;
    for (size_t r = 0; r < n_reps; ++r) {
      const uint32_t q2 = slice.dfa->next(p.q, reps[r]);
      if (q2 == kDead) continue;
      const uint32_t x2 = dfa_.next(p.x, reps[r]);
      if (x2 == kDead || dfa_.accepting(x2)) return false;
      if (seen.insert((uint64_t{q2} << 32) | x2).second) {
        if (todo.size() >= kMaxPairs) return false;
        todo.push_back({q2, x2, p.depth + 1});
      }
    }
  }
  return true;
}

}  // namespace detail

namespace {

// JSON string content: any character but '"', '\\' and the controls; only tokens of at most
// `max_bytes` bytes (the others go to `rest`).
TokenVocabulary::Impl::Slice json_string_slice(const TokenVocabulary::Impl& v,
                                               const std::vector<std::pair<std::string_view, int32_t>>& text_tokens,
                                               size_t max_bytes) {
  TokenVocabulary::Impl::Slice slice;
  Grammar g;
  const RegexId content = g.regexes.star(g.regexes.chars(complement_ranges({{'"', '"'}, {'\\', '\\'}, {0, 0x1F}})));
  g.add_terminal(content, "json string content");
  auto nfa = detail::build_nfa(g);  // a handful of states: cannot fail
  slice.dfa = std::make_unique<detail::Dfa>(std::move(nfa).value(), 64);
  const uint32_t terminal = 0;
  slice.start = slice.dfa->start({&terminal, 1});
  slice.mask.assign((v.bytes.size() + 31) / 32, 0);
  std::vector<std::pair<std::string_view, int32_t>> rest;
  for (const auto& [bytes, id] : text_tokens) {
    uint32_t q = slice.start;
    for (size_t i = 0; i < bytes.size() && q != detail::kDead; ++i) q = slice.dfa->next(q, static_cast<uint8_t>(bytes[i]));
    if (q != detail::kDead && bytes.size() <= max_bytes) {
      detail::set_bit(slice.mask, id);
      slice.max_len = std::max(slice.max_len, static_cast<uint32_t>(bytes.size()));
    } else {
      rest.emplace_back(bytes, id);
    }
  }
  slice.rest = detail::FlatTrie::build(rest);
  return slice;
}

}  // namespace

std::string special_token_literal(std::string_view text) { return str_cat("\xFF", text, "\xFF"); }

TokenVocabulary::TokenVocabulary(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TokenVocabulary::~TokenVocabulary() = default;

size_t TokenVocabulary::size() const { return impl_->bytes.size(); }

std::string_view TokenVocabulary::token_bytes(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= impl_->bytes.size()) return {};
  return impl_->bytes[static_cast<size_t>(id)];
}

bool TokenVocabulary::is_special(int32_t id) const {
  return id >= 0 && static_cast<size_t>(id) < impl_->special.size() && impl_->special[static_cast<size_t>(id)] != 0;
}

const std::vector<int32_t>& TokenVocabulary::end_ids() const { return impl_->end_ids; }

std::shared_ptr<const TokenVocabulary> TokenVocabulary::from_bytes(std::vector<std::string> token_bytes,
                                                                   std::vector<bool> special,
                                                                   std::vector<int32_t> end_ids) {
  auto impl = std::make_unique<Impl>();
  impl->bytes = std::move(token_bytes);
  const size_t n = impl->bytes.size();
  impl->special.assign(n, 0);
  for (size_t i = 0; i < n && i < special.size(); ++i) impl->special[i] = special[i] ? 1 : 0;
  std::erase_if(end_ids, [n](int32_t id) { return id < 0 || static_cast<size_t>(id) >= n; });
  std::sort(end_ids.begin(), end_ids.end());
  end_ids.erase(std::unique(end_ids.begin(), end_ids.end()), end_ids.end());
  impl->end_ids = std::move(end_ids);
  std::vector<uint8_t> text(n, 1);
  for (int32_t e : impl->end_ids) text[static_cast<size_t>(e)] = 0;
  impl->special_literal.resize(n);
  for (size_t i = 0; i < n; ++i) {
    if (text[i] && impl->special[i] && !impl->bytes[i].empty()) impl->special_literal[i] = special_token_literal(impl->bytes[i]);
  }
  std::vector<std::pair<std::string_view, int32_t>> entries;
  entries.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    const std::string& b = impl->bytes[i];
    if (!impl->special_literal[i].empty()) {
      entries.emplace_back(impl->special_literal[i], static_cast<int32_t>(i));
    } else if (text[i] && !impl->special[i] && !b.empty() && b.find('\xFF') == std::string::npos) {
      entries.emplace_back(b, static_cast<int32_t>(i));
    }
  }
  std::sort(entries.begin(), entries.end());
  impl->trie = detail::FlatTrie::build(entries);
  // The whole slice first, then slices of short tokens only: a string with maxLength has a lexer
  // state per count, and one within the longest token's length of its limit fails the whole
  // slice's check (which explores as deep as the longest token) but still passes a short one's,
  // so its walk skips the short string tokens instead of covering the whole trie.
  impl->slices.push_back(json_string_slice(*impl, entries, SIZE_MAX));
  for (size_t cap : {32u, 16u, 8u}) {
    if (impl->slices.back().max_len <= cap) break;
    impl->slices.push_back(json_string_slice(*impl, entries, cap));
  }
  return std::shared_ptr<const TokenVocabulary>(new TokenVocabulary(std::move(impl)));
}

std::shared_ptr<const TokenVocabulary> TokenVocabulary::build(const text::Tokenizer& tokenizer,
                                                              std::vector<int32_t> end_ids) {
  const size_t n = tokenizer.vocab_size();
  std::vector<std::string> bytes(n);
  std::vector<bool> special(n, false);
  for (size_t i = 0; i < n; ++i) {
    const auto id = static_cast<int32_t>(i);
    bytes[i] = tokenizer.token_bytes(id);
    special[i] = tokenizer.is_special(id);
  }
  return from_bytes(std::move(bytes), std::move(special), std::move(end_ids));
}

}  // namespace kiln::grammar
