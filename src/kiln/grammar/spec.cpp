#include "kiln/grammar/spec.h"

#include "kiln/core/str.h"
#include "kiln/grammar/grammar_text.h"
#include "kiln/grammar/json_schema.h"
#include "kiln/grammar/limits.h"
#include "kiln/grammar/regex_text.h"

namespace kiln::grammar {

Result<Grammar> build_grammar(const GrammarSpec& spec) {
  if (spec.text.size() > limits::kMaxSourceBytes) {
    return invalid_argument(str_cat("the grammar source is longer than ", limits::kMaxSourceBytes, " bytes"));
  }
  switch (spec.kind) {
    case GrammarSpec::Kind::kJsonSchema: return json_schema_grammar(spec.text, spec.json);
    case GrammarSpec::Kind::kJsonObject: return json_object_grammar(spec.json);
    case GrammarSpec::Kind::kRegex: return regex_grammar(spec.text);
    case GrammarSpec::Kind::kChoice: return choice_grammar(spec.choices);
    case GrammarSpec::Kind::kGrammarText: return grammar_from_text(spec.text);
    case GrammarSpec::Kind::kToolCalls: return tool_call_grammar(spec.tool_calls);
  }
  return invalid_argument("unknown grammar kind");
}

GrammarCache::GrammarCache(size_t capacity) : GrammarCache(capacity, build_grammar) {}

}  // namespace kiln::grammar
