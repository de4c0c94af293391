#include "kiln/pool/model_loader.h"

#include "kiln/core/clock.h"
#include "kiln/core/log.h"
#include "kiln/core/str.h"

namespace kiln::pool {

Result<LoadResult> load_model_measured(const ModelLoadOptions& options, const LoadProgress& progress) {
  auto report = [&](std::string_view phase, double f) {
    if (progress) progress(phase, f);
  };
  auto m = std::make_shared<LoadedModel>();
  m->dir = options.dir;
  m->id = options.served_name.empty() ? options.dir.filename().string() : options.served_name;
  if (m->id.empty()) m->id = options.dir.parent_path().filename().string();
  m->owned_by = options.owned_by;
  m->description = options.description;
  m->created = unix_time_seconds();

  report("tokenizer", 0.0);
  KILN_ASSIGN_OR_RETURN(m->tokenizer, text::Tokenizer::load(options.dir));
  KILN_ASSIGN_OR_RETURN(m->generation, model::load_generation_config(options.dir));
  auto tmpl = text::ChatTemplate::load(options.dir);
  if (tmpl.is_ok()) {
    m->chat_template = std::move(tmpl).value();
  } else {
    m->chat_template_error = tmpl.status().message();
    log_warn("model ", m->id, ": no usable chat template (", m->chat_template_error,
             "); /v1/chat/completions will refuse it, /v1/completions works");
  }
  report("weights", 0.1);
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<runtime::Engine> engine, runtime::Engine::load(options.dir, options.engine));
  m->config = engine->config();
  LoadResult out;
  out.memory = engine->memory_usage();

  report("worker", 0.95);
  serve::EngineWorkerOptions w = options.worker;
  w.model_name = m->id;
  // The model's stop tokens: generation_config.json's, else config.json's, else the tokenizer's EOS.
  if (w.scheduler.eos_token_ids.empty()) w.scheduler.eos_token_ids = m->generation.eos_token_ids;
  if (w.scheduler.eos_token_ids.empty()) w.scheduler.eos_token_ids = m->config.eos_token_ids;
  if (w.scheduler.eos_token_ids.empty() && m->tokenizer->special_tokens().eos_id) {
    w.scheduler.eos_token_ids.push_back(*m->tokenizer->special_tokens().eos_id);
  }
  KILN_ASSIGN_OR_RETURN(m->worker, serve::EngineWorker::start(std::move(engine), std::move(w)));
  m->max_model_len = m->worker->max_len();
  report("worker", 1.0);
  out.model = std::move(m);
  return out;
}

}  // namespace kiln::pool
