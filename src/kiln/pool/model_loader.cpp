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
  m->store_bodies = options.store_bodies;
  m->created = unix_time_seconds();

  KILN_ASSIGN_OR_RETURN(m->task, model::load_model_task(options.dir));
  if (options.kind && *options.kind != m->task.kind) {
    m->task.kind = *options.kind;
    m->task.pooling = model::Pooling::kLastToken;
    m->task.normalize = true;
  }
  report("tokenizer", 0.0);
  KILN_ASSIGN_OR_RETURN(m->tokenizer, text::Tokenizer::load(options.dir));
  KILN_ASSIGN_OR_RETURN(m->generation, model::load_generation_config(options.dir));
  auto tmpl = text::ChatTemplate::load(options.dir);
  if (tmpl.is_ok()) {
    m->chat_template = std::move(tmpl).value();
  } else if (m->task.kind == model::ModelKind::kGenerate) {
    m->chat_template_error = tmpl.status().message();
    log_warn("model ", m->id, ": no usable chat template (", m->chat_template_error,
             "); /v1/chat/completions will refuse it, /v1/completions works");
  }
  // Parsers: the configured ones ("none" turns one off), else what the template and tokenizer show.
  if (m->chat_template) {
    m->output_formats = text::detect_output_formats(m->chat_template->source(), *m->tokenizer);
  }
  if (!options.tool_parser.empty()) m->output_formats.tool_parser = options.tool_parser;
  if (!options.reasoning_parser.empty()) m->output_formats.reasoning_parser = options.reasoning_parser;
  if (m->output_formats.tool_parser == "none") m->output_formats.tool_parser.clear();
  if (m->output_formats.reasoning_parser == "none") m->output_formats.reasoning_parser.clear();
  if (!m->output_formats.tool_parser.empty() || !m->output_formats.reasoning_parser.empty()) {
    log_info("model ", m->id, ": tool parser ", m->output_formats.tool_parser.empty() ? "none" : m->output_formats.tool_parser,
             ", reasoning parser ",
             m->output_formats.reasoning_parser.empty() ? "none" : m->output_formats.reasoning_parser);
  }
  report("weights", 0.1);
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<runtime::Engine> engine, runtime::Engine::load(options.dir, options.engine));
  m->config = engine->config();
  m->device = engine->device_name();
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

void register_model_metrics(metrics::Registry& registry, const std::shared_ptr<LoadedModel>& model) {
  const metrics::Labels labels = {{"model", model->id}};
  std::weak_ptr<LoadedModel> weak = model;
  auto series = [&](bool counter, const char* name, const char* help, int64_t serve::WorkerCounters::*field) {
    auto read = [weak, field]() -> double {
      auto m = weak.lock();
      if (!m || !m->worker) return 0.0;
      return static_cast<double>(m->worker->counters().*field);
    };
    if (counter) registry.counter_fn(name, help, labels, read);
    else registry.gauge_fn(name, help, labels, read);
  };
  auto gauge = [&](const char* name, const char* help, int64_t serve::WorkerCounters::*field) {
    series(false, name, help, field);
  };
  auto counter = [&](const char* name, const char* help, int64_t serve::WorkerCounters::*field) {
    series(true, name, help, field);
  };
  gauge("kiln_running_sequences", "Sequences the engine is running.", &serve::WorkerCounters::running);
  gauge("kiln_waiting_sequences", "Sequences waiting in the scheduler.", &serve::WorkerCounters::waiting);
  gauge("kiln_queue_depth", "Requests queued and not started.", &serve::WorkerCounters::queued_requests);
  gauge("kiln_kv_blocks_capacity", "KV cache blocks.", &serve::WorkerCounters::kv_blocks_total);
  gauge("kiln_kv_blocks_used", "KV cache blocks held by sequences.", &serve::WorkerCounters::kv_blocks_used);
  gauge("kiln_kv_blocks_cached", "Free KV cache blocks that hold a cached prefix.", &serve::WorkerCounters::kv_blocks_cached);
  counter("kiln_engine_steps_total", "Engine steps run.", &serve::WorkerCounters::steps);
  counter("kiln_engine_failed_steps_total", "Engine steps that failed.", &serve::WorkerCounters::failed_steps);
  counter("kiln_tokens_computed_total", "Tokens the engine has computed (prefill and decode).",
          &serve::WorkerCounters::tokens_computed);
  counter("kiln_prefix_cache_queried_tokens_total", "Prompt tokens looked up in the prefix cache.",
          &serve::WorkerCounters::prefix_cache_queries);
  counter("kiln_prefix_cache_hit_tokens_total", "Prompt tokens found in the prefix cache.",
          &serve::WorkerCounters::prefix_cache_hits);
  counter("kiln_preemptions_total", "Sequences preempted for lack of KV blocks.", &serve::WorkerCounters::preemptions);
  counter("kiln_decode_tokens_total", "Of the tokens computed, those of sequences past their prompt.",
          &serve::WorkerCounters::decode_tokens);
  counter("kiln_engine_yielded_steps_total",
          "Steps in which batch work sat out so that a better priority's prompt ran alone.",
          &serve::WorkerCounters::yielded_steps);
  counter("kiln_engine_abandoned_steps_total",
          "Steps stopped between layers because a better priority's request arrived (redone later).",
          &serve::WorkerCounters::abandoned_steps);
  auto seconds = [&](const char* name, const char* help, int64_t serve::WorkerCounters::*field) {
    registry.counter_fn(name, help, labels, [weak, field]() -> double {
      auto m = weak.lock();
      if (!m || !m->worker) return 0.0;
      return static_cast<double>(m->worker->counters().*field) * 1e-6;
    });
  };
  seconds("kiln_engine_forward_seconds_total", "Engine-thread time inside the engine's steps (forward pass, sampling).",
          &serve::WorkerCounters::forward_us);
  seconds("kiln_engine_host_seconds_total",
          "Engine-thread time around the steps: scheduling, plans, applying results, waking streams.",
          &serve::WorkerCounters::host_us);
  counter("kiln_requests_finished_total", "Requests the engine finished.", &serve::WorkerCounters::requests_finished);
  counter("kiln_requests_rejected_total", "Requests refused because the queue was full.",
          &serve::WorkerCounters::requests_rejected);
  counter("kiln_requests_timed_out_total", "Requests ended by the request timeout.",
          &serve::WorkerCounters::requests_timed_out);
  counter("kiln_requests_cancelled_total", "Requests cancelled (client gone).", &serve::WorkerCounters::requests_cancelled);
  registry.gauge_fn("kiln_kv_usage_ratio", "Share of KV cache blocks held by sequences.", labels, [weak]() -> double {
    auto m = weak.lock();
    if (!m || !m->worker) return 0.0;
    auto c = m->worker->counters();
    return c.kv_blocks_total > 0 ? static_cast<double>(c.kv_blocks_used) / static_cast<double>(c.kv_blocks_total) : 0.0;
  });
}

}  // namespace kiln::pool
