// Token-level matching of a compiled grammar over a model's vocabulary: the mask of tokens allowed
// next, advancing by a sampled token, rollback.
//
//   TokenVocabulary  one per tokenizer (shared by every request of a model): each token's bytes,
//                    the token trie and precomputed token classes, the end-of-sequence ids.
//   CompiledGrammar  one per grammar (shared, cached by content): lexer automata and parser
//                    tables, with caches filled lazily and safely from several threads.
//   Matcher          one per sequence: the parse state; cheap to copy (n > 1 copies it).
//
// A mask is a packed bitmask of mask_words() 32-bit words: token id t is allowed when bit t % 32 of
// word t / 32 is set. End-of-sequence ids are allowed exactly where the grammar can end; a special
// token that is not an end id is allowed only where the grammar names it (special_token_literal);
// every other token is allowed when its bytes continue a sentence of the grammar.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/core/status.h"
#include "kiln/grammar/grammar.h"
#include "kiln/grammar/limits.h"

namespace kiln::text {
class Tokenizer;
}

namespace kiln::grammar {

// The bytes that stand for the special token whose text is `text` in a grammar: 0xFF, the text,
// 0xFF. Valid UTF-8 never holds the byte 0xFF, so no text terminal matches it, and text tokens with
// that byte are never allowed: only the special token itself matches its literal. A grammar that
// wants a marker as the model's special token (`[TOOL_CALLS]`, `<|channel|>`) writes this literal.
std::string special_token_literal(std::string_view text);

class TokenVocabulary {
 public:
  // `end_ids`: the model's end-of-sequence ids (generation_config's eos_token_id list, the
  // tokenizer's eos); they may be special tokens.
  static std::shared_ptr<const TokenVocabulary> build(const text::Tokenizer& tokenizer,
                                                      std::vector<int32_t> end_ids);
  // From raw token bytes (tests and benchmarks); `special[i]` marks tokens that are never text.
  static std::shared_ptr<const TokenVocabulary> from_bytes(std::vector<std::string> token_bytes,
                                                           std::vector<bool> special,
                                                           std::vector<int32_t> end_ids);
  ~TokenVocabulary();

  size_t size() const;                          // bits in a mask
  size_t mask_words() const { return (size() + 31) / 32; }
  std::string_view token_bytes(int32_t id) const;
  bool is_special(int32_t id) const;
  const std::vector<int32_t>& end_ids() const;

  struct Impl;
  const Impl& impl() const { return *impl_; }

 private:
  explicit TokenVocabulary(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Bounds of a compiled grammar's lazily filled caches (limits.h by default; tests make them tiny).
struct CompileOptions {
  size_t max_dfa_states = limits::kMaxDfaStates;
  size_t max_token_cache_bytes = limits::kMaxTokenCacheBytes;
};

class CompiledGrammar {
 public:
  // Validates and compiles; a grammar the engine cannot run (over limits.h) is refused here.
  static Result<std::shared_ptr<const CompiledGrammar>> compile(Grammar grammar);
  static Result<std::shared_ptr<const CompiledGrammar>> compile(Grammar grammar, const CompileOptions& options);
  ~CompiledGrammar();
  const Grammar& grammar() const;

  struct Impl;
  Impl& impl() const { return *impl_; }

 private:
  explicit CompiledGrammar(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

class Matcher {
 public:
  Matcher(std::shared_ptr<const CompiledGrammar> grammar,
          std::shared_ptr<const TokenVocabulary> vocabulary);
  ~Matcher();
  Matcher(const Matcher&);
  Matcher& operator=(const Matcher&);
  Matcher(Matcher&&) noexcept;
  Matcher& operator=(Matcher&&) noexcept;

  // Writes the mask of tokens allowed next into `words` (size mask_words()).
  void fill_next_token_mask(std::span<uint32_t> words);
  // Advances by one token; false (and the state unchanged) when the token is not allowed.
  // An end id is accepted only where the grammar can end, and ends the match.
  bool accept_token(int32_t id);
  // Advances by raw bytes (a forced prefix, e.g. a tool-call opener); false and unchanged if the
  // bytes cannot continue a sentence.
  bool accept_bytes(std::string_view bytes);
  // Undoes the last `num_tokens` accepted tokens (not more than num_tokens()).
  void rollback(size_t num_tokens);

  bool can_end() const;      // the bytes so far form a whole sentence
  bool must_end() const;     // and nothing but the end may follow
  bool ended() const;        // an end id was accepted
  size_t num_tokens() const; // tokens accepted (and not rolled back)
  // Not ok once the grammar's lexer outgrew limits::kMaxDfaStates: the match then fails closed
  // (masks and accepts may refuse text the grammar allows); the request should end with this error.
  Status status() const;
  const TokenVocabulary& vocabulary() const;

  struct State;

 private:
  std::unique_ptr<State> s_;
};

}  // namespace kiln::grammar
