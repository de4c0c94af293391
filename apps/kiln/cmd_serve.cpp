// `kiln serve`: the OpenAI-compatible HTTP server.
//
// Settings: flag > KILN_* environment variable > kiln.toml > default (DESIGN §7). CLI11 handles
// flags and environment variables; values from kiln.toml fill only the options that neither set.
#include <algorithm>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "command.h"
#include "dtype_option.h"
#include "serve_batches.h"
#include "serve_jobs.h"
#include "serve_pulls.h"
#include "ui_assets.h"
#include "kiln/core/file.h"
#include "kiln/core/log.h"
#include "kiln/core/str.h"
#include "kiln/http/app.h"
#include "kiln/http/asio.h"
#include "kiln/http/server.h"
#include "kiln/http/toml_config.h"
#include "kiln/metrics/metrics.h"
#include "kiln/pool/demo_model.h"
#include "kiln/pool/memory.h"
#include "kiln/pool/multi_model_pool.h"
#include "kiln/runtime/device.h"

namespace kiln::app {
namespace {

struct ServeArgs {
  std::string config;
  std::string model;
  std::string served_model_name;
  std::string tool_parser, reasoning_parser;  // empty: detected from the model's template
  std::string host = "127.0.0.1";
  int port = 8000;
  int http_threads = std::clamp(static_cast<int>(std::thread::hardware_concurrency()), 1, 4);
  std::string device = "auto";
  std::string dtype = "auto", quantize;
  int device_index = 0;
  int engine_threads = 0;
  int64_t max_model_len = 0;
  int max_batched_tokens = 0;  // 0: the device's default (8192 on CUDA, 512 on the CPU)
  int max_seqs = 256;
  int max_prefill_chunk = 0;
  int max_queue = 256;
  double request_timeout = 600;  // finite, so nothing runs unbounded by accident (docs/generation-defaults.md)
  int64_t default_max_tokens = http::kDefaultMaxTokens;
  bool no_prefix_cache = false;
  int block_size = 16;
  std::string kv_cache_memory = "0";
  double gpu_memory_fraction = 0.90;
  std::string max_body_size = "32MiB";
  std::string max_header_size = "32KiB";
  double read_timeout = 30;
  double idle_timeout = 75;
  double write_timeout = 60;
  int max_connections = 8192;
  double drain_timeout = 30;
  double sse_keepalive = 10;
  std::vector<std::string> api_keys;
  std::string api_key_file;
  std::vector<std::string> cors_origins;
  std::string log_level = "info";
  bool no_access_log = false;
  bool no_ui = false;  // docs/ui.md
  // The model pool (docs/pool.md).
  std::vector<std::string> models_dirs;
  bool no_hf_cache = false;
  std::string memory_budget = "0";
  int max_loaded_models = 0;
  std::string keep_alive = "-1";
  std::vector<std::string> preload;
  std::string admin_key;
  JobSettings jobs;  // docs/jobs.md
  RateLimitArgs rate_limits;
  BatchSettings batches;  // docs/batches.md
};

int fail(const Status& s) {
  log_error(s.message());
  return 1;
}

[[noreturn]] void end_now(const std::string& why) {
  log_error(why, ": exiting without waiting for them");
  std::fflush(stderr);
  std::_Exit(1);
}

// Ends the process if the shutdown that follows it does not finish within `grace`.
class ShutdownWatchdog {
 public:
  explicit ShutdownWatchdog(std::chrono::milliseconds grace)
      : thread_([this, grace] {
          std::unique_lock<std::mutex> lock(mu_);
          if (!cv_.wait_for(lock, grace, [this] { return done_; })) end_now("the engines did not stop in time");
        }) {}
  ~ShutdownWatchdog() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;  // last: it starts once the members above exist
};

std::chrono::milliseconds ms(double seconds) {
  return std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000.0));
}

// The settings file: the one named by --config, else ./kiln.toml when it exists, else none.
std::filesystem::path config_file_path(const std::string& explicit_path) {
  if (!explicit_path.empty()) return explicit_path;
  std::error_code ec;
  return std::filesystem::exists("kiln.toml", ec) ? std::filesystem::path("kiln.toml") : std::filesystem::path();
}

// Applies kiln.toml: every key names a flag of `kiln serve` (with '_' or '-'), top level or
// under [serve]. Only options that the command line and the environment left unset take it.
Status apply_config_file(CLI::App& sub, const std::string& explicit_path) {
  const std::filesystem::path path = config_file_path(explicit_path);
  if (path.empty()) return Status::ok();
  KILN_ASSIGN_OR_RETURN(auto values, http::load_toml(path));
  for (const auto& [full_key, value] : values) {
    if (starts_with(full_key, "models.")) continue;  // [models."alias"] tables: the model registry's
    std::string key = full_key;
    if (starts_with(key, "serve.")) key = key.substr(6);
    std::string flag = key;
    std::replace(flag.begin(), flag.end(), '_', '-');
    if (flag == "config") return invalid_argument(str_cat(path.string(), ":", value.line, ": 'config' cannot be set in the config file"));
    CLI::Option* opt = nullptr;
    try {
      opt = sub.get_option("--" + flag);
    } catch (const CLI::OptionNotFound&) {
      return invalid_argument(str_cat(path.string(), ":", value.line, ": '", full_key,
                                      "' is not a setting of kiln serve (see kiln serve --help)"));
    }
    if (opt->count() > 0) continue;  // a flag or an environment variable already set it
    try {
      if (opt->get_type_size() == 0) {  // a flag: true / false
        if (value.items.size() != 1 || (value.items[0] != "true" && value.items[0] != "false")) {
          return invalid_argument(str_cat(path.string(), ":", value.line, ": '", full_key, "' takes true or false"));
        }
        if (value.items[0] == "false") continue;
        opt->add_result("true");
      } else {
        for (const auto& item : value.items) opt->add_result(item);
      }
      opt->run_callback();
    } catch (const CLI::Error& e) {
      return invalid_argument(str_cat(path.string(), ":", value.line, ": '", full_key, "': ", e.what()));
    }
  }
  log_info("settings from ", path.string(), " (flags and KILN_* variables take precedence)");
  return Status::ok();
}

int run_serve(CLI::App& sub, const ServeArgs& given) {
  Status cfg = apply_config_file(sub, given.config);
  if (!cfg.is_ok()) return fail(cfg);
  const ServeArgs& a = given;
  LogLevel level;
  if (!parse_log_level(a.log_level, &level)) return fail(invalid_argument("--log-level: use debug, info, warn, error or off"));
  set_log_level(level);

  long long body_limit = 0, header_limit = 0, kv_bytes = 0;
  if (!parse_bytes(a.max_body_size, &body_limit) || body_limit <= 0) return fail(invalid_argument("--max-body-size: not a size"));
  if (!parse_bytes(a.max_header_size, &header_limit) || header_limit <= 0) return fail(invalid_argument("--max-header-size: not a size"));
  if (a.default_max_tokens < 0) return fail(invalid_argument("--default-max-tokens: must be >= 0 (0: the rest of the context)"));
  if (!parse_bytes(a.kv_cache_memory, &kv_bytes)) return fail(invalid_argument("--kv-cache-memory: not a size"));
  if (a.device != "auto" && a.device != "cpu" && a.device != "cuda")
    return fail(invalid_argument("--device: use auto, cpu or cuda"));
  const bool use_cuda = a.device == "cuda" || (a.device == "auto" && runtime::cuda_device_count() > a.device_index);

  pool::PoolOptions po;
  pool::ModelLoadOptions& load = po.defaults;
  load.engine.device = use_cuda ? runtime::DeviceKind::kCuda : runtime::DeviceKind::kCpu;
  load.engine.device_index = a.device_index;
  load.engine.num_threads = a.engine_threads;
  auto weights = chosen_weights(a.dtype, a.quantize);
  if (!weights.is_ok()) return fail(weights.status());
  load.engine.weight_dtype = weights->dtype;
  load.engine.quantize_fp8 = weights->fp8;
  load.engine.block_size = a.block_size;
  load.engine.kv_cache_bytes = kv_bytes;
  load.engine.gpu_memory_fraction = a.gpu_memory_fraction;
  load.engine.max_batched_tokens = a.max_batched_tokens;
  load.engine.max_seqs = a.max_seqs;
  load.engine.max_model_len = a.max_model_len;
  // The scheduler takes max_seqs and max_batched_tokens from the engine; 0 takes its default chunk.
  if (a.max_prefill_chunk < 0) return fail(invalid_argument("--max-prefill-chunk: 0 (the device's default) or more"));
  load.worker.scheduler.max_prefill_chunk = a.max_prefill_chunk;
  load.worker.scheduler.enable_prefix_cache = !a.no_prefix_cache;
  load.worker.max_queue = a.max_queue;
  load.worker.request_timeout_seconds = a.request_timeout;

  long long budget = 0;
  if (!parse_bytes(a.memory_budget, &budget)) return fail(invalid_argument("--memory-budget: not a size (e.g. 24GiB)"));
  if (!(a.gpu_memory_fraction > 0.0 && a.gpu_memory_fraction <= 1.0))
    return fail(invalid_argument("--gpu-memory-fraction: a number in (0, 1]"));
  if (budget == 0) {
    auto def = pool::default_memory_budget(load.engine.device, load.engine.device_index, a.gpu_memory_fraction);
    if (!def.is_ok()) return fail(def.status().with_context("--memory-budget (none given; could not measure free memory)"));
    budget = *def;
  }
  po.memory_budget = budget;
  if (!a.tool_parser.empty()) {
    Status s = pool::check_output_parser_setting("tool_parser", a.tool_parser);
    if (!s.is_ok()) return fail(s.with_context("--tool-parser"));
  }
  if (!a.reasoning_parser.empty()) {
    Status s = pool::check_output_parser_setting("reasoning_parser", a.reasoning_parser);
    if (!s.is_ok()) return fail(s.with_context("--reasoning-parser"));
  }
  if (a.max_loaded_models < 0) return fail(invalid_argument("--max-loaded-models: 0 (no cap) or more"));
  po.max_loaded_models = a.max_loaded_models;
  auto keep_alive = pool::parse_duration(a.keep_alive);
  if (!keep_alive.is_ok()) return fail(keep_alive.status().with_context("--keep-alive"));
  if (keep_alive->count() >= 0) po.keep_alive = *keep_alive;
  po.preload = a.preload;

  // The registry: --model, kiln.toml's [models."alias"] tables, --models-dir, the HF cache. It is
  // read again on SIGHUP and POST /v1/admin/models/rescan.
  std::vector<pool::ModelEntry> fixed;  // --model, or the demo model when nothing else is found
  std::string cli_model_id;
  if (!a.model.empty()) {
    pool::ModelEntry e;
    e.dir = a.model;
    e.id = !a.served_model_name.empty() ? a.served_model_name : e.dir.filename().string();
    if (e.id.empty()) e.id = e.dir.parent_path().filename().string();
    e.source = pool::ModelSource::kConfig;
    if (!a.tool_parser.empty()) e.settings.tool_parser = a.tool_parser;
    if (!a.reasoning_parser.empty()) e.settings.reasoning_parser = a.reasoning_parser;
    cli_model_id = e.id;
    fixed.push_back(e);
    po.preload.push_back(e.id);
  }
  std::vector<std::filesystem::path> models_dirs;
  for (const auto& d : a.models_dirs) models_dirs.emplace_back(d);
  // `--model DIR` alone serves that model (and kiln.toml's): the default models directory and the
  // Hugging Face cache are scanned only when no --model is given.
  if (models_dirs.empty() && a.model.empty()) models_dirs.push_back(user_data_dir() / "models");
  const std::filesystem::path config_path = config_file_path(a.config);
  const bool hf_cache = !a.no_hf_cache && a.model.empty();
  auto fixed_entries = std::make_shared<std::vector<pool::ModelEntry>>(fixed);
  po.source = [fixed_entries, models_dirs, config_path, hf_cache]() -> Result<std::vector<pool::ModelEntry>> {
    pool::RegistryScan scan;
    scan.configured = *fixed_entries;
    if (!config_path.empty()) {
      KILN_ASSIGN_OR_RETURN(auto values, http::load_toml(config_path));
      std::map<std::string, pool::SettingValue> tables;
      for (const auto& [k, v] : values) {
        if (starts_with(k, "models.")) tables[k] = pool::SettingValue{v.items, v.is_array, v.line};
      }
      std::filesystem::path base = config_path.parent_path();
      if (base.empty()) base = ".";
      KILN_ASSIGN_OR_RETURN(auto configured, pool::parse_model_tables(tables, config_path.string(), base));
      for (auto& e : configured) scan.configured.push_back(std::move(e));
    }
    scan.models_dirs = models_dirs;
    if (hf_cache) scan.hf_hub = pool::default_hf_hub_dir();
    std::vector<std::string> notes;
    auto entries = pool::scan_registry(scan, &notes);
    for (const auto& n : notes) log_debug(n);
    return entries;
  };
  {
    auto first = po.source();
    if (!first.is_ok()) return fail(first.status());
    if (first->empty()) {
      auto dir = pool::ensure_demo_model(user_data_dir());
      if (!dir.is_ok()) return fail(dir.status());
      pool::ModelEntry e;
      e.id = pool::kDemoModelName;
      e.dir = *dir;
      e.source = pool::ModelSource::kConfig;
      e.owned_by = "kiln (random weights)";
      e.description = pool::kDemoModelDescription;
      fixed_entries->push_back(e);
      po.preload.push_back(e.id);
      log_warn("no models found (--model, --models-dir, kiln.toml, the Hugging Face cache): serving `",
               pool::kDemoModelName, "` from ", e.dir.string(),
               ". Its weights are RANDOM, so its answers are noise; use `kiln serve --model DIR` for a real model.");
    }
  }

  metrics::Registry registry;
  po.metrics = &registry;
  auto created = pool::MultiModelPool::create(std::move(po));
  if (!created.is_ok()) return fail(created.status());
  pool::MultiModelPool& pool = **created;
  if (!cli_model_id.empty()) {
    log_info("loading ", a.model, " on ", a.device);
    const Status preloaded = pool.wait_for_preloads();
    auto st = pool.model_status(cli_model_id);
    if (!st || st->state != pool::ModelState::kReady) {
      // A model that can never fit is refused before it loads: its status holds no load error.
      if (!preloaded.is_ok()) return fail(preloaded);
      return fail(internal_error(st && !st->error.empty() ? st->error : str_cat("model `", cli_model_id, "` did not load")));
    }
  }
  {
    const pool::PoolStatus ps = pool.status();
    log_info("model pool: ", ps.models.size(), " servable models, memory budget ", format_bytes(double(ps.budget_bytes)),
             " (", ps.device, ")", a.max_loaded_models > 0 ? str_cat(", at most ", a.max_loaded_models, " loaded") : "");
  }

  http::AppOptions ao;
  ao.version = KILN_VERSION;
  ao.api_keys.add(a.api_keys);
  if (!a.admin_key.empty()) ao.admin_keys.add({a.admin_key});
  http::RateLimitSettings limits;
  if (!a.api_key_file.empty()) {
    auto keys = http::read_api_key_entries(a.api_key_file);
    if (!keys.is_ok()) return fail(keys.status());
    for (const auto& k : *keys) {
      ao.api_keys.add({k.key});
      if (k.rpm || k.tpm) limits.by_key[http::key_id(k.key)] = {k.rpm.value_or(-1), k.tpm.value_or(-1)};
    }
  }
  ao.cors = http::Cors(a.cors_origins);
  ao.sse_keepalive = ms(a.sse_keepalive);
  ao.access_log = !a.no_access_log;
  ao.default_max_tokens = a.default_max_tokens;
  if (!a.no_ui) {
    ao.ui = embedded_ui();
    if (!embedded_ui_built()) log_warn("this binary was built without its web UI (no Node.js at build time): / says so");
  }
  auto jobs = start_jobs(a.jobs, registry, ao.api_keys.enabled());
  if (!jobs.is_ok()) return fail(jobs.status());
  limits.api_keys = ao.api_keys.enabled();
  auto rate_limits = start_rate_limits(a.rate_limits, a.jobs, std::move(limits), registry);
  if (!rate_limits.is_ok()) return fail(rate_limits.status());
  http::App app(pool, registry, ao);
  if (*jobs) app.set_jobs((*jobs)->tracker.get());
  if (*rate_limits) app.set_rate_limits((*rate_limits)->limits.get());
  auto batches = start_batches(a.batches, *jobs ? a.jobs.database : "off", *jobs ? (*jobs)->node : "", app, pool,
                               registry);
  if (!batches.is_ok()) return fail(batches.status());
  if (*batches) app.set_batches(batches->get());
  auto pulls = make_pull_service(pool);
  app.set_pulls(pulls.get());

  http::ServerOptions so;
  so.host = a.host;
  so.port = a.port;
  so.threads = a.http_threads;
  so.max_body_bytes = static_cast<size_t>(body_limit);
  so.max_header_bytes = static_cast<size_t>(header_limit);
  so.read_timeout = ms(a.read_timeout);
  so.idle_timeout = ms(a.idle_timeout);
  so.write_timeout = ms(a.write_timeout);
  so.max_connections = a.max_connections;
  if (*batches) {
    // Uploads stream into the files directory, so that moving one into place is a rename.
    so.upload_route = [&app](const http::HttpRequest& head) { return app.takes_upload(head); };
    so.upload_dir = (*batches)->options().files_dir;
  }
  http::Server server(
      so, [&app](const http::ExchangePtr& ex) { app.handle(ex); },
      [&app](const http::AccessRecord& r) { app.on_done(r); });
  app.set_server(&server);
  Status listening = server.listen();
  if (!listening.is_ok()) return fail(listening);
  // SIGHUP rescans the model registry (the server's own signal set takes SIGINT and SIGTERM).
  boost::asio::io_context hup_ioc;
  boost::asio::signal_set hup(hup_ioc, SIGHUP);
  std::function<void(const boost::system::error_code&, int)> on_hup = [&](const boost::system::error_code& ec, int) {
    if (ec) return;
    log_info("SIGHUP: rescanning the model registry");
    pool.rescan([](Result<int64_t>) {});
    hup.async_wait(on_hup);
  };
  hup.async_wait(on_hup);
  std::thread hup_thread([&hup_ioc] { hup_ioc.run(); });

  log_info("kiln ", KILN_VERSION, " serving ", pool.list().size(), " models on http://", a.host, ":", server.port(),
           " (", a.http_threads, " HTTP threads", ao.api_keys.enabled() ? ", API keys required on /v1/*" : "",
           a.no_ui ? "" : ", web UI at /", ")");
  const bool stopped = server.run(/*handle_signals=*/true, ms(a.drain_timeout));
  hup_ioc.stop();
  hup_thread.join();
  // The drain deadline holds for whatever is in flight: an HTTP thread that did not stop, or
  // engines that take too long to stop (a step or a model load under way), end with the process.
  if (!stopped) end_now("HTTP threads were still busy after the drain time");
  ShutdownWatchdog watchdog(so.drain_grace);
  pulls.reset();  // cancels running pulls (their parts stay) before the registry goes
  pool.shutdown();
  // After the engines: batch lines still running end as the pool stops them and stay claimed;
  // the next start of this node runs them again.
  batches->reset();
  log_info("kiln stopped");
  return 0;
}

KILN_REGISTER_COMMAND(kServe, "serve", "Serve a model over the OpenAI-compatible HTTP API",
                      [](CLI::App& sub) -> std::function<int()> {
  auto a = std::make_shared<ServeArgs>();
  auto opt = [&](const char* name, auto& var, const char* env, const char* help) {
    return sub.add_option(name, var, help)->envname(env)->capture_default_str();
  };
  sub.add_option("--config", a->config, "Settings file (default: ./kiln.toml when it exists)")->envname("KILN_CONFIG");
  opt("--model", a->model, "KILN_MODEL", "Model directory (Hugging Face layout); none: the random-weight kiln-demo");
  opt("--served-model-name", a->served_model_name, "KILN_SERVED_MODEL_NAME", "Name clients use (default: the directory name)");
  opt("--tool-parser", a->tool_parser, "KILN_TOOL_PARSER",
      "Tool-call format of --model: hermes, qwen3_coder, glm45, llama3, pythonic, mistral, deepseek_v3, harmony or "
      "none (default: detected from its chat template)");
  opt("--reasoning-parser", a->reasoning_parser, "KILN_REASONING_PARSER",
      "Reasoning format of --model: think, mistral, harmony or none (default: detected from its chat template)");
  opt("--host", a->host, "KILN_HOST", "Address to listen on");
  opt("--port", a->port, "KILN_PORT", "Port to listen on (0: any free port)");
  sub.add_option("--http-threads", a->http_threads, "Threads running the HTTP event loop (default: the number of cores, 1 to 4)")
      ->envname("KILN_HTTP_THREADS");
  opt("--device", a->device, "KILN_DEVICE", "auto (CUDA when a GPU is found), cpu or cuda");
  opt("--device-index", a->device_index, "KILN_DEVICE_INDEX", "CUDA device index");
  opt("--engine-threads", a->engine_threads, "KILN_ENGINE_THREADS", "CPU compute threads (0: all cores)");
  add_dtype_options(sub, &a->dtype, &a->quantize);
  opt("--max-model-len", a->max_model_len, "KILN_MAX_MODEL_LEN", "Context length (0: the model's)");
  opt("--max-batched-tokens", a->max_batched_tokens, "KILN_MAX_BATCHED_TOKENS",
      "Most tokens in one engine step (0: 8192 on CUDA, 512 or --max-seqs on the CPU)");
  opt("--max-seqs", a->max_seqs, "KILN_MAX_SEQS", "Most sequences running at once");
  opt("--max-prefill-chunk", a->max_prefill_chunk, "KILN_MAX_PREFILL_CHUNK", "Most prompt tokens of one sequence per step, so long prompts share steps with other requests (0: 2048 on CUDA, 256 on CPU)");
  opt("--max-queue", a->max_queue, "KILN_MAX_QUEUE", "Waiting requests per model before 503 + Retry-After");
  opt("--request-timeout", a->request_timeout, "KILN_REQUEST_TIMEOUT", "Seconds a request may wait and run (0: no limit)");
  opt("--default-max-tokens", a->default_max_tokens, "KILN_DEFAULT_MAX_TOKENS",
      "Most tokens a chat completion without max_tokens generates (0: the rest of the context)");
  sub.add_flag("--no-prefix-cache", a->no_prefix_cache, "Turn prefix caching off")->envname("KILN_NO_PREFIX_CACHE");
  opt("--block-size", a->block_size, "KILN_BLOCK_SIZE", "Tokens per KV cache block");
  opt("--kv-cache-memory", a->kv_cache_memory, "KILN_KV_CACHE_MEMORY", "KV cache size of each model, e.g. 2GiB (0: what the memory budget leaves, at most a quarter of it with several models)");
  opt("--gpu-memory-fraction", a->gpu_memory_fraction, "KILN_GPU_MEMORY_FRACTION", "Without --memory-budget: the budget is this share of the GPU's memory, less what is in use");
  opt("--max-body-size", a->max_body_size, "KILN_MAX_BODY_SIZE", "Largest request body (413 above it)");
  opt("--max-header-size", a->max_header_size, "KILN_MAX_HEADER_SIZE", "Largest request header block (431 above it)");
  opt("--read-timeout", a->read_timeout, "KILN_READ_TIMEOUT", "Seconds to receive a whole request (408 after)");
  opt("--idle-timeout", a->idle_timeout, "KILN_IDLE_TIMEOUT", "Seconds a kept-alive connection may wait for its next request");
  opt("--write-timeout", a->write_timeout, "KILN_WRITE_TIMEOUT", "Seconds a client may take to accept a write");
  opt("--max-connections", a->max_connections, "KILN_MAX_CONNECTIONS", "Open connections before new ones get 503");
  opt("--drain-timeout", a->drain_timeout, "KILN_DRAIN_TIMEOUT", "Seconds in-flight requests get to finish on SIGTERM/SIGINT");
  opt("--sse-keepalive", a->sse_keepalive, "KILN_SSE_KEEPALIVE", "Seconds between keep-alive comments of a queued stream");
  opt("--api-key", a->api_keys, "KILN_API_KEY", "API key required on /v1/* (repeat, or comma-separate, for several)")->delimiter(',');
  opt("--api-key-file", a->api_key_file, "KILN_API_KEY_FILE", "File of API keys, one per line: KEY [rpm=N] [tpm=N]");
  opt("--rate-limit-rpm", a->rate_limits.rpm, "KILN_RATE_LIMIT_RPM", "Requests per minute per API key (per address without keys; 0: no limit)");
  opt("--rate-limit-tpm", a->rate_limits.tpm, "KILN_RATE_LIMIT_TPM", "Tokens (prompt + max output) per minute per API key (per address without keys; 0: no limit)");
  opt("--rate-limit-sync", a->rate_limits.sync_interval, "KILN_RATE_LIMIT_SYNC", "With a PostgreSQL --database: how often nodes exchange rate-limit consumption");
  opt("--cors-origins", a->cors_origins, "KILN_CORS_ORIGINS", "Origins allowed by CORS, comma-separated ('*': any; default: CORS off)")->delimiter(',');
  opt("--models-dir", a->models_dirs, "KILN_MODELS_DIR", "Directories of models to serve (NAME/ or ORG/NAME/; default without --model: DATA_DIR/models)")->delimiter(',');
  sub.add_flag("--no-hf-cache", a->no_hf_cache, "Do not serve models from the Hugging Face cache (never scanned with --model)")->envname("KILN_NO_HF_CACHE");
  opt("--memory-budget", a->memory_budget, "KILN_MEMORY_BUDGET", "Memory the loaded models may take, e.g. 24GiB (0: CUDA: --gpu-memory-fraction of the GPU less what is in use; CPU: 90% of available memory)");
  opt("--max-loaded-models", a->max_loaded_models, "KILN_MAX_LOADED_MODELS", "Most models loaded at once (0: no cap)");
  opt("--keep-alive", a->keep_alive, "KILN_KEEP_ALIVE", "Idle time before a model is unloaded, e.g. 10m (-1: never)");
  opt("--preload", a->preload, "KILN_PRELOAD", "Models to load at start and keep loaded (comma-separated)")->delimiter(',');
  opt("--admin-key", a->admin_key, "KILN_ADMIN_KEY", "Bearer token the admin API (/v1/admin/*), the jobs API (/v1/jobs*) and the model, queue and health aliases require");
  opt("--log-level", a->log_level, "KILN_LOG_LEVEL", "debug, info, warn, error or off");
  sub.add_flag("--no-access-log", a->no_access_log, "Do not log a JSON line per request")->envname("KILN_NO_ACCESS_LOG");
  sub.add_flag("--no-ui", a->no_ui, "Do not serve the web UI at / (docs/ui.md)")->envname("KILN_NO_UI");
  opt("--database", a->jobs.database, "KILN_DATABASE", "Job store: empty for SQLite in DATA_DIR/jobs.db, a .db path, a postgresql:// URI, or off");
  opt("--job-retention", a->jobs.retention, "KILN_JOB_RETENTION", "How long finished jobs are kept, e.g. 7d, 12h (-1: forever)");
  opt("--job-queue-size", a->jobs.queue_size, "KILN_JOB_QUEUE_SIZE", "Job records waiting to be written before new ones are dropped (and counted)");
  opt("--node-name", a->jobs.node_name, "KILN_NODE_NAME", "This server's name in the job store (default: the host name)");
  opt("--files-dir", a->batches.files_dir, "KILN_FILES_DIR", "Where uploaded and batch output files live (default DATA_DIR/files; a shared directory for several nodes)");
  opt("--batch-concurrency", a->batches.concurrency, "KILN_BATCH_CONCURRENCY", "Batch lines and background responses this node runs at once (batch lines at a lower priority than clients' requests; 0: none, an API-only node)");
  opt("--batch-lease", a->batches.lease, "KILN_BATCH_LEASE", "How long a claimed batch line stays with its node without news before another node runs it again");
  opt("--batch-window", a->batches.window, "KILN_BATCH_WINDOW", "How long a batch may take before its unfinished requests expire (batch_expired); clients' completion_window '24h' means this window");
  opt("--batch-load-grace", a->batches.load_grace, "KILN_BATCH_LOAD_GRACE", "How long a batch line waits for a node that has its model loaded before a node that would have to load it takes it");
  opt("--batch-retention", a->batches.retention, "KILN_BATCH_RETENTION", "How long ended batches (with their lines) and finished webhook deliveries are kept, e.g. 30d, 12h (0: forever)");
  opt("--webhook", a->batches.webhooks, "KILN_WEBHOOK", "URL that receives batch.* events (repeatable; signed with --webhook-secret)");
  opt("--webhook-secret", a->batches.webhook_secret, "KILN_WEBHOOK_SECRET", "Standard Webhooks signing secret (whsec_ + base64)");
  opt("--webhook-retry-base", a->batches.webhook_retry_base, "KILN_WEBHOOK_RETRY_BASE", "First webhook retry after this, doubling up to 1h between attempts, for 72h");
  sub.add_flag("--store-bodies", a->jobs.store_bodies, "Keep request and response bodies in the job store")->envname("KILN_STORE_BODIES");
  CLI::App* self = &sub;
  return [a, self] { return run_serve(*self, *a); };
});

}  // namespace
}  // namespace kiln::app
