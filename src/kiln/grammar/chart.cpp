// The byte-level Earley chart (engine.h). Nullable symbols are handled as Aycock and Horspool do:
// predicting a nullable rule or reaching a terminal whose regex matches the empty string also
// advances past it, so a completion never has to look back into the set being built.
#include <algorithm>

#include "kiln/grammar/engine.h"
#include "kiln/grammar/limits.h"

namespace kiln::grammar::detail {
namespace {

constexpr size_t kLinearDedup = 32;  // sets up to this size are deduplicated by a scan

uint64_t key_of(uint32_t pos, uint32_t origin) { return ((uint64_t{pos} << 32) | origin) + 1; }

size_t slot_of(uint64_t key, size_t mask) { return static_cast<size_t>((key * 0x9E3779B97F4A7C15ull) >> 32) & mask; }

}  // namespace

void Chart::init(const CompiledGrammar::Impl& g) {
  items_.clear();
  threads_.clear();
  pos_.clear();
  base_ = 0;
  seen_count_ = 0;
  add(g.start_pos, 0);
  if (!finish(g, 0, 0)) {
    // Only an over-limit start set fails: an empty first position refuses everything, and
    // overflowed() says why.
    items_.clear();
    threads_.clear();
    pos_.push_back({0, 0});
    base_ = 0;
    steps_ = 0;
    over_ = false;
  }
}

void Chart::add(uint32_t pos, uint32_t origin) {
  const size_t n = items_.size() - base_;
  if (++steps_ > limits::kMaxParseStepsPerPosition || items_.size() >= limits::kMaxChartItems) {
    overflowed_ = over_ = true;
    return;
  }
  if (n < kLinearDedup) {
    for (size_t k = base_; k < items_.size(); ++k) {
      if (items_[k].pos == pos && items_[k].origin == origin) return;
    }
    items_.push_back({pos, origin});
    if (n + 1 == kLinearDedup) rehash(4 * kLinearDedup);
    return;
  }
  const uint64_t key = key_of(pos, origin);
  const size_t mask = seen_.size() - 1;
  for (size_t s = slot_of(key, mask);; s = (s + 1) & mask) {
    if (seen_[s] == key) return;
    if (seen_[s] == 0) {
      seen_[s] = key;
      break;
    }
  }
  items_.push_back({pos, origin});
  if (2 * (n + 1) > seen_.size()) rehash(2 * seen_.size());
}

void Chart::rehash(size_t size) {
  seen_.assign(size, 0);
  seen_count_ = size;
  const size_t mask = size - 1;
  for (size_t k = base_; k < items_.size(); ++k) {
    const uint64_t key = key_of(items_[k].pos, items_[k].origin);
    size_t s = slot_of(key, mask);
    while (seen_[s] != 0) s = (s + 1) & mask;
    seen_[s] = key;
  }
}

void Chart::seed_scan(const CompiledGrammar::Impl& g, uint32_t origin, std::span<const uint32_t> accepts) {
  const size_t begin = origin ? pos_[origin - 1].items_end : 0, end = pos_[origin].items_end;
  for (size_t k = begin; k < end; ++k) {
    const Item it = items_[k];
    const uint32_t sym = g.sym_at[it.pos];
    if (sym == kEnd || (sym & 1u) != 0) continue;
    if (std::binary_search(accepts.begin(), accepts.end(), sym >> 1)) add(it.pos + 1, it.origin);
  }
}

bool Chart::finish(const CompiledGrammar::Impl& g, size_t items_base, size_t threads_base) {
  const auto here = static_cast<uint32_t>(pos_.size());
  for (size_t k = items_base; k < items_.size(); ++k) {
    const Item it = items_[k];
    const uint32_t sym = g.sym_at[it.pos];
    if (sym == kEnd) {
      if (it.origin == here) continue;  // an empty derivation: advanced at prediction
      const uint32_t want = Symbol::rule(g.lhs_at[it.pos]).bits;
      const size_t begin = it.origin ? pos_[it.origin - 1].items_end : 0, end = pos_[it.origin].items_end;
      steps_ += end - begin;
      for (size_t j = begin; j < end; ++j) {
        const Item w = items_[j];
        if (g.sym_at[w.pos] == want) add(w.pos + 1, w.origin);
      }
    } else if ((sym & 1u) != 0) {
      const uint32_t rule = sym >> 1;
      for (uint32_t p : g.first_pos_of_rule[rule]) add(p, here);
      if (g.rule_nullable[rule]) add(it.pos + 1, it.origin);
    } else if (g.term_nullable[sym >> 1]) {
      add(it.pos + 1, it.origin);
    }
  }
  // A new lexeme may start here: in the state of the terminals the items expect.
  if (items_.size() > items_base) {
    allowed_.clear();
    for (size_t k = items_base; k < items_.size(); ++k) {
      const uint32_t sym = g.sym_at[items_[k].pos];
      if (sym != kEnd && (sym & 1u) == 0 && g.term_lexable[sym >> 1]) allowed_.push_back(sym >> 1);
    }
    if (!allowed_.empty()) {
      std::sort(allowed_.begin(), allowed_.end());
      allowed_.erase(std::unique(allowed_.begin(), allowed_.end()), allowed_.end());
      const uint32_t s = start_state(g);
      if (s != kDead && g.dfa->can_continue(s)) threads_.push_back({here, s});
    }
  }
  if (items_.size() == items_base && threads_.size() == threads_base) return false;
  if (over_) return false;  // an incomplete set is no set
  pos_.push_back({static_cast<uint32_t>(items_.size()), static_cast<uint32_t>(threads_.size())});
  base_ = items_.size();
  steps_ = 0;
  if (seen_count_ != 0) {
    seen_.clear();
    seen_count_ = 0;
  }
  return true;
}

uint32_t Chart::start_state(const CompiledGrammar::Impl& g) {
  // The DFA's start cache takes its mutex; a few recent allowed sets are remembered here (state
  // ids never change for a grammar).
  for (const auto& [set, state] : start_memo_) {
    if (set == allowed_) return state;
  }
  const uint32_t s = g.dfa->start(allowed_);
  if (s == kDead) return s;
  constexpr size_t kMemo = 16;
  if (start_memo_.size() < kMemo) {
    start_memo_.emplace_back(allowed_, s);
  } else {
    start_memo_[memo_next_] = {allowed_, s};
    memo_next_ = (memo_next_ + 1) % kMemo;
  }
  return s;
}

bool Chart::push_byte(const CompiledGrammar::Impl& g, uint8_t b) {
  const size_t ib = items_.size(), tb = threads_.size();
  const size_t last = pos_.size() - 1;
  const size_t t_begin = last ? pos_[last - 1].threads_end : 0, t_end = pos_[last].threads_end;
  for (size_t k = t_begin; k < t_end; ++k) {
    const Thread th = threads_[k];
    const uint32_t next = g.dfa->next(th.dfa, b);
    if (next == kDead) continue;
    // A lexeme that cannot take another byte only ends here.
    if (g.dfa->can_continue(next)) threads_.push_back({th.origin, next});
    if (g.dfa->accepting(next)) seed_scan(g, th.origin, g.dfa->accepts(next));
  }
  if (finish(g, ib, tb)) return true;
  discard(ib, tb);
  return false;
}

void Chart::discard(size_t items_base, size_t threads_base) {
  items_.resize(items_base);
  threads_.resize(threads_base);
  base_ = items_base;
  seen_.clear();
  seen_count_ = 0;
  steps_ = 0;
  over_ = false;
}

bool Chart::push_lexeme_end(const CompiledGrammar::Impl& g, uint32_t origin, uint32_t accept_state) {
  const size_t ib = items_.size(), tb = threads_.size();
  seed_scan(g, origin, g.dfa->accepts(accept_state));
  if (finish(g, ib, tb)) return true;
  discard(ib, tb);
  return false;
}

void Chart::truncate(size_t num_positions) {
  if (num_positions == 0 || num_positions >= pos_.size()) return;  // position 0 always stays
  pos_.resize(num_positions);
  items_.resize(pos_.back().items_end);
  threads_.resize(pos_.back().threads_end);
  base_ = items_.size();
}

bool Chart::can_end(const CompiledGrammar::Impl& g) const {
  for (const Item& it : items(size() - 1)) {
    if (it.pos == g.accept_pos && it.origin == 0) return true;
  }
  return false;
}

}  // namespace kiln::grammar::detail
