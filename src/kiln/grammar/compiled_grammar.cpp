// CompiledGrammar: the lexer (lexer.h) and the Earley parser's tables. Alternatives that use a
// symbol deriving no string at all are dropped, so that every item the chart holds can still be
// completed: a live lexer state or a non-empty Earley set then means the bytes so far are a prefix
// of a sentence, which is what makes the masks exact.
#include <algorithm>

#include "kiln/core/str.h"
#include "kiln/grammar/engine.h"
#include "kiln/grammar/limits.h"

namespace kiln::grammar {
namespace {

// The least set of rules with an alternative whose every symbol is a rule of the set or a terminal
// for which `terminal_ok` holds.
template <typename TerminalOk>
std::vector<uint8_t> rules_where(const Grammar& g, TerminalOk terminal_ok) {
  constexpr uint32_t kNever = UINT32_MAX;
  std::vector<uint8_t> in(g.rules.size(), 0);
  std::vector<std::pair<uint32_t, uint32_t>> alts;        // (rule, rule symbols not yet in the set)
  std::vector<std::vector<uint32_t>> uses(g.rules.size());  // rule -> alternatives, once per use
  std::vector<uint32_t> work;
  for (uint32_t r = 0; r < g.rules.size(); ++r) {
    for (const auto& alt : g.rules[r].alternatives) {
      const auto a = static_cast<uint32_t>(alts.size());
      uint32_t missing = 0;
      for (Symbol s : alt) {
        if (s.is_terminal()) {
          if (!terminal_ok(s.index())) missing = kNever;
        } else if (missing != kNever) {
          ++missing;
          uses[s.index()].push_back(a);
        }
      }
      alts.emplace_back(r, missing);
      if (missing == 0 && !in[r]) {
        in[r] = 1;
        work.push_back(r);
      }
    }
  }
  while (!work.empty()) {
    const uint32_t r = work.back();
    work.pop_back();
    for (uint32_t a : uses[r]) {
      auto& [rule, missing] = alts[a];
      if (missing != kNever && --missing == 0 && !in[rule]) {
        in[rule] = 1;
        work.push_back(rule);
      }
    }
  }
  return in;
}

}  // namespace

CompiledGrammar::CompiledGrammar(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
CompiledGrammar::~CompiledGrammar() = default;
const Grammar& CompiledGrammar::grammar() const { return impl_->grammar; }

Result<std::shared_ptr<const CompiledGrammar>> CompiledGrammar::compile(Grammar grammar) {
  return compile(std::move(grammar), CompileOptions{});
}

Result<std::shared_ptr<const CompiledGrammar>> CompiledGrammar::compile(Grammar grammar, const CompileOptions& options) {
  KILN_RETURN_IF_ERROR(grammar.validate());
  auto impl = std::make_unique<Impl>();
  KILN_ASSIGN_OR_RETURN(detail::Nfa nfa, detail::build_nfa(grammar));
  const size_t nt = grammar.terminals.size(), nr = grammar.rules.size();
  impl->term_nullable = nfa.nullable;
  impl->term_lexable.assign(nt, 0);
  for (size_t t = 0; t < nt; ++t) impl->term_lexable[t] = nfa.start_of[t] != detail::kNone;

  // Productive rules (derive at least one string) and nullable rules, each by a worklist in time
  // linear in the grammar's size (a chain of rules must not cost a pass per link).
  std::vector<uint8_t> productive = rules_where(grammar, [&](uint32_t t) {
    return impl->term_lexable[t] != 0 || impl->term_nullable[t] != 0;
  });
  if (!productive[grammar.start]) return invalid_argument("the grammar matches no text at all");
  // A nullable rule is productive, so counting every alternative gives the same answer as
  // counting only the productive ones.
  impl->rule_nullable = rules_where(grammar, [&](uint32_t t) { return impl->term_nullable[t] != 0; });
  auto sym_ok = [&](Symbol s, const std::vector<uint8_t>& rule_ok) {
    return s.is_terminal() ? (impl->term_lexable[s.index()] || impl->term_nullable[s.index()]) != 0
                           : rule_ok[s.index()] != 0;
  };

  // Flattened productions; the augmented START' -> start comes last.
  impl->first_pos_of_rule.resize(nr);
  auto add_production = [&](uint32_t lhs, const std::vector<Symbol>& syms) {
    const auto first = static_cast<uint32_t>(impl->sym_at.size());
    for (Symbol s : syms) {
      impl->sym_at.push_back(s.bits);
      impl->lhs_at.push_back(lhs);
    }
    impl->sym_at.push_back(detail::kEnd);
    impl->lhs_at.push_back(lhs);
    return first;
  };
  for (uint32_t r = 0; r < nr; ++r) {
    for (const auto& alt : grammar.rules[r].alternatives) {
      if (!std::all_of(alt.begin(), alt.end(), [&](Symbol s) { return sym_ok(s, productive); })) continue;
      impl->first_pos_of_rule[r].push_back(add_production(r, alt));
    }
  }
  impl->start_pos = add_production(static_cast<uint32_t>(nr), {Symbol::rule(grammar.start)});
  impl->accept_pos = impl->start_pos + 1;

  impl->dfa = std::make_unique<detail::Dfa>(std::move(nfa), options.max_dfa_states);
  impl->token_cache_bytes = options.max_token_cache_bytes;
  impl->grammar = std::move(grammar);
  return std::shared_ptr<const CompiledGrammar>(new CompiledGrammar(std::move(impl)));
}

detail::TokenCache& CompiledGrammar::Impl::cache_for(const std::shared_ptr<const TokenVocabulary>& vocab) {
  std::lock_guard lock(caches_mu);
  for (auto& c : caches) {
    if (c->vocabulary() == vocab) return *c;
  }
  caches.push_back(std::make_unique<detail::TokenCache>(*dfa, vocab, token_cache_bytes));
  return *caches.back();
}

}  // namespace kiln::grammar
