// kiln chat-template: renders a model's chat template (`kiln chat-template --model DIR --messages
// FILE [--tools FILE] [--add-generation-prompt] [--kwargs JSON]`) and prints the prompt exactly,
// with no newline added. DIR needs only the tokenizer files. FILE may be "-" for stdin and holds
// a list of messages or an object with "messages" (and "tools"), such as a chat request body.
#include <cstdio>
#include <memory>
#include <string>

#include "command.h"
#include "kiln/core/file.h"
#include "kiln/core/str.h"
#include "kiln/text/chat_template.h"

namespace kiln::app {
namespace {

struct ChatTemplateArgs {
  std::string model_dir, messages_file, tools_file, kwargs_json;
  bool add_generation_prompt = false;
  long long now = -1;
};

int fail(const std::string& message) {
  std::fprintf(stderr, "kiln chat-template: %s\n", message.c_str());
  return 1;
}

Result<std::string> read_input(const std::string& path) {
  if (path != "-") return read_file(path);
  std::string text;
  char buf[65536];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, stdin)) > 0) text.append(buf, n);
  return text;
}

int run(const ChatTemplateArgs& a) {
  auto ct = text::ChatTemplate::load(a.model_dir);
  if (!ct.is_ok()) return fail(ct.status().to_string());
  for (const auto& w : ct->warnings()) std::fprintf(stderr, "kiln chat-template: note: %s\n", w.c_str());

  text::ChatTemplateInput in;
  auto messages_text = read_input(a.messages_file);
  if (!messages_text.is_ok()) return fail(messages_text.status().to_string());
  auto messages = text::jinja::value_from_json(*messages_text);
  if (!messages.is_ok()) return fail(str_cat("--messages ", a.messages_file, ": ", messages.status().message()));
  if (messages->is_dict()) {
    const auto* m = messages->dict_data().find("messages");
    if (!m) return fail("--messages: the object has no \"messages\" field");
    in.messages = *m;
    if (const auto* t = messages->dict_data().find("tools"); t && !t->is_none()) in.tools = *t;
  } else if (messages->is_list()) {
    in.messages = *messages;
  } else {
    return fail("--messages: expected a list of messages or an object with \"messages\"");
  }
  if (!a.tools_file.empty()) {
    auto tools_text = read_input(a.tools_file);
    if (!tools_text.is_ok()) return fail(tools_text.status().to_string());
    auto tools = text::jinja::value_from_json(*tools_text);
    if (!tools.is_ok()) return fail(str_cat("--tools ", a.tools_file, ": ", tools.status().message()));
    if (!tools->is_list()) return fail("--tools: expected a JSON list of tools");
    in.tools = *tools;
  }
  if (!a.kwargs_json.empty()) {
    auto kwargs = text::jinja::value_from_json(a.kwargs_json);
    if (!kwargs.is_ok() || !kwargs->is_dict()) return fail("--kwargs: expected a JSON object, e.g. '{\"enable_thinking\": false}'");
    for (const auto& [k, v] : kwargs->dict_data().items) in.kwargs.emplace_back(k.str(), v);
  }
  in.add_generation_prompt = a.add_generation_prompt;
  if (a.now >= 0) {
    auto now = static_cast<std::time_t>(a.now);
    in.now = [now] { return now; };
  }
  bool raised = false;
  auto out = ct->render(in, &raised);
  if (!out.is_ok()) {
    if (raised) return fail("the template raised an exception: " + out.status().message());
    return fail(out.status().to_string());
  }
  std::fwrite(out->data(), 1, out->size(), stdout);
  std::fflush(stdout);
  return 0;
}

}  // namespace

KILN_REGISTER_COMMAND(kChatTemplate, "chat-template", "Render a model's chat template for a conversation and print the prompt",
                      [](CLI::App& sub) -> std::function<int()> {
                        auto a = std::make_shared<ChatTemplateArgs>();
                        sub.add_option("--model", a->model_dir, "Model directory (tokenizer files are enough)")->required();
                        sub.add_option("--messages", a->messages_file,
                                       "JSON file ('-' for stdin): a list of messages, or an object with \"messages\"")
                            ->required();
                        sub.add_option("--tools", a->tools_file, "JSON file with a list of tools");
                        sub.add_flag("--add-generation-prompt", a->add_generation_prompt,
                                     "End with the header of the assistant's turn");
                        sub.add_option("--kwargs", a->kwargs_json,
                                       "Extra template variables as a JSON object, e.g. '{\"enable_thinking\": false}'");
                        sub.add_option("--now", a->now,
                                       "Seconds since the epoch for strftime_now (default: the current time)");
                        return [a] { return run(*a); };
                      });

}  // namespace kiln::app
