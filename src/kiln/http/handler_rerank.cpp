// POST /v1/rerank and POST /v1/score: each (query, document) pair becomes the reranker's prompt,
// runs as one prefill-only request returning the logits after it, and scores P(yes) from the
// model's two classifier tokens (docs/embeddings.md).
#include <memory>

#include "kiln/core/str.h"
#include "kiln/http/handlers.h"
#include "kiln/http/model_acquire.h"
#include "kiln/http/prefill_outputs.h"
#include "kiln/http/prompt_tokens.h"
#include "kiln/http/rerank_api.h"
#include "kiln/serve/pooling.h"

namespace kiln::http {
namespace {

// The Qwen3-Reranker prompt, as its model card builds it: a fixed system turn, the instruction,
// query and document in the user turn, and an empty thinking block before the answer, whose
// first token is "yes" or "no".
constexpr std::string_view kPrefix =
    "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the Instruct "
    "provided. Note that the answer can only be \"yes\" or \"no\".<|im_end|>\n<|im_start|>user\n";
constexpr std::string_view kSuffix = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n";
constexpr std::string_view kDefaultInstruction =
    "Given a web search query, retrieve relevant passages that answer the query";

using ScoresDone = std::function<void(std::vector<double> scores, int64_t prompt_tokens)>;

// Tokenizes every pair (prefix, body and suffix apart, as the model card does), runs them and
// calls `done` with P(yes) per pair; answers `ex` itself on any error. `param_of(i)` names pair
// i's field in errors.
void score_pairs(const ExchangePtr& ex, pool::ModelLease lease, const std::vector<ScorePair>& pairs,
                 std::string instruction, const std::function<std::string(size_t)>& param_of, ScoresDone done) {
  const model::ModelTask& task = lease.task();
  const text::Tokenizer& tok = lease.tokenizer();
  const std::optional<int32_t> yes = tok.token_to_id(task.yes_token), no = tok.token_to_id(task.no_token);
  if (!yes || !no) {
    return ex->respond_error(error_with_status(
        500, str_cat("The reranker's tokenizer has no single token for ", echo_value(!yes ? task.yes_token : task.no_token),
                     ": its classifier_from_token does not match its vocabulary.")));
  }
  if (instruction.empty()) instruction = kDefaultInstruction;
  auto prefix = tokenize_prompt(lease, kPrefix, false, false);
  auto suffix = tokenize_prompt(lease, kSuffix, false, false);
  if (!prefix.is_ok() || !suffix.is_ok()) {
    return ex->respond_error(api_error_from_status(!prefix.is_ok() ? prefix.status() : suffix.status()));
  }
  const int64_t max_len = lease.max_model_len();
  std::vector<std::vector<int32_t>> prompts;
  prompts.reserve(pairs.size());
  for (size_t i = 0; i < pairs.size(); ++i) {
    const std::string body =
        str_cat("<Instruct>: ", instruction, "\n<Query>: ", pairs[i].query, "\n<Document>: ", pairs[i].document);
    auto ids = tokenize_prompt(lease, body, false, false);
    if (!ids.is_ok()) return ex->respond_error(api_error_from_status(ids.status(), param_of(i)));
    std::vector<int32_t> p = *prefix;
    p.insert(p.end(), ids->begin(), ids->end());
    p.insert(p.end(), suffix->begin(), suffix->end());
    if (static_cast<int64_t>(p.size()) > max_len) {
      return ex->respond_error(invalid_param(param_of(i), str_cat("This model's maximum context length is ", max_len,
                                                                 " tokens. However, the query and this document make ",
                                                                 p.size(), " tokens with the reranker's prompt."),
                                             "context_length_exceeded"));
    }
    prompts.push_back(std::move(p));
  }
  const int32_t yes_id = *yes, no_id = *no;
  run_prefill_outputs(ex, std::move(lease), std::move(prompts), serve::RequestOutput::kLastLogits,
                      [ex, yes_id, no_id, done = std::move(done)](PrefillOutputs* r, std::optional<ApiError> error) {
    if (error) return ex->respond_error(*error);
    std::vector<double> scores;
    scores.reserve(r->outputs.size());
    for (const auto& logits : r->outputs) {
      auto p = serve::yes_probability(logits, yes_id, no_id);
      if (!p.is_ok()) return ex->respond_error(api_error_from_status(p.status()));
      scores.push_back(*p);
    }
    done(std::move(scores), r->prompt_tokens);
  });
}

// Acquires a reranker and runs `then` with its lease; answers errors itself.
void with_reranker(const AppContext& ctx, const ExchangePtr& ex, const GenerationParams& params,
                   std::function<void(pool::ModelLease)> then) {
  acquire_model(
      ctx, ex, params,
      [ex, then = std::move(then)](Result<pool::ModelLease> lease) {
        if (!lease.is_ok()) {
          ApiError e = api_error_from_status(lease.status(), "model");
          if (e.status == 404) e.code = "model_not_found";
          return ex->respond_error(e);
        }
        then(std::move(lease).value());
      },
      model::ModelKind::kRerank);
}

}  // namespace

void handle_rerank(const AppContext& ctx, const ExchangePtr& ex) {
  auto req = std::make_shared<RerankRequest>();
  if (auto e = parse_rerank_request(ex->request().body, req.get())) return ex->respond_error(*e);
  ex->record().model = req->params.model;
  with_reranker(ctx, ex, req->params, [ex, req](pool::ModelLease lease) {
    std::vector<ScorePair> pairs;
    pairs.reserve(req->documents.size());
    for (const auto& d : req->documents) pairs.push_back({req->query, d});
    const std::string model = lease.id();
    score_pairs(ex, std::move(lease), pairs, req->instruction,
                [](size_t i) { return str_cat("documents[", i, "]"); },
                [ex, req, model](std::vector<double> scores, int64_t tokens) {
      ex->respond({200, "application/json", {}, render_rerank(*req, scores, model, tokens)});
    });
  });
}

void handle_score(const AppContext& ctx, const ExchangePtr& ex) {
  auto req = std::make_shared<ScoreRequest>();
  if (auto e = parse_score_request(ex->request().body, req.get())) return ex->respond_error(*e);
  ex->record().model = req->params.model;
  with_reranker(ctx, ex, req->params, [ex, req](pool::ModelLease lease) {
    const std::string model = lease.id();
    score_pairs(ex, std::move(lease), req->pairs, req->instruction,
                [](size_t i) { return str_cat("text_2[", i, "]"); },
                [ex, model](std::vector<double> scores, int64_t tokens) {
      ex->respond({200, "application/json", {}, render_score(scores, model, tokens)});
    });
  });
}

}  // namespace kiln::http
