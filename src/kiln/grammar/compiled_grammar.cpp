// CompiledGrammar: the lexer (lexer.h) and the Earley parser's tables. Alternatives that use a
// symbol deriving no string at all are dropped, so that every item the chart holds can still be
// completed: a live lexer state or a non-empty Earley set then means the bytes so far are a prefix
// of a sentence, which is what makes the masks exact.
#include <algorithm>

#include "kiln/core/str.h"
#include "kiln/grammar/engine.h"
#include "kiln/grammar/limits.h"

namespace kiln::grammar {

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

  // Productive rules (derive at least one string), to a fixpoint.
  auto sym_ok = [&](Symbol s, const std::vector<uint8_t>& rule_ok) {
    return s.is_terminal() ? (impl->term_lexable[s.index()] || impl->term_nullable[s.index()]) != 0
                           : rule_ok[s.index()] != 0;
  };
  std::vector<uint8_t> productive(nr, 0);
  for (bool changed = true; changed;) {
    changed = false;
    for (size_t r = 0; r < nr; ++r) {
      if (productive[r]) continue;
      for (const auto& alt : grammar.rules[r].alternatives) {
        if (std::all_of(alt.begin(), alt.end(), [&](Symbol s) { return sym_ok(s, productive); })) {
          productive[r] = 1;
          changed = true;
          break;
        }
      }
    }
  }
  if (!productive[grammar.start]) return invalid_argument("the grammar matches no text at all");

  // Nullable rules, over the productive alternatives.
  impl->rule_nullable.assign(nr, 0);
  for (bool changed = true; changed;) {
    changed = false;
    for (size_t r = 0; r < nr; ++r) {
      if (impl->rule_nullable[r]) continue;
      for (const auto& alt : grammar.rules[r].alternatives) {
        const bool all = std::all_of(alt.begin(), alt.end(), [&](Symbol s) {
          return s.is_terminal() ? impl->term_nullable[s.index()] != 0 : impl->rule_nullable[s.index()] != 0;
        });
        if (all) {
          impl->rule_nullable[r] = 1;
          changed = true;
          break;
        }
      }
    }
  }

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
