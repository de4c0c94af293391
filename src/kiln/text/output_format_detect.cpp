// Which tool-call and reasoning format a model speaks, read off its chat template (what it shows
// the model of earlier calls and of its instructions) and, where the template is silent, the
// tokenizer's added tokens. docs/tool-calling.md has the table.
#include <algorithm>

#include "kiln/text/output_parser.h"
#include "kiln/text/tokenizer.h"

namespace kiln::text {
namespace {

bool has(std::string_view s, std::string_view what) { return s.find(what) != std::string_view::npos; }

// The added tokens that tell a family apart.
constexpr std::string_view kTellingTokens[] = {
    "<|channel|>", "<|message|>", "<｜tool▁calls▁begin｜>", "<tool_call>", "[TOOL_CALLS]", "<|python_tag|>",
    "<think>", "</think>",
};

}  // namespace

DetectedFormats detect_output_formats(std::string_view tpl, const std::vector<std::string>& added) {
  auto token = [&](std::string_view t) { return std::find(added.begin(), added.end(), t) != added.end(); };
  DetectedFormats d;
  if ((has(tpl, "<|channel|>") && has(tpl, "<|message|>")) || (token("<|channel|>") && token("<|message|>"))) {
    return {"harmony", "harmony"};
  }
  if (has(tpl, "<think>") || has(tpl, "</think>")) d.reasoning_parser = "think";
  else if (has(tpl, "[THINK]")) d.reasoning_parser = "mistral";

  if (has(tpl, "DSML")) {
    // DeepSeek V3.2 and later: an XML dialect kiln does not parse (their tokenizer still has the
    // V3 call tokens, so they must not decide).
    d.tool_parser = "";
  } else if (has(tpl, "tool▁calls▁begin")) {
    d.tool_parser = "deepseek_v3";
  } else if (has(tpl, "<function=") && has(tpl, "<parameter=")) {
    d.tool_parser = "qwen3_coder";
  } else if (has(tpl, "<function=")) {
    d.tool_parser = "";  // Functionary's <function=NAME>{json}</function>: not parsed
  } else if (has(tpl, "<arg_key>")) {
    d.tool_parser = "glm45";
  } else if (has(tpl, "<tool_call>")) {
    d.tool_parser = "hermes";
  } else if (has(tpl, "[TOOL_CALLS]")) {
    d.tool_parser = "mistral";
  } else if (has(tpl, "[func_name1(")) {
    d.tool_parser = "pythonic";  // Llama 3.2's pythonic template, Llama 4: "[func_name1(params_name1=...), ...]"
  } else if (has(tpl, "<|python_tag|>") ||
             (has(tpl, "<|start_header_id|>") && has(tpl, "\"parameters\"") && has(tpl, "tools"))) {
    d.tool_parser = "llama3";
  } else if (has(tpl, "tools")) {
    // The template shows tools but names no call syntax: the tokenizer's call token decides.
    if (token("<｜tool▁calls▁begin｜>")) d.tool_parser = "deepseek_v3";
    else if (token("<tool_call>")) d.tool_parser = "hermes";
    else if (token("[TOOL_CALLS]")) d.tool_parser = "mistral";
    else if (token("<|python_tag|>")) d.tool_parser = "llama3";
  }
  return d;
}

DetectedFormats detect_output_formats(std::string_view chat_template, const Tokenizer& tokenizer) {
  std::vector<std::string> added;
  for (std::string_view t : kTellingTokens) {
    if (tokenizer.token_to_id(t).has_value()) added.emplace_back(t);
  }
  return detect_output_formats(chat_template, added);
}

}  // namespace kiln::text
