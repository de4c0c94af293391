#include "kiln/http/chat_prompt.h"

namespace kiln::http {

text::ChatTemplateInput chat_template_input(const ChatRequest& req) {
  text::ChatTemplateInput in;
  in.messages = req.messages;
  in.tools = req.tools;
  in.add_generation_prompt = req.add_generation_prompt;
  in.kwargs = req.template_kwargs;
  return in;
}

Result<std::string> render_chat_prompt(const text::ChatTemplate& tmpl, const ChatRequest& req,
                                       text::ChatTemplateInput* in, bool* raised) {
  auto rendered = tmpl.render(*in, raised);
  if (rendered.is_ok() || *raised || req.messages_text_arguments.is_none()) return rendered;
  text::ChatTemplateInput retry = *in;
  retry.messages = req.messages_text_arguments;
  bool raised_again = false;
  auto second = tmpl.render(retry, &raised_again);
  if (!second.is_ok()) return rendered;  // the first error says more about the conversation
  *in = std::move(retry);
  return second;
}

}  // namespace kiln::http
