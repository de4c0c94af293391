// The parts of the matcher (internal to grammar/): the flat token trie, the compiled parser tables,
// the byte-level Earley chart and the per-lexer-state token caches.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "kiln/grammar/lexer.h"
#include "kiln/grammar/matcher.h"

namespace kiln::grammar::detail {

// A trie laid out flat in DFS preorder: node 0 is the root; a node's subtree is [index, next), so a
// walk skips a dead subtree in O(1). A node's tokens (all with the same bytes) are
// tokens[tok_begin, tok_end).
struct FlatTrie {
  struct Node {
    uint32_t next = 0;
    uint32_t tok_begin = 0;
    uint32_t tok_end = 0;
    uint8_t byte = 0;
  };
  std::vector<Node> nodes;
  std::vector<int32_t> tokens;

  // `entries` sorted by bytes; empty strings are skipped.
  static FlatTrie build(const std::vector<std::pair<std::string_view, int32_t>>& entries);
  size_t memory_bytes() const { return nodes.size() * sizeof(Node) + tokens.size() * sizeof(int32_t); }
};

inline void set_bit(std::span<uint32_t> words, int32_t t) {
  words[static_cast<size_t>(t) >> 5] |= 1u << (static_cast<uint32_t>(t) & 31);
}

}  // namespace kiln::grammar::detail

namespace kiln::grammar {

struct TokenVocabulary::Impl {
  std::vector<std::string> bytes;
  std::vector<uint8_t> special;
  std::vector<int32_t> end_ids;
  // The bytes a special token (not an end id) stands for in a grammar: special_token_literal(its
  // text), indexed like `bytes` (empty for other tokens).
  std::vector<std::string> special_literal;
  // Every token that can be matched: text tokens (not special, not an end id, not empty, no 0xFF
  // byte) by their bytes, special tokens by their special_literal.
  detail::FlatTrie trie;
  // Slices (as llguidance calls them): the tokens whose bytes are a prefix of a match of a fixed
  // regex, here JSON string content [^"\\\x00-\x1F]*. In a lexer state that provably stays live
  // and non-accepting over every such prefix, all of them are inside tokens at once, and only the
  // other tokens (`rest`) need a walk: the walk of a JSON string state is a twentieth of the trie.
  struct Slice {
    std::unique_ptr<detail::Dfa> dfa;
    uint32_t start = 0;
    uint32_t max_len = 0;  // bytes of the longest token in the slice
    std::vector<uint32_t> mask;
    detail::FlatTrie rest;
  };
  std::vector<Slice> slices;
};

}  // namespace kiln::grammar

namespace kiln::grammar::detail {

// What a lexer state allows of a vocabulary, independent of the parser (the state already encodes
// which terminals the parser allowed where its lexeme started).
struct StateTokens {
  // Tokens whose bytes all stay inside the lexeme (the DFA is still live after them).
  std::vector<uint32_t> inside;
  // Tokens whose bytes pass a point where the lexeme may end, grouped by the accepting state at
  // that point: only the bytes after it need the parser. Small subtrees of the vocabulary trie are
  // merged into one suffix trie (tokens with the same remaining bytes are walked once); a big one
  // is walked in place (its root's index in the vocabulary trie), so it costs nothing to cache.
  struct Group {
    uint32_t accept_state = 0;
    FlatTrie suffixes;
    std::vector<uint32_t> roots;
  };
  std::vector<Group> groups;
  const FlatTrie* trie = nullptr;  // the vocabulary trie the groups' roots index
  size_t memory_bytes = 0;
};

class TokenCache {
 public:
  TokenCache(const Dfa& dfa, std::shared_ptr<const TokenVocabulary> vocab, size_t max_bytes);
  ~TokenCache();
  std::shared_ptr<const StateTokens> get(uint32_t dfa_state);
  const std::shared_ptr<const TokenVocabulary>& vocabulary() const { return vocab_; }

 private:
  std::shared_ptr<const StateTokens> compute(uint32_t dfa_state) const;
  bool covers(const TokenVocabulary::Impl::Slice& slice, uint32_t dfa_state) const;

  const Dfa& dfa_;
  std::shared_ptr<const TokenVocabulary> vocab_;
  std::shared_mutex mu_;
  std::unordered_map<uint32_t, std::shared_ptr<const StateTokens>> by_state_;
  size_t max_bytes_;
  size_t bytes_ = 0;
};

inline constexpr uint32_t kEnd = UINT32_MAX;  // sym_at of a completed dotted position

struct Item {
  uint32_t pos;     // dotted position: a production and how far into it
  uint32_t origin;  // the chart position where the production started
  friend bool operator==(const Item&, const Item&) = default;
};

struct Thread {
  uint32_t origin;  // where its lexeme started
  uint32_t dfa;     // the lexer state after the lexeme's bytes so far
};

}  // namespace kiln::grammar::detail

namespace kiln::grammar {

struct CompiledGrammar::Impl {
  Grammar grammar;
  std::unique_ptr<detail::Dfa> dfa;
  // Productions flattened: the dotted positions of production p are consecutive; sym_at gives the
  // symbol after the dot (Symbol bits) or kEnd, lhs_at the production's rule.
  std::vector<uint32_t> sym_at;
  std::vector<uint32_t> lhs_at;
  std::vector<std::vector<uint32_t>> first_pos_of_rule;
  std::vector<uint8_t> rule_nullable;
  std::vector<uint8_t> term_nullable;
  std::vector<uint8_t> term_lexable;  // matches some non-empty string
  uint32_t start_pos = 0;             // the augmented production START' -> start, dot 0
  uint32_t accept_pos = 0;            // START' -> start, completed

  size_t token_cache_bytes = 0;
  std::mutex caches_mu;
  std::vector<std::unique_ptr<detail::TokenCache>> caches;  // one per vocabulary
  detail::TokenCache& cache_for(const std::shared_ptr<const TokenVocabulary>& vocab);
};

}  // namespace kiln::grammar

namespace kiln::grammar::detail {

// The byte-level Earley chart: position i is after i bytes; it holds the Earley set of items
// completed by lexemes that ended there and the lexer threads live there (one per position where
// a lexeme that is still going started). It only grows, so truncating is a rollback.
class Chart {
 public:
  void init(const CompiledGrammar::Impl& g);
  size_t size() const { return pos_.size(); }
  bool push_byte(const CompiledGrammar::Impl& g, uint8_t b);
  // A position where the lexeme that started at `origin` ends in accepting state `accept_state`
  // and nothing else goes on (the mask's crossing tokens).
  bool push_lexeme_end(const CompiledGrammar::Impl& g, uint32_t origin, uint32_t accept_state);
  void truncate(size_t num_positions);
  std::span<const Item> items(size_t i) const {
    return {items_.data() + (i ? pos_[i - 1].items_end : 0), items_.data() + pos_[i].items_end};
  }
  std::span<const Thread> threads(size_t i) const {
    return {threads_.data() + (i ? pos_[i - 1].threads_end : 0), threads_.data() + pos_[i].threads_end};
  }
  bool can_end(const CompiledGrammar::Impl& g) const;
  bool must_end(const CompiledGrammar::Impl& g) const { return can_end(g) && threads(size() - 1).empty(); }
  // Set (and kept) once a position outgrew the limits on Earley items.
  bool overflowed() const { return overflowed_; }

 private:
  struct Position {
    uint32_t items_end;
    uint32_t threads_end;
  };
  void seed_scan(const CompiledGrammar::Impl& g, uint32_t origin, std::span<const uint32_t> accepts);
  void add(uint32_t pos, uint32_t origin);
  bool finish(const CompiledGrammar::Impl& g, size_t items_base, size_t threads_base);
  // Drops a position that could not be built (its items and threads) and resets the scratch.
  void discard(size_t items_base, size_t threads_base);
  void rehash(size_t size);
  uint32_t start_state(const CompiledGrammar::Impl& g);

  std::vector<Item> items_;
  std::vector<Thread> threads_;
  std::vector<Position> pos_;
  // Scratch for building one position (dedup of items, allowed terminals); not state.
  size_t base_ = 0;  // where the position being built starts in items_
  std::vector<uint64_t> seen_;
  size_t seen_count_ = 0;  // nonzero while seen_ holds a hash table
  std::vector<uint32_t> allowed_;
  std::vector<std::pair<std::vector<uint32_t>, uint32_t>> start_memo_;
  size_t memo_next_ = 0;
  bool overflowed_ = false;  // some position ever went over the limits (sticky)
  bool over_ = false;        // the position being built did
  size_t steps_ = 0;         // parser work on the position being built
};

}  // namespace kiln::grammar::detail
