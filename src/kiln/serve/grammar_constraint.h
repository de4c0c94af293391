// The server's TokenConstraint: a grammar::Matcher over the model's token vocabulary.
#pragma once

#include <memory>

#include "kiln/grammar/matcher.h"
#include "kiln/serve/token_constraint.h"

namespace kiln::serve {

// One Matcher per sequence, all over `vocabulary` (the model's, shared) and `grammar` (from the
// server's GrammarCache, shared). Masks are written in the engine's width: tokens the vocabulary
// has and the model does not are dropped, rows the model has and the vocabulary does not (padding
// of the embedding) are never allowed.
std::shared_ptr<const ConstraintFactory> grammar_constraint(std::shared_ptr<const grammar::CompiledGrammar> grammar,
                                                            std::shared_ptr<const grammar::TokenVocabulary> vocabulary);

}  // namespace kiln::serve
