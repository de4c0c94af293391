// POST /v1/chat/completions, and the conversation pipeline the other chat-like APIs share
// (chat_handler.h): find the model, render its chat template, tokenize, generate.
#include <memory>

#include "kiln/core/str.h"
#include "kiln/http/chat_handler.h"
#include "kiln/http/chat_prompt.h"
#include "kiln/http/generation.h"
#include "kiln/http/handlers.h"
#include "kiln/http/model_acquire.h"
#include "kiln/http/prompt_tokens.h"

namespace kiln::http {

namespace {

void respond_model_error(const ExchangePtr& ex, const Status& s) {
  ApiError e = api_error_from_status(s, "model");
  if (e.status == 404) e.code = "model_not_found";
  ex->respond_error(e);
}

bool has_kwarg(const ChatRequest& req, std::string_view name) {
  for (const auto& [k, v] : req.template_kwargs) {
    if (k == name) return true;
  }
  return false;
}

// reasoning_effort reaches the template under the names templates read: gpt-oss reads
// `reasoning_effort`; Qwen3-style templates read `enable_thinking`, which "none" turns off.
// chat_template_kwargs, when they set either, win.
void apply_reasoning_effort(ChatRequest& req) {
  if (req.reasoning_effort.empty()) return;
  if (!has_kwarg(req, "reasoning_effort")) req.template_kwargs.emplace_back("reasoning_effort", text::jinja::Value(req.reasoning_effort));
  if (req.reasoning_effort == "none" && !has_kwarg(req, "enable_thinking")) {
    req.template_kwargs.emplace_back("enable_thinking", text::jinja::Value(false));
  }
}

// The rendered conversation and its tokens.
struct ChatPrompt {
  std::string text;
  std::vector<int32_t> ids;
};

// Renders and tokenizes `req` for the model; the error to answer otherwise.
std::optional<ApiError> build_prompt(ChatRequest& req, const pool::ModelLease& lease, ChatPrompt* out) {
  const text::ChatTemplate* tmpl = lease.chat_template();
  if (tmpl == nullptr) {
    return invalid_param(
        "model", str_cat("the model `", lease.id(), "` has no chat template (",
                         client_facing_message(lease.chat_template_error(), lease.id()),
                         "); use /v1/completions with a prompt instead."),
        "chat_template_missing");
  }
  apply_reasoning_effort(req);
  text::ChatTemplateInput in = chat_template_input(req);
  bool raised = false;
  auto rendered = render_chat_prompt(*tmpl, req, &in, &raised);
  if (!rendered.is_ok()) {
    // raise_exception(msg) is the template refusing this conversation: its message goes back as is.
    std::string msg = raised ? rendered.status().message()
                             : str_cat("The chat template failed on these messages: ", rendered.status().message());
    ApiError e = invalid_param("messages", "x");
    e.message = msg;
    e.code = raised ? "chat_template_rejected" : "chat_template_error";
    return e;
  }
  if (req.continue_final_message) {
    auto cut = continue_final_message(std::move(rendered).value(), req);
    if (!cut.is_ok()) return api_error_from_status(cut.status(), "continue_final_message");
    rendered = std::move(cut);
  }
  const text::DetectedFormats& formats = lease.output_formats();
  if (req.tool.offered() && formats.tool_parser.empty()) {
    // A template that renders the same prompt with and without tools cannot show them to the
    // model; with no parser for its calls either, tools would be dropped without a word.
    text::ChatTemplateInput plain = in;
    plain.tools = text::jinja::Value(nullptr);
    auto without = tmpl->render(plain);
    if (without.is_ok() && *without == *rendered) {
      return invalid_param(
          "tools", str_cat("the model `", lease.id(), "` cannot use tools: its chat template does not show them to the "
                           "model and kiln knows no tool-call format for it (set tool_parser for this model if it has one)."),
          "tools_unsupported");
    }
  }
  auto ids = tokenize_prompt(lease, *rendered, /*add_special_tokens=*/false, /*chat=*/true);
  if (!ids.is_ok()) return api_error_from_status(ids.status(), "messages");
  out->text = std::move(rendered).value();
  out->ids = std::move(ids).value();
  return std::nullopt;
}

void continue_chat(const AppContext& ctx, const ExchangePtr& ex, ChatRequest& req, pool::ModelLease lease,
                   const ResponseRenderer& api, std::shared_ptr<const ResponseRenderer> owner, const char* id_prefix) {
  ChatPrompt prompt;
  if (auto e = build_prompt(req, lease, &prompt)) return ex->respond_error(*e);
  const text::DetectedFormats& formats = lease.output_formats();
  GenerationPlan plan;
  plan.api = &api;
  plan.api_owner = std::move(owner);
  plan.default_max_tokens = ctx.options->default_max_tokens;
  plan.lease = std::move(lease);
  plan.params = std::move(req.params);
  plan.prompts.push_back(std::move(prompt.ids));
  plan.meta.id = make_completion_id(id_prefix);
  const bool parse_tools = req.tool.offered() && !formats.tool_parser.empty();
  if (parse_tools || !formats.reasoning_parser.empty()) {
    text::OutputParserOptions po;
    po.tool_parser = formats.tool_parser;
    po.reasoning_parser = formats.reasoning_parser;
    po.tools_offered = parse_tools;
    // Templates that open the reasoning block themselves (DeepSeek-R1's): the output starts in it.
    po.reasoning_open_at_start = text::prompt_opens_reasoning(prompt.text, formats.reasoning_parser);
    plan.parser = po;
  }
  plan.parallel_tool_calls = req.tool.parallel_tool_calls;
  plan.tool_constraint = tool_constraint(req.tool, formats.tool_parser);
  if (plan.parser && plan.parser->reasoning_open_at_start) {
    // The prompt left a reasoning block open: a forced call closes it first, else the parser
    // would read the call as reasoning.
    plan.tool_constraint.prefix = str_cat(text::reasoning_close_marker(formats.reasoning_parser), "\n\n");
  }
  resolve_tool_markers(&plan.tool_constraint, plan.lease.chat_template()->source(), plan.lease.tokenizer(),
                       *plan.lease.token_vocabulary());
  run_generation(ctx, ex, std::move(plan));
}

}  // namespace

void serve_chat(const AppContext& ctx, const ExchangePtr& ex, std::shared_ptr<ChatRequest> req,
                std::shared_ptr<const ResponseRenderer> api, const char* id_prefix) {
  ex->record().model = req->params.model;
  ex->record().stream = req->params.stream;
  const AppContext* c = &ctx;
  acquire_model(ctx, ex, req->params, [c, ex, req, api, id_prefix](Result<pool::ModelLease> lease) {
    if (!lease.is_ok()) return respond_model_error(ex, lease.status());
    continue_chat(*c, ex, *req, std::move(lease).value(), *api, api, id_prefix);
  });
}

void serve_chat(const AppContext& ctx, const ExchangePtr& ex, std::shared_ptr<ChatRequest> req,
                const ResponseRenderer& api, const char* id_prefix) {
  // The shared renderers are static: an owner that owns nothing.
  serve_chat(ctx, ex, std::move(req), std::shared_ptr<const ResponseRenderer>(std::shared_ptr<void>(), &api), id_prefix);
}

void count_chat_tokens(const AppContext& ctx, const ExchangePtr& ex, std::shared_ptr<ChatRequest> req,
                       std::function<void(int64_t tokens)> counted) {
  ex->record().model = req->params.model;
  acquire_model(ctx, ex, req->params, [ex, req, counted = std::move(counted)](Result<pool::ModelLease> lease) {
    if (!lease.is_ok()) return respond_model_error(ex, lease.status());
    ChatPrompt prompt;
    if (auto e = build_prompt(*req, lease.value(), &prompt)) return ex->respond_error(*e);
    ex->record().prompt_tokens = static_cast<int64_t>(prompt.ids.size());
    counted(static_cast<int64_t>(prompt.ids.size()));
  });
}

void handle_chat_completions(const AppContext& ctx, const ExchangePtr& ex) {
  auto req = std::make_shared<ChatRequest>();
  if (auto e = parse_chat_request(ex->request().body, req.get())) return ex->respond_error(*e);
  serve_chat(ctx, ex, std::move(req), chat_renderer(), "chatcmpl-");
}

}  // namespace kiln::http
