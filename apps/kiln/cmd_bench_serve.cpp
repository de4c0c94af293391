// kiln bench serve: a load generator for any OpenAI-compatible server (kiln, vLLM, llama-server,
// Ollama). It sends chat or completions requests at a fixed concurrency or a Poisson rate and
// reports throughput and latency (TTFT, TPOT, ITL, end to end) as a table and as JSON.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench_command.h"
#include "bench_serve/model_query.h"
#include "bench_serve/report.h"
#include "bench_serve/runner.h"
#include "kiln/core/file.h"
#include "kiln/core/log.h"
#include "kiln/core/str.h"

namespace kiln::app {
namespace {

using namespace kiln::bench_serve;  // NOLINT: this file only wires that library to the CLI
using nlohmann::json;

struct ServeBenchArgs {
  std::string url = "http://127.0.0.1:8000";
  std::string model;
  std::string api_key;
  std::string endpoint = "chat";
  int concurrency = 1;
  double request_rate = 0;
  int max_concurrency = 0;
  int64_t num_requests = 0;  // 0: 100, or unlimited with --duration
  double duration_s = 0;
  int warmup = 1;
  int prompt_tokens = 128;
  int output_tokens = 128;
  double range_ratio = 0;
  int shared_prefix_tokens = 0;
  std::string dataset;
  bool no_ignore_eos = false;
  bool no_stream = false;
  std::optional<double> temperature;
  std::string extra_body;
  std::string json_schema;  // file: every request asks for response_format json_schema with it
  uint64_t seed = 0;
  double request_timeout_s = 600;
  int threads = 1;
  std::string json_out;
  bool json_requests = false;
  bool quiet = false;
};

std::vector<std::string> own_command_line() {
  // Linux keeps the arguments, NUL-separated, in /proc/self/cmdline (its size reads as 0, so
  // read it in pieces rather than by length).
  std::string raw;
  if (std::FILE* f = std::fopen("/proc/self/cmdline", "rb")) {
    char buf[4096];
    for (size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) raw.append(buf, n);
    std::fclose(f);
  }
  std::vector<std::string> args;
  if (raw.empty()) return args;
  if (raw.back() == '\0') raw.pop_back();
  return split(raw, '\0');
}

int64_t unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int fail(const Status& s) {
  std::fprintf(stderr, "kiln bench serve: %s\n", s.message().c_str());
  return 1;
}

// --json-schema: the file's schema goes into every request as OpenAI's response_format (strict),
// which kiln, vLLM and llama-server all accept, so constrained and free runs differ by that alone.
Status add_json_schema(const std::string& path, json* extra_body) {
  KILN_ASSIGN_OR_RETURN(std::string text, read_file(path));
  json schema = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!schema.is_object() && !schema.is_boolean()) {
    return invalid_argument(str_cat("--json-schema ", path, " must hold a JSON Schema (an object or a boolean)"));
  }
  if (extra_body->is_null()) *extra_body = json::object();
  if (extra_body->contains("response_format")) {
    return invalid_argument("--json-schema and a response_format in --extra-body exclude each other");
  }
  (*extra_body)["response_format"] = {
      {"type", "json_schema"},
      {"json_schema", {{"name", "bench"}, {"schema", std::move(schema)}, {"strict", true}}},
  };
  return Status::ok();
}

// Checks the arguments and fills the runner's and the workload's settings from them.
Status prepare(const ServeBenchArgs& a, RunSettings* run, WorkloadSettings* ws) {
  ApiEndpoint endpoint;
  if (a.endpoint == "chat") {
    endpoint = ApiEndpoint::kChat;
  } else if (a.endpoint == "completions") {
    endpoint = ApiEndpoint::kCompletions;
  } else {
    return invalid_argument(str_cat("--endpoint must be chat or completions, not '", a.endpoint, "'"));
  }
  if (a.request_rate < 0 || std::isnan(a.request_rate)) return invalid_argument("--request-rate must be positive or inf");
  if (a.max_concurrency > 0 && a.request_rate == 0) return invalid_argument("--max-concurrency goes with --request-rate");
  if (a.duration_s < 0) return invalid_argument("--duration must not be negative");
  if (a.num_requests < 0) return invalid_argument("--num-requests must not be negative");
  if (a.request_timeout_s <= 0) return invalid_argument("--request-timeout must be positive");
  KILN_ASSIGN_OR_RETURN(run->target, parse_base_url(a.url));
  KILN_RETURN_IF_ERROR(resolve_target(&run->target));

  run->body.endpoint = endpoint;
  run->body.model = a.model;
  run->body.stream = !a.no_stream;
  run->body.ignore_eos = !a.no_ignore_eos;
  run->body.temperature = a.temperature;
  if (!a.extra_body.empty()) {
    run->body.extra_body = json::parse(a.extra_body, nullptr, /*allow_exceptions=*/false);
    if (!run->body.extra_body.is_object()) return invalid_argument("--extra-body must be a JSON object");
  }
  if (!a.json_schema.empty()) KILN_RETURN_IF_ERROR(add_json_schema(a.json_schema, &run->body.extra_body));
  run->client.endpoint = endpoint;
  run->client.stream = !a.no_stream;
  run->client.api_key = a.api_key;
  run->client.timeout_s = a.request_timeout_s;
  run->concurrency = a.concurrency;
  run->request_rate = a.request_rate;
  run->max_concurrency = a.max_concurrency;
  run->num_requests = a.num_requests > 0 ? a.num_requests : (a.duration_s > 0 ? -1 : 100);
  run->duration_s = a.duration_s;
  run->warmup = a.warmup;
  run->threads = a.threads;
  run->seed = a.seed;
  run->progress_interval_s = a.quiet ? 0 : 10;

  ws->endpoint = endpoint;
  ws->prompt_tokens = a.prompt_tokens;
  ws->output_tokens = a.output_tokens;
  ws->range_ratio = a.range_ratio;
  ws->shared_prefix_tokens = a.shared_prefix_tokens;
  ws->seed = a.seed;
  ws->dataset = a.dataset;
  return Status::ok();
}

json settings_json(const ServeBenchArgs& a, const RunSettings& run) {
  json j = {
      {"url", a.url},
      {"model", run.body.model},
      {"endpoint", a.endpoint},
      {"stream", run.body.stream},
      {"ignore_eos", run.body.ignore_eos},
      {"concurrency", run.request_rate > 0 ? json() : json(run.concurrency)},
      {"request_rate", run.request_rate > 0 ? (std::isinf(run.request_rate) ? json("inf") : json(run.request_rate))
                                            : json()},
      {"max_concurrency", run.max_concurrency > 0 ? json(run.max_concurrency) : json()},
      {"num_requests", run.num_requests >= 0 ? json(run.num_requests) : json()},
      {"duration_s", a.duration_s > 0 ? json(a.duration_s) : json()},
      {"warmup", a.warmup},
      {"dataset", a.dataset.empty() ? json() : json(a.dataset)},
      {"prompt_tokens", a.dataset.empty() ? json(a.prompt_tokens) : json()},
      {"output_tokens", a.output_tokens},
      {"random_range_ratio", a.range_ratio},
      {"shared_prefix_tokens", a.shared_prefix_tokens},
      {"temperature", a.temperature ? json(*a.temperature) : json()},
      {"extra_body", run.body.extra_body},
      {"json_schema_file", a.json_schema.empty() ? json() : json(a.json_schema)},
      {"seed", a.seed},
      {"request_timeout_s", a.request_timeout_s},
      {"threads", a.threads},
      {"kiln_version", KILN_VERSION},
  };
  return j;
}

std::string describe_load(const RunSettings& run) {
  if (run.request_rate <= 0) return str_cat("concurrency ", run.concurrency);
  std::string rate = std::isinf(run.request_rate) ? "all requests at once" : str_cat("Poisson ", run.request_rate, " req/s");
  if (run.max_concurrency > 0) rate += str_cat(", at most ", run.max_concurrency, " in flight");
  return rate;
}

int run_bench_serve(const ServeBenchArgs& a) {
  RunSettings run;
  WorkloadSettings ws;
  if (Status s = prepare(a, &run, &ws); !s.is_ok()) return fail(s);
  auto workload = Workload::create(ws);
  if (!workload.is_ok()) return fail(workload.status());
  if (run.body.model.empty()) {
    auto model = fetch_first_model_id(run.target, a.api_key, std::min(a.request_timeout_s, 30.0));
    if (!model.is_ok()) return fail(model.status());
    run.body.model = *model;
  }
  if (!a.quiet) {
    log_info("bench serve: ", run.num_requests >= 0 ? str_cat(run.num_requests, " requests") : "requests",
             a.duration_s > 0 ? str_cat(" for at most ", a.duration_s, " s") : "", " to ", a.url, " (",
             describe_load(run), ", model ", run.body.model, ")");
  }
  int64_t started = unix_ms();
  auto result = run_benchmark(run, *workload);
  int64_t finished = unix_ms();
  if (!result.is_ok()) return fail(result.status());
  Metrics m = compute_metrics(*result);
  // Asked after the run, when the model is loaded: kiln then lists its device and weight dtype.
  const std::string device =
      fetch_model_device(run.target, a.api_key, std::min(a.request_timeout_s, 30.0), run.body.model);
  RunLabel label{a.url, run.body.model, a.endpoint, describe_load(run), run.body.stream, device};
  std::fputs(format_table(m, label, result->interrupted).c_str(), stdout);
  std::fflush(stdout);
  if (!a.json_out.empty()) {
    json doc = report_json(m, *result, settings_json(a, run), own_command_line(), started, finished, a.json_requests);
    if (!device.empty()) doc["server_device"] = device;
    // Error texts from a server may hold invalid UTF-8: replace it rather than fail the report.
    std::string text = doc.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
    if (Status s = write_file_atomic(a.json_out, text); !s.is_ok()) return fail(s);
  }
  if (result->interrupted) return 130;
  return m.completed > 0 ? 0 : 1;
}

KILN_REGISTER_BENCH_COMMAND(
    kBenchServe, "serve", "Load-test an OpenAI-compatible server (kiln, vLLM, llama-server, Ollama)",
    [](CLI::App& sub) -> std::function<int()> {
      auto a = std::make_shared<ServeBenchArgs>();
      sub.add_option("--url", a->url, "Base URL of the server (http://host:port[/prefix]; /v1 is added)")
          ->capture_default_str();
      sub.add_option("--model", a->model, "Model to ask for (default: the first one GET /v1/models lists)");
      sub.add_option("--api-key", a->api_key, "Bearer token sent with every request")->envname("KILN_API_KEY");
      sub.add_option("--endpoint", a->endpoint, "API to drive: chat or completions")
          ->capture_default_str()
          ->check(CLI::IsMember({"chat", "completions"}));
      sub.add_option("--concurrency", a->concurrency, "Clients sending requests back to back")
          ->capture_default_str()
          ->check(CLI::Range(1, 100000));
      sub.add_option("--request-rate", a->request_rate,
                     "Poisson arrivals per second instead of fixed concurrency (inf: all at once)");
      sub.add_option("--max-concurrency", a->max_concurrency, "With --request-rate: most requests in flight")
          ->check(CLI::Range(0, 100000));
      sub.add_option("--num-requests", a->num_requests, "Requests to measure (default 100; unlimited with --duration)");
      sub.add_option("--duration", a->duration_s, "Stop issuing requests after this many seconds");
      sub.add_option("--warmup", a->warmup, "Requests sent first and left out of the figures")
          ->capture_default_str()
          ->check(CLI::Range(0, 1000000));
      sub.add_option("--prompt-tokens", a->prompt_tokens, "Prompt length in tokens (synthetic prompts)")
          ->capture_default_str();
      sub.add_option("--output-tokens", a->output_tokens, "max_tokens of each request")->capture_default_str();
      sub.add_option("--random-range-ratio", a->range_ratio,
                     "Draw lengths uniformly from [L*(1-r), L*(1+r)] instead of exactly L")
          ->capture_default_str();
      sub.add_option("--shared-prefix-tokens", a->shared_prefix_tokens,
                     "A prefix of this many tokens every synthetic prompt starts with")
          ->capture_default_str();
      sub.add_option("--dataset", a->dataset,
                     "JSONL prompts: {\"prompt\": ..., \"max_tokens\": N} or {\"messages\": [...]} per line");
      sub.add_flag("--no-ignore-eos", a->no_ignore_eos, "Do not send ignore_eos (outputs may end early)");
      sub.add_flag("--no-stream", a->no_stream, "Ask for whole responses (TTFT is then the whole latency)");
      sub.add_option("--temperature", a->temperature, "Sampling temperature to send (default: the server's)");
      sub.add_option("--extra-body", a->extra_body, "JSON object merged into every request body");
      sub.add_option("--json-schema", a->json_schema,
                     "JSON Schema file sent with every request as response_format json_schema (strict)");
      sub.add_option("--seed", a->seed, "Seed of prompts, lengths and arrival times")->capture_default_str();
      sub.add_option("--request-timeout", a->request_timeout_s, "Seconds before a request counts as timed out")
          ->capture_default_str();
      sub.add_option("--threads", a->threads, "I/O threads of the load generator")
          ->capture_default_str()
          ->check(CLI::Range(1, 64));
      sub.add_option("--json-out", a->json_out, "Also write the results as JSON to this file");
      sub.add_flag("--json-requests", a->json_requests, "Include every request's timings in --json-out");
      sub.add_flag("--quiet", a->quiet, "No progress lines on stderr");
      return [a] { return run_bench_serve(*a); };
    });

}  // namespace
}  // namespace kiln::app
