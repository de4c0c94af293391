// Matcher: the chart of one sequence, token checkpoints for rollback, and the mask.
//
// The mask at chart position i is the union, over the lexer threads live at i, of
//   - the thread's lexer state's `inside` tokens (cached per state: they never need the parser), and
//   - for each group of tokens that cross a point where the lexeme may end, the tokens whose
//     remaining bytes the chart accepts after ending the lexeme there: one scratch position per
//     group, then a walk of the group's suffix trie pushing and truncating chart positions.
// Every way a token's bytes can be split into lexemes falls in exactly one of these cases (by
// where the thread's current lexeme ends), so the union is exact.
#include <algorithm>
#include <cstring>

#include "kiln/core/str.h"
#include "kiln/grammar/engine.h"
#include "kiln/grammar/limits.h"

namespace kiln::grammar {

struct Matcher::State {
  std::shared_ptr<const CompiledGrammar> grammar;
  std::shared_ptr<const TokenVocabulary> vocab;
  CompiledGrammar::Impl* g = nullptr;
  detail::TokenCache* cache = nullptr;
  detail::Chart chart;
  std::vector<uint32_t> token_starts;  // chart size before each accepted token
  bool ended = false;
};

Matcher::Matcher(std::shared_ptr<const CompiledGrammar> grammar, std::shared_ptr<const TokenVocabulary> vocabulary)
    : s_(std::make_unique<State>()) {
  s_->g = &grammar->impl();
  s_->cache = &s_->g->cache_for(vocabulary);
  s_->grammar = std::move(grammar);
  s_->vocab = std::move(vocabulary);
  s_->chart.init(*s_->g);
}

Matcher::~Matcher() = default;
Matcher::Matcher(const Matcher& o) : s_(std::make_unique<State>(*o.s_)) {}
Matcher& Matcher::operator=(const Matcher& o) {
  if (this != &o) s_ = std::make_unique<State>(*o.s_);
  return *this;
}
Matcher::Matcher(Matcher&&) noexcept = default;
Matcher& Matcher::operator=(Matcher&&) noexcept = default;

namespace {

// Sets the bits of the tokens of trie nodes [begin, end) (whole subtrees, the bytes below `begin`'s
// parent) whose bytes the chart accepts from its last position.
void walk_suffixes(const CompiledGrammar::Impl& g, detail::Chart& chart, const detail::FlatTrie& trie,
                   uint32_t begin, uint32_t end, std::span<uint32_t> words, std::vector<uint32_t>& ends) {
  const size_t base = chart.size();
  ends.clear();
  for (uint32_t n = begin; n < end;) {
    while (!ends.empty() && n >= ends.back()) {
      ends.pop_back();
      chart.truncate(chart.size() - 1);
    }
    const detail::FlatTrie::Node& node = trie.nodes[n];
    if (!chart.push_byte(g, node.byte)) {
      n = node.next;
      continue;
    }
    for (uint32_t k = node.tok_begin; k < node.tok_end; ++k) detail::set_bit(words, trie.tokens[k]);
    ends.push_back(node.next);
    ++n;
  }
  chart.truncate(base);
}

}  // namespace

void Matcher::fill_next_token_mask(std::span<uint32_t> words) {
  std::fill(words.begin(), words.end(), 0u);
  State& s = *s_;
  if (s.ended) return;
  const CompiledGrammar::Impl& g = *s.g;
  detail::Chart& chart = s.chart;
  const size_t here = chart.size();
  const size_t n_words = std::min(words.size(), s.vocab->mask_words());
  // The chart grows while groups are walked: copy the threads first.
  const std::span<const detail::Thread> live = chart.threads(here - 1);
  detail::Thread threads[8];
  std::vector<detail::Thread> many;
  std::span<const detail::Thread> todo;
  if (live.size() <= 8) {
    std::copy(live.begin(), live.end(), threads);
    todo = {threads, live.size()};
  } else {
    many.assign(live.begin(), live.end());
    todo = many;
  }
  std::vector<uint32_t> ends;
  for (const detail::Thread& th : todo) {
    std::shared_ptr<const detail::StateTokens> st = s.cache->get(th.dfa);
    const uint32_t* in = st->inside.data();
    for (size_t w = 0; w < n_words; ++w) words[w] |= in[w];
    for (const auto& group : st->groups) {
      if (!chart.push_lexeme_end(g, th.origin, group.accept_state)) continue;
      const auto& sfx = group.suffixes;
      walk_suffixes(g, chart, sfx, 1, static_cast<uint32_t>(sfx.nodes.size()), words.first(n_words), ends);
      for (uint32_t root : group.roots) {
        walk_suffixes(g, chart, *st->trie, root + 1, st->trie->nodes[root].next, words.first(n_words), ends);
      }
      chart.truncate(here);
    }
  }
  if (chart.can_end(g)) {
    for (int32_t e : s.vocab->end_ids()) {
      if (static_cast<size_t>(e) / 32 < words.size()) detail::set_bit(words, e);
    }
  }
}

bool Matcher::accept_bytes(std::string_view bytes) {
  State& s = *s_;
  if (s.ended) return false;
  const size_t before = s.chart.size();
  for (char c : bytes) {
    if (!s.chart.push_byte(*s.g, static_cast<uint8_t>(c))) {
      s.chart.truncate(before);
      return false;
    }
  }
  return true;
}

bool Matcher::accept_token(int32_t id) {
  State& s = *s_;
  if (s.ended) return false;
  const auto& ends = s.vocab->end_ids();
  const auto before = static_cast<uint32_t>(s.chart.size());
  if (std::binary_search(ends.begin(), ends.end(), id)) {
    if (!s.chart.can_end(*s.g)) return false;
    s.ended = true;
    s.token_starts.push_back(before);
    return true;
  }
  if (id < 0 || static_cast<size_t>(id) >= s.vocab->size()) return false;
  // A special token matches its literal; a text token with a 0xFF byte is never text, and must
  // not spell a special token's literal.
  const std::string_view bytes = s.vocab->is_special(id) ? std::string_view(s.vocab->impl().special_literal[static_cast<size_t>(id)])
                                                        : s.vocab->token_bytes(id);
  if (bytes.empty() || (!s.vocab->is_special(id) && bytes.find('\xFF') != std::string_view::npos)) return false;
  if (!accept_bytes(bytes)) return false;
  s.token_starts.push_back(before);
  return true;
}

void Matcher::rollback(size_t num_tokens) {
  State& s = *s_;
  num_tokens = std::min(num_tokens, s.token_starts.size());
  if (num_tokens == 0) return;
  const size_t keep = s.token_starts.size() - num_tokens;
  s.chart.truncate(s.token_starts[keep]);
  s.token_starts.resize(keep);
  s.ended = false;
}

bool Matcher::can_end() const { return !s_->ended && s_->chart.can_end(*s_->g); }
bool Matcher::must_end() const { return !s_->ended && s_->chart.must_end(*s_->g); }
bool Matcher::ended() const { return s_->ended; }
size_t Matcher::num_tokens() const { return s_->token_starts.size(); }

const TokenVocabulary& Matcher::vocabulary() const { return *s_->vocab; }

Status Matcher::status() const {
  if (s_->chart.overflowed()) {
    return resource_exhausted(str_cat("the grammar is too ambiguous: parsing one byte took more than ",
                                      limits::kMaxParseStepsPerPosition, " steps"));
  }
  if (s_->g->dfa->overflowed()) {
    return resource_exhausted(str_cat("the grammar's lexer needs more than ", s_->g->dfa->num_states(),
                                      " automaton states"));
  }
  return Status::ok();
}

}  // namespace kiln::grammar
