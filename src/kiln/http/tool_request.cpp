#include "kiln/http/tool_request.h"

#include "kiln/core/str.h"

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
      for (const auto& t : r.tools) {
        if (t.strict) c.tools.push_back(t);
      }
      if (!c.tools.empty()) c.kind = ToolConstraint::Kind::kStrictLazy;
      break;
    case ToolChoice::kNone:
      break;
  }
  return c;
}

std::optional<ApiError> tool_grammar_spec(const ToolConstraint& c, std::optional<grammar::GrammarSpec>* out) {
  out->reset();
  if (c.kind != ToolConstraint::Kind::kAnyCall && c.kind != ToolConstraint::Kind::kNamedCall) return std::nullopt;
  if (!grammar::tool_call_family_supported(c.family)) {
    // Fail closed: a forced call that is not enforced would let the answer be anything.
    return invalid_param("tool_choice",
                         c.family.empty()
                             ? std::string("tool_choice cannot be enforced: kiln knows no tool-call format for this model "
                                           "(set tool_parser for it); use tool_choice 'auto'.")
                             : str_cat("tool_choice cannot be enforced for the '", c.family,
                                       "' tool-call format (enforced: hermes, llama3); use tool_choice 'auto'."),
                         "unsupported_value");
  }
  grammar::GrammarSpec spec;
  spec.kind = grammar::GrammarSpec::Kind::kToolCalls;
  spec.tool_calls.family = c.family;
  spec.tool_calls.parallel = c.parallel;
  spec.tool_calls.prefix = c.prefix;
  for (const ToolSpec& t : c.tools) spec.tool_calls.tools.push_back({t.name, t.parameters_json, t.strict});
  *out = std::move(spec);
  return std::nullopt;
}

}  // namespace kiln::http
