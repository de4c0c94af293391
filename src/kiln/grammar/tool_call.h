// Grammars of tool calls in each family's own syntax: the call opener, a call naming one of the
// allowed tools with arguments valid for that tool's JSON Schema, the closer; one call or several
// (docs/tool-calling-api.md, "tool_choice enforcement"). What tool_choice "required" and a named
// tool_choice compile to, and, lazily (started by the family's call marker), `strict` tools under
// tool_choice "auto". The table of call frames in tool_call.cpp is the one place that knows each
// family's call syntax for generation.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/core/status.h"
#include "kiln/grammar/grammar.h"

namespace kiln::grammar {

struct ToolCallTool {
  std::string name;
  std::string parameters_json = "{}";  // the arguments' JSON Schema ("{}": any object)
  bool strict = false;                 // OpenAI strict: no properties the schema does not name
};

struct ToolCallSpec {
  std::string family;   // the tool parser's name (text/output_parser.h)
  std::string dialect;  // tool_call_dialect(): which of the family's forms the template writes
  std::vector<ToolCallTool> tools;
  bool parallel = true;  // false: exactly one call; true: one or more
  // Literal text the answer starts with before the first call (the reasoning closer, when the
  // prompt left a reasoning block open).
  std::string prefix;
  // Which of tool_call_markers() are special tokens of the model's vocabulary: written as
  // special_token_literal() so that only that token matches (else as text). A marker that is an
  // end-of-sequence token (harmony's <|call|>) is in `end_markers`: the grammar ends there, so
  // the model's end token finishes the call.
  std::vector<std::string> special_markers;
  std::vector<std::string> end_markers;
  // One call block and then the end: the grammar a lazy constraint runs from the call marker on
  // (tool_call_trigger). `parallel` then counts calls inside one block (mistral's list,
  // deepseek's calls block); a family without a block has one call per block.
  bool lazy = false;
};

// Whether kiln can force calls in this family's syntax.
bool tool_call_family_supported(std::string_view family);
// The family's form that a chat template writes (e.g. mistral's "v11" `[TOOL_CALLS]f[ARGS]{...}`
// against the older list); "" for the family's first form.
std::string tool_call_dialect(std::string_view family, std::string_view chat_template);
// The marker texts of the family's call frame that may be special tokens.
std::vector<std::string> tool_call_markers(std::string_view family, std::string_view dialect);
Result<Grammar> tool_call_grammar(const ToolCallSpec& spec);

// Under tool_choice "auto", where a call starts: once the output holds `text` (the family's call
// marker, as text or as the special token), a matcher of the lazy grammar is fed `feed` (the
// grammar's own bytes up to the end of the marker) and constrains the rest of the call block.
struct ToolCallTrigger {
  std::string text;
  std::string feed;
};
// nullopt for a family with no marker to wait for (harmony).
std::optional<ToolCallTrigger> tool_call_trigger(const ToolCallSpec& spec);

}  // namespace kiln::grammar
