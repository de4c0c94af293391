#include "kiln/serve/grammar_constraint.h"

#include <algorithm>
#include <string>
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
  bool accept_bytes(std::string_view bytes) { return matcher_.accept_bytes(bytes); }
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

class LazyGrammarConstraint final : public TokenConstraint {
 public:
  LazyGrammarConstraint(std::shared_ptr<const grammar::CompiledGrammar> g, std::shared_ptr<const grammar::TokenVocabulary> v,
                        std::shared_ptr<const grammar::ToolCallTrigger> trigger)
      : grammar_(std::move(g)), vocabulary_(std::move(v)), trigger_(std::move(trigger)) {}

  void fill_mask(std::span<uint32_t> words) override {
    if (active_) return active_->fill_mask(words);
    std::fill(words.begin(), words.end(), ~0u);
  }

  bool accept(int32_t token) override {
    if (active_) {
      if (!active_->accept(token)) return false;
      if (active_->complete()) {
        // The call block is whole: free again, waiting for the next marker.
        active_.reset();
        tail_.clear();
      }
      return true;
    }
    // Free: look for the marker in the output (tail_ keeps what a marker could still complete).
    const std::string& marker = trigger_->text;
    const size_t before = tail_.size();
    tail_ += vocabulary_->token_bytes(token);
    const size_t at = tail_.find(marker, before >= marker.size() ? before - marker.size() + 1 : 0);
    if (at == std::string::npos) {
      if (tail_.size() >= marker.size()) tail_.erase(0, tail_.size() - (marker.size() - 1));
      return true;
    }
    auto m = std::make_unique<GrammarConstraint>(grammar_, vocabulary_);
    const std::string rest = tail_.substr(at + marker.size());
    tail_.clear();
    if (m->accept_bytes(trigger_->feed) && m->accept_bytes(rest)) active_ = std::move(m);
    return true;
  }

  // Never finishes the answer: after a call block the model goes on freely.
  bool complete() const override { return false; }

 private:
  std::shared_ptr<const grammar::CompiledGrammar> grammar_;
  std::shared_ptr<const grammar::TokenVocabulary> vocabulary_;
  std::shared_ptr<const grammar::ToolCallTrigger> trigger_;
  std::string tail_;  // free: the output's last bytes, fewer than the marker's
  std::unique_ptr<GrammarConstraint> active_;
};

class LazyGrammarConstraintFactory final : public ConstraintFactory {
 public:
  LazyGrammarConstraintFactory(std::shared_ptr<const grammar::CompiledGrammar> g,
                               std::shared_ptr<const grammar::TokenVocabulary> v, grammar::ToolCallTrigger t)
      : grammar_(std::move(g)), vocabulary_(std::move(v)),
        trigger_(std::make_shared<const grammar::ToolCallTrigger>(std::move(t))) {}
  std::unique_ptr<TokenConstraint> make() const override {
    return std::make_unique<LazyGrammarConstraint>(grammar_, vocabulary_, trigger_);
  }

 private:
  std::shared_ptr<const grammar::CompiledGrammar> grammar_;
  std::shared_ptr<const grammar::TokenVocabulary> vocabulary_;
  std::shared_ptr<const grammar::ToolCallTrigger> trigger_;
};

}  // namespace

std::shared_ptr<const ConstraintFactory> grammar_constraint(std::shared_ptr<const grammar::CompiledGrammar> grammar,
                                                            std::shared_ptr<const grammar::TokenVocabulary> vocabulary) {
  return std::make_shared<GrammarConstraintFactory>(std::move(grammar), std::move(vocabulary));
}

}  // namespace kiln::serve

namespace kiln::serve {

std::shared_ptr<const ConstraintFactory> lazy_grammar_constraint(std::shared_ptr<const grammar::CompiledGrammar> grammar,
                                                                 std::shared_ptr<const grammar::TokenVocabulary> vocabulary,
                                                                 grammar::ToolCallTrigger trigger) {
  return std::make_shared<LazyGrammarConstraintFactory>(std::move(grammar), std::move(vocabulary), std::move(trigger));
}

}  // namespace kiln::serve
