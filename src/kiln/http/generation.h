// Runs a validated generation request on a model's engine worker and answers it: one response
// with every choice, or an OpenAI event stream. Shared by chat and completions.
//
// Threading: everything here runs on the exchange's strand. The worker wakes it through the
// token streams' notify callbacks, which post to the strand (never polling); a client that goes
// away cancels the request's sequences, which the worker frees at its next step.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kiln/http/app.h"
#include "kiln/http/openai_request.h"
#include "kiln/http/openai_response.h"
#include "kiln/pool/model_pool.h"
#include "kiln/text/output_parser.h"

namespace kiln::http {

struct GenerationPlan {
  const ResponseRenderer* api = &chat_renderer();  // chat or completions: how answers look
  std::shared_ptr<const ResponseRenderer> api_owner;  // keeps a per-request renderer alive
  pool::ModelLease lease;
  GenerationParams params;
  // Tokens per choice when the request gives no max_tokens (0: the rest of the context); either
  // way no more than the context leaves after the prompt.
  int64_t default_max_tokens = 0;
  std::vector<std::vector<int32_t>> prompts;  // completions may have several; each gets n choices
  std::vector<std::string> echo;              // completions with echo: each prompt's text
  ResponseMeta meta;
  // Chat: each choice's output goes through an output parser into content, reasoning and tool
  // calls (docs/tool-calling-api.md). Absent: the text is the content, as for completions.
  std::optional<text::OutputParserOptions> parser;
  bool parallel_tool_calls = true;  // false: a choice ends when its first tool call does
  // What tool_choice asks the grammar engine to enforce (tool_request.h): a forced call is the
  // answer's grammar (run_generation).
  ToolConstraint tool_constraint;
};

// Checks the plan against the model (context length, token ids, logit bias), submits it and
// answers `ex` as it runs. Errors become the right HTTP error (or a last SSE event).
void run_generation(const AppContext& ctx, const ExchangePtr& ex, GenerationPlan plan);

}  // namespace kiln::http
