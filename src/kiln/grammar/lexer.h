// The lexer of a compiled grammar (internal to grammar/): every terminal's regex as one byte-level
// NFA (code point classes expanded to their UTF-8 byte sequences), trimmed so that every state can
// still reach its terminal's final state, and a DFA over it built lazily by subset construction.
//
// There is one DFA for the whole grammar: a lexeme that starts where the parser allows a set X of
// terminals starts in start(X), the closure of the start states of X's NFAs, and DFA states are
// hash-consed by their NFA state sets, so automata for different allowed sets share every state
// they have in common. DFA state 0 is dead (no terminal can still match); every other state is
// live (some allowed terminal can still complete), because the NFA is trimmed.
//
// Thread safety: transitions are read lock-free (atomic loads of a row filled once); a missing
// transition or start state is computed under a mutex. States live in fixed chunks that never
// move, so a reader never sees a reallocation.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <unordered_map>
#include <vector>

#include "kiln/core/status.h"
#include "kiln/grammar/grammar.h"

namespace kiln::grammar::detail {

inline constexpr uint32_t kDead = 0;
inline constexpr uint32_t kNone = UINT32_MAX;

// Flat (CSR) storage: the out-edges of state s are edges[edge_begin[s] .. edge_begin[s + 1]), its
// epsilon targets eps[eps_begin[s] .. eps_begin[s + 1]). A vector per state cost one or two heap
// allocations per state, which dominated compiling grammars with large bounded repeats.
struct Nfa {
  struct Edge {
    uint8_t lo, hi;
    uint32_t to;
  };
  std::vector<uint32_t> edge_begin;  // num_states() + 1 offsets
  std::vector<Edge> edges;
  std::vector<uint32_t> eps_begin;   // num_states() + 1 offsets
  std::vector<uint32_t> eps;
  std::vector<uint32_t> final_of;   // per state: the terminal whose final state it is, or kNone
  std::vector<uint32_t> start_of;  // per terminal: its start state, kNone if it matches nothing
  std::vector<uint8_t> nullable;   // per terminal: matches the empty string

  size_t num_states() const { return final_of.size(); }
  std::span<const Edge> edges_of(uint32_t s) const {
    return {edges.data() + edge_begin[s], edges.data() + edge_begin[s + 1]};
  }
  std::span<const uint32_t> eps_of(uint32_t s) const {
    return {eps.data() + eps_begin[s], eps.data() + eps_begin[s + 1]};
  }
};

// Builds the trimmed NFA of all terminals; refuses one over limits::kMaxLexerStates.
Result<Nfa> build_nfa(const Grammar& g);

class Dfa {
 public:
  explicit Dfa(Nfa nfa, size_t max_states);
  ~Dfa();

  // The state a lexeme starts in where the parser allows `terminals` (sorted, unique).
  uint32_t start(std::span<const uint32_t> terminals) const;
  uint32_t next(uint32_t s, uint8_t b) const {
    if (s == kDead) return kDead;
    const std::atomic<uint32_t>& cell = row(s)[byte_class_[b]];
    uint32_t t = cell.load(std::memory_order_acquire);
    return t != kNone ? t : fill(s, b);
  }
  // Bytes of one class lead every state to the same state.
  uint8_t byte_class(uint8_t b) const { return byte_class_[b]; }
  // Terminals whose regex has matched in state `s` (sorted); empty for a non-accepting state.
  std::span<const uint32_t> accepts(uint32_t s) const { return record(s).accepts; }
  bool accepting(uint32_t s) const { return !record(s).accepts.empty(); }
  // Some byte leads on from `s` (false for the dead state and for states that only accept).
  bool can_continue(uint32_t s) const { return record(s).can_continue; }
  // True once the state limit was reached: transitions that needed a new state read as dead.
  bool overflowed() const { return overflowed_.load(std::memory_order_relaxed); }
  size_t num_states() const { return count_.load(std::memory_order_acquire); }
  const Nfa& nfa() const { return nfa_; }

 private:
  static constexpr size_t kChunk = 1024;
  struct Record {
    std::vector<uint32_t> nfa_states;  // sorted
    std::vector<uint32_t> accepts;
    bool can_continue = false;
  };
  struct Chunk {
    std::array<Record, kChunk> records;
    std::unique_ptr<std::atomic<uint32_t>[]> rows;
  };

  const Record& record(uint32_t s) const {
    return chunks_[s / kChunk].load(std::memory_order_acquire)->records[s % kChunk];
  }
  std::atomic<uint32_t>* row(uint32_t s) const {
    return &chunks_[s / kChunk].load(std::memory_order_acquire)->rows[(s % kChunk) * num_classes_];
  }
  uint32_t fill(uint32_t s, uint8_t b) const;
  // Under mu_: the state of the closure of `seeds`, interned.
  uint32_t intern_closure(std::vector<uint32_t>& seeds) const;

  Nfa nfa_;
  size_t max_states_;
  std::array<uint8_t, 256> byte_class_{};
  size_t num_classes_ = 0;
  mutable std::mutex mu_;
  mutable std::vector<std::atomic<Chunk*>> chunks_;
  mutable std::atomic<size_t> count_{0};
  mutable std::atomic<bool> overflowed_{false};
  mutable std::map<std::vector<uint32_t>, uint32_t> by_set_;
  mutable std::map<std::vector<uint32_t>, uint32_t> start_cache_;
  mutable std::vector<uint32_t> stamp_;
  mutable uint32_t stamp_gen_ = 0;
};

}  // namespace kiln::grammar::detail
