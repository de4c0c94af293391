// POST /v1/completions: prompts as text or token ids, `echo`, then the shared generation path.
#include <memory>

#include "kiln/core/str.h"
#include "kiln/http/generation.h"
#include "kiln/http/handlers.h"
#include "kiln/http/model_acquire.h"
#include "kiln/http/prompt_tokens.h"

namespace kiln::http {

namespace {

void continue_completion(const AppContext& ctx, const ExchangePtr& ex, CompletionRequest& req, pool::ModelLease lease) {
  GenerationPlan plan;
  plan.api = &completion_renderer();
  plan.default_max_tokens = kCompletionsDefaultMaxTokens;
  const int64_t vocab = lease.config().vocab_size;
  for (size_t i = 0; i < req.prompts.size(); ++i) {
    const PromptInput& p = req.prompts[i];
    std::string param = req.prompts.size() == 1 ? "prompt" : str_cat("prompt[", i, "]");
    std::vector<int32_t> ids;
    if (p.is_tokens) {
      for (size_t k = 0; k < p.tokens.size(); ++k) {
        if (p.tokens[k] < 0 || p.tokens[k] >= vocab) {
          return ex->respond_error(invalid_param(param, str_cat("token id ", p.tokens[k], " at position ", k,
                                                               " is outside the vocabulary (", vocab, " tokens).")));
        }
        ids.push_back(static_cast<int32_t>(p.tokens[k]));
      }
      if (req.echo) plan.echo.push_back(lease.tokenizer().decode(ids, /*skip_special_tokens=*/false));
    } else {
      auto enc = tokenize_prompt(lease, p.text, /*add_special_tokens=*/true, /*chat=*/false);
      if (!enc.is_ok()) return ex->respond_error(api_error_from_status(enc.status(), param));
      ids = std::move(enc).value();
      if (req.echo) plan.echo.push_back(p.text);
    }
    plan.prompts.push_back(std::move(ids));
  }
  plan.lease = std::move(lease);
  plan.params = std::move(req.params);
  plan.meta.id = make_completion_id("cmpl-");
  run_generation(ctx, ex, std::move(plan));
}

}  // namespace

void handle_completions(const AppContext& ctx, const ExchangePtr& ex) {
  auto req = std::make_shared<CompletionRequest>();
  if (auto e = parse_completion_request(ex->request().body, req.get())) return ex->respond_error(*e);
  ex->record().model = req->params.model;
  ex->record().stream = req->params.stream;
  const AppContext* c = &ctx;
  acquire_model(ctx, ex, req->params, [c, ex, req](Result<pool::ModelLease> lease) {
    if (!lease.is_ok()) {
      ApiError e = api_error_from_status(lease.status(), "model");
      if (e.status == 404) e.code = "model_not_found";
      return ex->respond_error(e);
    }
    continue_completion(*c, ex, *req, std::move(lease).value());
  });
}

}  // namespace kiln::http
