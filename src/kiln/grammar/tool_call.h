// Grammars that force a model's answer to be tool calls in its family's own syntax: the call
// opener, a call object naming one of the allowed tools with arguments valid for that tool's JSON
// Schema, the closer; one call or several; then the end (docs/tool-calling-api.md, "tool_choice
// enforcement"). What tool_choice "required" and a named tool_choice compile to.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "kiln/core/status.h"
#include "kiln/grammar/grammar.h"

namespace kiln::grammar {

struct ToolCallTool {
  std::string name;
  std::string parameters_json = "{}";  // the arguments' JSON Schema
  bool strict = false;                 // OpenAI strict: no properties the schema does not name
};

struct ToolCallSpec {
  std::string family;  // the tool parser's name (text/output_parser.h)
  std::vector<ToolCallTool> tools;
  bool parallel = true;  // false: exactly one call; true: one or more
  // Literal text the answer starts with before the first call (the reasoning closer, when the
  // prompt left a reasoning block open).
  std::string prefix;
};

// Whether kiln can force calls in this family's syntax.
bool tool_call_family_supported(std::string_view family);
Result<Grammar> tool_call_grammar(const ToolCallSpec& spec);

}  // namespace kiln::grammar
