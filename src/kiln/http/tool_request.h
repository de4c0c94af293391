// The tool fields of a chat request (tools, tool_choice, parallel_tool_calls), checked and kept as
// plain values, and the one place that says what a request asks the grammar engine to enforce.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/grammar/spec.h"
#include "kiln/http/errors.h"

namespace kiln::http {

inline constexpr size_t kMaxTools = 128;  // OpenAI's limit

struct ToolSpec {
  std::string name;
  std::string description;
  std::string parameters_json;  // the JSON Schema of the arguments ("{}" when absent)
  bool strict = false;
};

enum class ToolChoice { kAuto, kNone, kRequired, kNamed };

struct ToolRequest {
  std::vector<ToolSpec> tools;
  ToolChoice choice = ToolChoice::kAuto;
  std::string named;               // kNamed: the function the model must call
  bool parallel_tool_calls = true;  // false: one call per answer
  // Whether the model is shown the tools and its calls are parsed: tools given and choice not none.
  bool offered() const { return !tools.empty() && choice != ToolChoice::kNone; }
};

// What the grammar engine must constrain for a request, given the model's tool-call family. The
// HTTP layer computes it for every chat request; kAnyCall and kNamedCall are enforced
// (tool_grammar_spec), kStrictLazy is not yet (docs/tool-calling-api.md).
struct ToolConstraint {
  enum class Kind {
    kNone,         // nothing to enforce
    kAnyCall,      // the answer must be one call (or more, when parallel) of any offered tool
    kNamedCall,    // the answer must be a call of `tools[0]`
    kStrictLazy,   // auto: once the family's call marker appears, arguments follow the schemas of
                   // the `strict` tools
  };
  Kind kind = Kind::kNone;
  std::string family;            // the tool parser's name: which call syntax to constrain
  std::vector<ToolSpec> tools;   // the tools whose schemas apply
  bool parallel = true;
  // Text a forced answer starts with: the reasoning closer when the prompt opened reasoning.
  std::string prefix;
};
ToolConstraint tool_constraint(const ToolRequest& request, std::string_view tool_parser);

// The grammar that forces the calls of a kAnyCall or kNamedCall constraint, in *out (nullopt for
// the other kinds). A 400 on tool_choice when the model's tool-call format cannot be forced.
std::optional<ApiError> tool_grammar_spec(const ToolConstraint& c, std::optional<grammar::GrammarSpec>* out);

}  // namespace kiln::http
