// POST /v1/chat/completions: parse, find the model, render its chat template, tokenize, generate.
#include <memory>

#include "kiln/core/str.h"
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

void continue_chat(const AppContext& ctx, const ExchangePtr& ex, ChatRequest& req, pool::ModelLease lease) {
  const text::ChatTemplate* tmpl = lease.chat_template();
  if (tmpl == nullptr) {
    return ex->respond_error(invalid_param(
        "model", str_cat("the model `", lease.id(), "` has no chat template (",
                         client_facing_message(lease.chat_template_error(), lease.id()),
                         "); use /v1/completions with a prompt instead."),
        "chat_template_missing"));
  }
  text::ChatTemplateInput in;
  in.messages = req.messages;
  in.tools = req.tools;
  in.add_generation_prompt = req.add_generation_prompt;
  in.kwargs = req.template_kwargs;
  bool raised = false;
  auto rendered = tmpl->render(in, &raised);
  if (!rendered.is_ok()) {
    // raise_exception(msg) is the template refusing this conversation: its message goes back as is.
    std::string msg = raised ? rendered.status().message()
                             : str_cat("The chat template failed on these messages: ", rendered.status().message());
    ApiError e = invalid_param("messages", "x");
    e.message = msg;
    e.code = raised ? "chat_template_rejected" : "chat_template_error";
    return ex->respond_error(e);
  }
  auto ids = tokenize_prompt(lease, *rendered, /*add_special_tokens=*/false, /*chat=*/true);
  if (!ids.is_ok()) return ex->respond_error(api_error_from_status(ids.status(), "messages"));
  GenerationPlan plan;
  plan.api = &chat_renderer();
  plan.default_max_tokens = ctx.options->default_max_tokens;
  plan.lease = std::move(lease);
  plan.params = std::move(req.params);
  plan.prompts.push_back(std::move(ids).value());
  plan.meta.id = make_completion_id("chatcmpl-");
  run_generation(ctx, ex, std::move(plan));
}

}  // namespace

void handle_chat_completions(const AppContext& ctx, const ExchangePtr& ex) {
  auto req = std::make_shared<ChatRequest>();
  if (auto e = parse_chat_request(ex->request().body, req.get())) return ex->respond_error(*e);
  ex->record().model = req->params.model;
  ex->record().stream = req->params.stream;
  const AppContext* c = &ctx;
  acquire_model(ctx, ex, req->params, [c, ex, req](Result<pool::ModelLease> lease) {
    if (!lease.is_ok()) return respond_model_error(ex, lease.status());
    continue_chat(*c, ex, *req, std::move(lease).value());
  });
}

}  // namespace kiln::http
