#include "kiln/http/chat_prompt.h"

#include <cctype>

namespace kiln::http {

text::ChatTemplateInput chat_template_input(const ChatRequest& req) {
  text::ChatTemplateInput in;
  in.messages = req.messages;
  in.tools = req.tools;
  in.add_generation_prompt = req.add_generation_prompt;
  in.kwargs = req.template_kwargs;
  return in;
}

Result<std::string> continue_final_message(std::string prompt, const ChatRequest& req) {
  std::string_view content = req.last_content;
  // Templates often strip the message's surrounding whitespace; look for the stripped text too.
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (!content.empty()) {
      const size_t at = prompt.rfind(content);
      if (at != std::string::npos) {
        prompt.resize(at + content.size());
        return prompt;
      }
    }
    while (!content.empty() && std::isspace(static_cast<unsigned char>(content.front()))) content.remove_prefix(1);
    while (!content.empty() && std::isspace(static_cast<unsigned char>(content.back()))) content.remove_suffix(1);
  }
  return invalid_argument(
             "continue_final_message: the chat template does not show the last message's text as given (it needs "
             "non-empty string content that the template keeps), so it cannot be continued.")
      .with_param("continue_final_message");
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
