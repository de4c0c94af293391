// kiln chat-template: renders a model's chat template (`kiln chat-template --model DIR --messages
// FILE [--tools FILE] [--add-generation-prompt] [--kwargs JSON]`) and prints the prompt exactly,
// with no newline added. DIR needs only the tokenizer files. FILE may be "-" for stdin and holds
// a list of messages or an object with "messages" (and "tools"), such as a chat request body.
//
// `--batch` renders many conversations with one load of the template: each line of stdin is an
// object {"messages", "tools", "kwargs", "add_generation_prompt"} and each line of stdout the
// answer for it, {"output": PROMPT} or {"error": MESSAGE, "raised": BOOL}.
#include <cstdio>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "command.h"
#include "kiln/core/file.h"
#include "kiln/core/str.h"
#include "kiln/text/chat_template.h"

namespace kiln::app {
namespace {

using text::jinja::Value;

struct ChatTemplateArgs {
  std::string model_dir, messages_file, tools_file, kwargs_json;
  bool add_generation_prompt = false;
  bool batch = false;
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

Status set_messages(const Value& v, text::ChatTemplateInput& in) {
  if (v.is_list()) {
    in.messages = v;
    return Status::ok();
  }
  if (!v.is_dict()) return invalid_argument("expected a list of messages or an object with \"messages\"");
  const auto* m = v.dict_data().find("messages");
  if (!m) return invalid_argument("the object has no \"messages\" field");
  in.messages = *m;
  if (const auto* t = v.dict_data().find("tools"); t && !t->is_none()) {
    if (!t->is_list()) return invalid_argument("\"tools\" must be a list of tools");
    in.tools = *t;
  }
  return Status::ok();
}

Status set_kwargs(const Value& v, text::ChatTemplateInput& in) {
  if (!v.is_dict()) return invalid_argument("kwargs must be a JSON object, e.g. '{\"enable_thinking\": false}'");
  for (const auto& [k, x] : v.dict_data().items) in.kwargs.emplace_back(k.str(), x);
  return Status::ok();
}

void set_clock(long long now, text::ChatTemplateInput& in) {
  if (now < 0) return;
  auto t = static_cast<std::time_t>(now);
  in.now = [t] { return t; };
}

// One line of --batch: the request object in, the answer object out.
nlohmann::json render_line(const text::ChatTemplate& ct, const std::string& line, long long now) {
  auto request = text::jinja::value_from_json(line);
  if (!request.is_ok()) return {{"error", "bad input line: " + request.status().message()}, {"raised", false}};
  text::ChatTemplateInput in;
  Status st = set_messages(*request, in);
  const auto* fields = request->is_dict() ? &request->dict_data() : nullptr;
  if (st.is_ok() && fields) {
    if (const auto* k = fields->find("kwargs"); k && !k->is_none()) st = set_kwargs(*k, in);
    if (const auto* g = fields->find("add_generation_prompt"); g && g->is_bool()) in.add_generation_prompt = g->as_bool();
  }
  if (!st.is_ok()) return {{"error", st.message()}, {"raised", false}};
  set_clock(now, in);
  bool raised = false;
  auto out = ct.render(in, &raised);
  if (!out.is_ok()) return {{"error", out.status().message()}, {"raised", raised}};
  return {{"output", *out}};
}

int run_batch(const text::ChatTemplate& ct, long long now) {
  std::string line;
  while (std::getline(std::cin, line)) {
    if (line.empty()) continue;
    std::string answer = render_line(ct, line, now).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    std::fwrite(answer.data(), 1, answer.size(), stdout);
    std::fputc('\n', stdout);
    std::fflush(stdout);
  }
  return 0;
}

int run(const ChatTemplateArgs& a) {
  auto ct = text::ChatTemplate::load(a.model_dir);
  if (!ct.is_ok()) return fail(ct.status().to_string());
  for (const auto& w : ct->warnings()) std::fprintf(stderr, "kiln chat-template: note: %s\n", w.c_str());
  if (a.batch) return run_batch(*ct, a.now);
  if (a.messages_file.empty()) return fail("--messages is required (or --batch)");

  text::ChatTemplateInput in;
  auto messages_text = read_input(a.messages_file);
  if (!messages_text.is_ok()) return fail(messages_text.status().to_string());
  auto messages = text::jinja::value_from_json(*messages_text);
  if (!messages.is_ok()) return fail(str_cat("--messages ", a.messages_file, ": ", messages.status().message()));
  if (Status st = set_messages(*messages, in); !st.is_ok()) return fail("--messages: " + st.message());
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
    if (!kwargs.is_ok()) return fail("--kwargs: " + kwargs.status().message());
    if (Status st = set_kwargs(*kwargs, in); !st.is_ok()) return fail("--kwargs: " + st.message());
  }
  in.add_generation_prompt = a.add_generation_prompt;
  set_clock(a.now, in);
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
                                       "JSON file ('-' for stdin): a list of messages, or an object with \"messages\"");
                        sub.add_option("--tools", a->tools_file, "JSON file with a list of tools");
                        sub.add_flag("--add-generation-prompt", a->add_generation_prompt,
                                     "End with the header of the assistant's turn");
                        sub.add_option("--kwargs", a->kwargs_json,
                                       "Extra template variables as a JSON object, e.g. '{\"enable_thinking\": false}'");
                        sub.add_option("--now", a->now,
                                       "Seconds since the epoch for strftime_now (default: the current time)");
                        sub.add_flag("--batch", a->batch,
                                     "Render every JSON line of stdin ({\"messages\", \"tools\", \"kwargs\", "
                                     "\"add_generation_prompt\"}); print one JSON answer per line");
                        return [a] { return run(*a); };
                      });

}  // namespace kiln::app
