// POST /v1/embeddings: each input is one prefill-only request on the model's worker (pooled as
// the model's sentence-transformers config says), then cut to `dimensions` and normalised.
#include <memory>

#include "kiln/core/str.h"
#include "kiln/http/embeddings_api.h"
#include "kiln/http/handlers.h"
#include "kiln/http/model_acquire.h"
#include "kiln/http/prefill_outputs.h"
#include "kiln/http/prompt_tokens.h"
#include "kiln/serve/pooling.h"

namespace kiln::http {
namespace {

void run_embeddings(const ExchangePtr& ex, const EmbeddingsRequest& req, pool::ModelLease lease) {
  const model::ModelTask& task = lease.task();
  if (req.dimensions && *req.dimensions > lease.config().hidden_size) {
    return ex->respond_error(invalid_param("dimensions", str_cat("must be at most the model's ", lease.config().hidden_size,
                                                                 " dimensions, got ", *req.dimensions, ".")));
  }
  const int64_t vocab = lease.config().vocab_size, max_len = lease.max_model_len();
  std::vector<std::vector<int32_t>> prompts;
  prompts.reserve(req.inputs.size());
  for (size_t i = 0; i < req.inputs.size(); ++i) {
    const PromptInput& in = req.inputs[i];
    const std::string param = req.inputs.size() == 1 ? std::string("input") : str_cat("input[", i, "]");
    std::vector<int32_t> ids;
    if (in.is_tokens) {
      for (size_t k = 0; k < in.tokens.size(); ++k) {
        if (in.tokens[k] < 0 || in.tokens[k] >= vocab) {
          return ex->respond_error(invalid_param(param, str_cat("token id ", in.tokens[k], " at position ", k,
                                                               " is outside the vocabulary (", vocab, " tokens).")));
        }
        ids.push_back(static_cast<int32_t>(in.tokens[k]));
      }
    } else {
      // The tokenizer's post-processor adds what the model was trained with (Qwen3-Embedding's
      // trailing <|endoftext|>, whose hidden state last-token pooling reads).
      auto enc = tokenize_prompt(lease, in.text, /*add_special_tokens=*/true, /*chat=*/false);
      if (!enc.is_ok()) return ex->respond_error(api_error_from_status(enc.status(), param));
      ids = std::move(enc).value();
    }
    if (static_cast<int64_t>(ids.size()) > max_len) {
      return ex->respond_error(invalid_param(param, str_cat("This model's maximum context length is ", max_len,
                                                           " tokens. However, the input has ", ids.size(), " tokens."),
                                             "context_length_exceeded"));
    }
    if (ids.empty()) return ex->respond_error(invalid_param(param, "the input tokenizes to no tokens."));
    prompts.push_back(std::move(ids));
  }
  const serve::RequestOutput output =
      task.pooling == model::Pooling::kMean ? serve::RequestOutput::kMeanHidden : serve::RequestOutput::kLastHidden;
  const std::string model = lease.id();
  const bool base64 = req.base64, normalize = task.normalize;
  const std::optional<int64_t> dimensions = req.dimensions;
  run_prefill_outputs(ex, std::move(lease), std::move(prompts), output,
                      [ex, model, base64, normalize, dimensions](PrefillOutputs* r, std::optional<ApiError> error) {
    if (error) return ex->respond_error(*error);
    for (auto& v : r->outputs) {
      auto done = serve::finish_embedding(std::move(v), dimensions, normalize);
      if (!done.is_ok()) return ex->respond_error(api_error_from_status(done.status(), "dimensions"));
      v = std::move(done).value();
    }
    ex->respond({200, "application/json", {}, render_embeddings(r->outputs, base64, model, r->prompt_tokens)});
  });
}

}  // namespace

void handle_embeddings(const AppContext& ctx, const ExchangePtr& ex) {
  auto req = std::make_shared<EmbeddingsRequest>();
  if (auto e = parse_embeddings_request(ex->request().body, req.get())) return ex->respond_error(*e);
  ex->record().model = req->params.model;
  acquire_model(
      ctx, ex, req->params,
      [ex, req](Result<pool::ModelLease> lease) {
        if (!lease.is_ok()) {
          ApiError e = api_error_from_status(lease.status(), "model");
          if (e.status == 404) e.code = "model_not_found";
          return ex->respond_error(e);
        }
        run_embeddings(ex, *req, std::move(lease).value());
      },
      model::ModelKind::kEmbed);
}

}  // namespace kiln::http
