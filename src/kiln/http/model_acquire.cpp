#include "kiln/http/model_acquire.h"

#include <memory>

#include "kiln/core/str.h"
#include "kiln/http/sse.h"

namespace kiln::http {

namespace {

struct Wait {
  bool answered = false;  // on the strand only
};

void keep_alive_while_loading(const AppContext& ctx, const ExchangePtr& ex, std::shared_ptr<Wait> wait) {
  ex->post_after(ctx.options->sse_keepalive, [&ctx, ex, wait] {
    if (wait->answered || ex->finished()) return;
    ex->start_stream();
    ex->send(sse_comment("loading model"));
    keep_alive_while_loading(ctx, ex, wait);
  });
}

bool before_path(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\'' || c == '"' || c == '`' || c == '(' || c == '[' || c == '=' ||
         c == ',';
}
bool ends_path(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\'' || c == '"' || c == '`' || c == '(' || c == ')' || c == '[' ||
         c == ']' || c == ',' || c == ';' || c == ':';
}

// Copies `text` with each absolute path cut to its last component; `after_text`: `text` follows
// other text directly (its first character is not at a boundary).
void append_without_paths(std::string& out, std::string_view text, bool after_text) {
  for (size_t i = 0; i < text.size();) {
    const bool at_boundary = i == 0 ? !after_text : before_path(text[i - 1]);
    if (text[i] == '/' && at_boundary && (i + 1 == text.size() || text[i + 1] != '/')) {
      size_t end = i, last = i + 1;
      while (end < text.size() && !ends_path(text[end])) {
        if (text[end] == '/') last = end + 1;
        ++end;
      }
      out.append(text.substr(last, end - last));
      i = end;
      continue;
    }
    out += text[i++];
  }
}

}  // namespace

std::string client_facing_message(std::string_view message, std::string_view requested, std::string_view model_dir) {
  std::string text(message);
  while (model_dir.size() > 1 && model_dir.back() == '/') model_dir.remove_suffix(1);
  if (model_dir.size() > 1) {
    for (size_t at = text.find(model_dir); at != std::string::npos; at = text.find(model_dir, at + requested.size())) {
      text.replace(at, model_dir.size(), requested);
    }
  }
  std::string out;
  const std::string quoted = echo_value(requested);
  size_t from = 0;
  while (!requested.empty()) {
    const size_t at = text.find(requested, from);
    if (at == std::string::npos) break;
    append_without_paths(out, std::string_view(text).substr(from, at - from), from > 0);
    out += quoted;
    from = at + requested.size();
  }
  append_without_paths(out, std::string_view(text).substr(from), from > 0);
  return out;
}

Status wrong_model_kind(std::string_view requested, model::ModelKind has) {
  auto serves = [](model::ModelKind k) -> std::string_view {
    switch (k) {
      case model::ModelKind::kEmbed: return "an embedding model: it serves /v1/embeddings only";
      case model::ModelKind::kRerank: return "a reranker: it serves /v1/rerank and /v1/score only";
      case model::ModelKind::kGenerate: break;
    }
    return "a text generation model: it serves /v1/chat/completions and /v1/completions, not this endpoint";
  };
  return invalid_argument(str_cat("The model ", echo_value(requested), " is ", serves(has), "."))
      .with_param("model");
}

void acquire_model(const AppContext& ctx, const ExchangePtr& ex, const GenerationParams& params,
                   std::function<void(Result<pool::ModelLease>)> then, model::ModelKind kind) {
  // A model the registry already knows to be of another kind is refused before it is loaded.
  for (const pool::ModelInfo& m : ctx.pool->list()) {
    if (m.id == params.model && m.kind != kind) return then(wrong_model_kind(params.model, m.kind));
  }
  auto wait = std::make_shared<Wait>();
  pool::AcquireOptions options;
  if (params.keep_alive_ms) options.keep_alive = pool::Millis(*params.keep_alive_ms);
  pool::ModelPool* pool = ctx.pool;
  std::string requested = params.model;
  ctx.pool->acquire(params.model, options,
                    [pool, ex, wait, requested, kind, then = std::move(then)](Result<pool::ModelLease> lease) mutable {
    ex->post([pool, wait, requested, kind, then = std::move(then), lease = std::move(lease)]() mutable {
      wait->answered = true;
      if (!lease.is_ok()) {
        // On the strand, not in the pool's callback: model_status() takes the pool's lock.
        auto st = pool->model_status(requested);
        std::string dir = st ? st->dir : std::string();
        return then(Status(lease.status().code(), client_facing_message(lease.status().message(), requested, dir)));
      }
      if (lease->task().kind != kind) return then(wrong_model_kind(requested, lease->task().kind));
      then(std::move(lease));
    });
  });
  if (params.stream) keep_alive_while_loading(ctx, ex, wait);
}

}  // namespace kiln::http
