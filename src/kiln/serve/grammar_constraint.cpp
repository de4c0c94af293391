#include "kiln/serve/grammar_constraint.h"

#include <algorithm>
#include <vector>

namespace kiln::serve {
namespace {

class GrammarConstraint final : public TokenConstraint {
 public:
  GrammarConstraint(std::shared_ptr<const grammar::CompiledGrammar> g, std::shared_ptr<const grammar::TokenVocabulary> v)
      : matcher_(std::move(g), v), words_(v->mask_words()) {}

  void fill_mask(std::span<uint32_t> words) override {
    if (words.size() >= words_) {
      matcher_.fill_next_token_mask(words.first(words_));
      std::fill(words.begin() + static_cast<std::ptrdiff_t>(words_), words.end(), 0u);
      return;
    }
    scratch_.resize(words_);
    matcher_.fill_next_token_mask(scratch_);
    std::copy_n(scratch_.begin(), words.size(), words.begin());
  }
  bool accept(int32_t token) override { return matcher_.accept_token(token); }
  bool complete() const override { return matcher_.ended() || matcher_.must_end(); }

 private:
  grammar::Matcher matcher_;
  size_t words_;                  // the vocabulary's mask width
  std::vector<uint32_t> scratch_;  // when the model's rows are fewer than the vocabulary's tokens
};

class GrammarConstraintFactory final : public ConstraintFactory {
 public:
  GrammarConstraintFactory(std::shared_ptr<const grammar::CompiledGrammar> g, std::shared_ptr<const grammar::TokenVocabulary> v)
      : grammar_(std::move(g)), vocabulary_(std::move(v)) {}
  std::unique_ptr<TokenConstraint> make() const override {
    return std::make_unique<GrammarConstraint>(grammar_, vocabulary_);
  }

 private:
  std::shared_ptr<const grammar::CompiledGrammar> grammar_;
  std::shared_ptr<const grammar::TokenVocabulary> vocabulary_;
};

}  // namespace

std::shared_ptr<const ConstraintFactory> grammar_constraint(std::shared_ptr<const grammar::CompiledGrammar> grammar,
                                                            std::shared_ptr<const grammar::TokenVocabulary> vocabulary) {
  return std::make_shared<GrammarConstraintFactory>(std::move(grammar), std::move(vocabulary));
}

}  // namespace kiln::serve
