// The chat template of a model, as transformers' apply_chat_template renders it: loaded from the
// model directory (chat_template.jinja, or tokenizer_config.json's `chat_template`, a string or a
// list of named templates), rendered with messages, tools, add_generation_prompt, the tokenizer's
// special tokens and extra template kwargs (enable_thinking, ...).
//
// Inputs are kiln's plain jinja::Value (not JSON): the HTTP layer builds them from its parsed
// request; jinja::value_from_json serves the CLI and tests.
#pragma once

#include <ctime>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "kiln/core/status.h"
#include "kiln/text/jinja/template.h"
#include "kiln/text/jinja/value.h"

namespace kiln::text {

struct ChatTemplateInput {
  jinja::Value messages = jinja::Value::list({});  // list of message dicts
  jinja::Value tools = jinja::Value(nullptr);       // list of tool dicts, or None when absent
  bool add_generation_prompt = false;
  // Extra template variables (enable_thinking, reasoning_effort, ...); they override the special
  // tokens of the same name, as transformers' template kwargs do.
  std::vector<std::pair<std::string, jinja::Value>> kwargs;
  // strftime_now's clock; the system clock when empty.
  std::function<std::time_t()> now;
};

class ChatTemplate {
 public:
  // Reads DIR/chat_template.jinja when present, else DIR/tokenizer_config.json's chat_template;
  // special tokens come from tokenizer_config.json (or special_tokens_map.json).
  static Result<ChatTemplate> load(const std::filesystem::path& model_dir);
  // From the text of a tokenizer_config.json.
  static Result<ChatTemplate> from_tokenizer_config(std::string_view json_text);
  // One template source with the given special tokens (bos_token, eos_token, ...).
  static Result<ChatTemplate> from_source(std::string_view source,
                                          std::vector<std::pair<std::string, jinja::Value>> special_tokens = {});

  // Renders the prompt. When tools are given and the model has a "tool_use" template it is used,
  // else "default" (transformers' choice). raise_exception(msg) in the template comes back as
  // kInvalidArgument with exactly msg (`*raised` set when given), for a 400 to the client.
  Result<std::string> render(const ChatTemplateInput& input, bool* raised = nullptr) const;

  bool has_tool_use_template() const { return templates_.count("tool_use") != 0; }
  std::vector<std::string> template_names() const;
  // The special tokens passed to the template, in order (name, text).
  const std::vector<std::pair<std::string, jinja::Value>>& special_tokens() const { return special_tokens_; }
  const std::string& source(const std::string& name = "default") const;
  // Load-time notes worth logging: filters or tests kiln (like Python jinja2) lacks, used in
  // branches that fail only when they run ("default: line 90: no filter named 'from_json'").
  std::vector<std::string> warnings() const;

 private:
  std::map<std::string, jinja::Template> templates_;
  std::map<std::string, std::string> sources_;
  std::vector<std::pair<std::string, jinja::Value>> special_tokens_;
};

}  // namespace kiln::text
