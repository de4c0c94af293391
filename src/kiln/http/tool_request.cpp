#include "kiln/http/tool_request.h"

#include <algorithm>

#include "kiln/core/str.h"
#include "kiln/grammar/matcher.h"
#include "kiln/text/tokenizer.h"

namespace kiln::http {

ToolConstraint tool_constraint(const ToolRequest& r, std::string_view tool_parser) {
  ToolConstraint c;
  c.family = std::string(tool_parser);
  c.parallel = r.parallel_tool_calls;
  if (!r.offered()) return c;
  switch (r.choice) {
    case ToolChoice::kRequired:
      c.kind = ToolConstraint::Kind::kAnyCall;
      c.tools = r.tools;
      break;
    case ToolChoice::kNamed:
      c.kind = ToolConstraint::Kind::kNamedCall;
      for (const auto& t : r.tools) {
        if (t.name == r.named) c.tools.push_back(t);
      }
      break;
    case ToolChoice::kAuto:
      // Every offered tool may still be called; only the strict ones' arguments are enforced.
      for (const auto& t : r.tools) {
        if (t.strict) c.kind = ToolConstraint::Kind::kStrictLazy;
      }
      if (c.kind == ToolConstraint::Kind::kStrictLazy) c.tools = r.tools;
      break;
    case ToolChoice::kNone:
      break;
  }
  return c;
}

void resolve_tool_markers(ToolConstraint* c, std::string_view chat_template, const text::Tokenizer& tokenizer,
                          const grammar::TokenVocabulary& vocabulary) {
  c->special_markers.clear();
  c->end_markers.clear();
  if (c->kind == ToolConstraint::Kind::kNone) return;
  c->dialect = grammar::tool_call_dialect(c->family, chat_template);
  const auto& ends = vocabulary.end_ids();
  for (std::string& m : grammar::tool_call_markers(c->family, c->dialect)) {
    const std::optional<int32_t> id = tokenizer.token_to_id(m);
    if (!id) continue;
    if (std::find(ends.begin(), ends.end(), *id) != ends.end()) {
      c->end_markers.push_back(std::move(m));
    } else if (vocabulary.is_special(*id)) {
      c->special_markers.push_back(std::move(m));
    }
  }
}

std::optional<ApiError> tool_grammar_spec(const ToolConstraint& c, std::optional<grammar::GrammarSpec>* out) {
  out->reset();
  if (c.kind == ToolConstraint::Kind::kNone) return std::nullopt;
  const bool lazy = c.kind == ToolConstraint::Kind::kStrictLazy;
  if (lazy) {
    // Under auto nothing forces a call: a model with no known format (or a family with no call
    // marker to start from) keeps its calls unconstrained rather than failing the request.
    grammar::ToolCallSpec probe;
    probe.family = c.family;
    probe.dialect = c.dialect;
    if (!grammar::tool_call_family_supported(c.family) || !grammar::tool_call_trigger(probe)) return std::nullopt;
  } else if (!grammar::tool_call_family_supported(c.family)) {
    // Fail closed: a forced call that is not enforced would let the answer be anything.
    return invalid_param("tool_choice",
                         c.family.empty()
                             ? std::string("tool_choice cannot be enforced: kiln knows no tool-call format for this model "
                                           "(set tool_parser for it); use tool_choice 'auto'.")
                             : str_cat("tool_choice cannot be enforced for the '", c.family,
                                       "' tool-call format (enforced: hermes, qwen3_coder, glm45, llama3, mistral, "
                                       "deepseek_v3, harmony); use tool_choice 'auto'."),
                         "unsupported_value");
  }
  grammar::GrammarSpec spec;
  spec.kind = grammar::GrammarSpec::Kind::kToolCalls;
  spec.tool_calls.family = c.family;
  spec.tool_calls.dialect = c.dialect;
  spec.tool_calls.parallel = c.parallel;
  spec.tool_calls.lazy = lazy;
  if (!lazy) spec.tool_calls.prefix = c.prefix;
  spec.tool_calls.special_markers = c.special_markers;
  spec.tool_calls.end_markers = c.end_markers;
  for (const ToolSpec& t : c.tools) {
    // Under auto a tool that is not strict keeps any arguments.
    spec.tool_calls.tools.push_back({t.name, lazy && !t.strict ? std::string("{}") : t.parameters_json, t.strict});
  }
  *out = std::move(spec);
  return std::nullopt;
}

}  // namespace kiln::http
