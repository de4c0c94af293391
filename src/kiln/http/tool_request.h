// The tool fields of a chat request (tools, tool_choice, parallel_tool_calls), checked and kept as
// plain values, and the one place that says what a request asks the grammar engine to enforce.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/grammar/spec.h"
#include "kiln/http/errors.h"

namespace kiln::text {
class Tokenizer;
}

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
// HTTP layer computes it for every chat request (tool_constraint, then resolve_tool_markers).
struct ToolConstraint {
  enum class Kind {
    kNone,         // nothing to enforce
    kAnyCall,      // the answer must be one call (or more, when parallel) of any offered tool
    kNamedCall,    // the answer must be a call of `tools[0]`
    kStrictLazy,   // auto with `strict` tools: once the family's call marker appears, the call is
                   // one of `tools`, the strict ones' arguments valid for their schemas
  };
  Kind kind = Kind::kNone;
  std::string family;            // the tool parser's name: which call syntax to constrain
  std::string dialect;           // grammar::tool_call_dialect of the model's chat template
  std::vector<ToolSpec> tools;   // the tools that may be called
  bool parallel = true;
  // Text a forced answer starts with: the reasoning closer when the prompt opened reasoning.
  std::string prefix;
  // The family's markers that are special tokens / end tokens of the model (grammar::ToolCallSpec).
  std::vector<std::string> special_markers;
  std::vector<std::string> end_markers;
};
ToolConstraint tool_constraint(const ToolRequest& request, std::string_view tool_parser);
// Fills the dialect and the markers' kinds from the model's chat template and vocabulary.
void resolve_tool_markers(ToolConstraint* c, std::string_view chat_template, const text::Tokenizer& tokenizer,
                          const grammar::TokenVocabulary& vocabulary);

// The grammar a constraint compiles to, in *out (nullopt for kNone, and for kStrictLazy where the
// family has no call marker to wait for). A 400 on tool_choice when a forced call cannot be
// enforced for the model's tool-call format.
std::optional<ApiError> tool_grammar_spec(const ToolConstraint& c, std::optional<grammar::GrammarSpec>* out);

}  // namespace kiln::http
