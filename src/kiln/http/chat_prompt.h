// Rendering a chat request's prompt with the model's template, with the history normalized for
// templates that differ in what they expect of tool calls (docs/tool-calling-api.md).
#pragma once

#include <string>

#include "kiln/http/openai_request.h"
#include "kiln/text/chat_template.h"

namespace kiln::http {

// The template input for `req` (messages, the tools when offered, add_generation_prompt, kwargs).
text::ChatTemplateInput chat_template_input(const ChatRequest& req);

// Renders `in`; when that fails (not by raise_exception) and the history has tool calls, renders
// again with each call's arguments as the client's JSON string, which some templates concatenate.
// On success `in` holds the input that rendered. `*raised` as ChatTemplate::render sets it.
Result<std::string> render_chat_prompt(const text::ChatTemplate& tmpl, const ChatRequest& req,
                                       text::ChatTemplateInput* in, bool* raised);

// continue_final_message: cuts `prompt` right after the last message's content, dropping the
// end-of-turn the template closed it with, as vLLM does. A 400 naming continue_final_message when
// the rendered prompt does not hold that content (a template that rewrites it).
Result<std::string> continue_final_message(std::string prompt, const ChatRequest& req);

}  // namespace kiln::http
