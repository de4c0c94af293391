// The server's TokenConstraint: a grammar::Matcher over the model's token vocabulary.
#pragma once

#include <memory>

#include "kiln/grammar/matcher.h"
#include "kiln/grammar/tool_call.h"
#include "kiln/serve/token_constraint.h"

namespace kiln::serve {

// One Matcher per sequence, all over `vocabulary` (the model's, shared) and `grammar` (from the
// server's GrammarCache, shared). Masks are written in the engine's width: tokens the vocabulary
// has and the model does not are dropped, rows the model has and the vocabulary does not (padding
// of the embedding) are never allowed.
std::shared_ptr<const ConstraintFactory> grammar_constraint(std::shared_ptr<const grammar::CompiledGrammar> grammar,
                                                            std::shared_ptr<const grammar::TokenVocabulary> vocabulary);

// A lazy one (`strict` tools under tool_choice "auto"): free until the output holds
// `trigger.text` (written as text, or as a special token whose text it is), then a Matcher of
// `grammar` fed `trigger.feed` and the rest of the token that completed the marker constrains the
// output until the grammar must end (one call block), after which it waits for the marker again.
// A marker whose token carries text after it that the grammar refuses is let pass unconstrained.
std::shared_ptr<const ConstraintFactory> lazy_grammar_constraint(std::shared_ptr<const grammar::CompiledGrammar> grammar,
                                                                 std::shared_ptr<const grammar::TokenVocabulary> vocabulary,
                                                                 grammar::ToolCallTrigger trigger);

}  // namespace kiln::serve
