// kiln bench: the offline engine benchmark (`kiln bench --model DIR [--device cpu|cuda]`): prefill
// and decode speed of a batch of random prompts, as a table and as JSON. Warm-up rounds run the
// same scenario first, so that one-time work (CUDA graph capture, GEMM algorithm choice) stays out
// of the figures. Nested `kiln bench <name>` commands come from bench_command.h.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench_command.h"
#include "dtype_option.h"
#include "kiln/core/file.h"
#include "kiln/core/str.h"
#include "kiln/model/config.h"
#include "kiln/runtime/engine.h"
#include "kiln/runtime/static_batch.h"

namespace kiln::app {

namespace {
std::vector<Command>& bench_registry() {
  static std::vector<Command> commands;
  return commands;
}
}  // namespace

bool register_bench_command(Command command) {
  bench_registry().push_back(std::move(command));
  return true;
}

const std::vector<Command>& bench_commands() { return bench_registry(); }

namespace {

struct BenchArgs {
  std::string model_dir, json_out, device = "auto", dtype = "auto", quantize;
  int batch = 1, prompt_len = 128, gen_len = 128, threads = 0, warmup = 1;
  int max_batched_tokens = 8192;
  uint64_t seed = 0;
};

int fail(const Status& s) {
  std::fprintf(stderr, "kiln bench: %s\n", s.to_string().c_str());
  return 1;
}

// The command line as the kernel recorded it (arguments joined by spaces).
std::string command_line() {
  auto text = read_file("/proc/self/cmdline");
  if (!text.is_ok()) return "";
  std::string out;
  for (char c : *text) out += c == '\0' ? ' ' : c;
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

// KILN_COMMIT, else the checkout's short HEAD when git answers, else "unknown".
std::string source_commit() {
  if (const char* env = std::getenv("KILN_COMMIT"); env != nullptr && *env != '\0') return env;
  std::string out;
  if (FILE* p = popen("git rev-parse --short HEAD 2>/dev/null", "r"); p != nullptr) {
    char buf[64];
    while (std::fgets(buf, sizeof buf, p) != nullptr) out += buf;
    if (pclose(p) != 0) out.clear();
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out.empty() ? "unknown" : out;
}

struct Timings {
  int prefill_steps = 0;
  double prefill_s = 0;
  std::vector<double> decode_step_s;  // one entry per decode step
};

// One round: `a.batch` random prompts prefilled, then gen_len - 1 decode steps.
Result<Timings> run_round(runtime::Engine& engine, const BenchArgs& a, int64_t vocab, uint64_t seed) {
  runtime::StaticBatch batch(engine, a.max_batched_tokens);
  std::mt19937_64 rng(seed);
  for (int i = 0; i < a.batch; ++i) {
    std::vector<int32_t> prompt(static_cast<size_t>(a.prompt_len));
    for (auto& t : prompt) t = static_cast<int32_t>(rng() % static_cast<uint64_t>(vocab));
    runtime::SamplingParams greedy;
    greedy.temperature = 0.0f;
    batch.add(std::move(prompt), greedy);
  }
  using Clock = std::chrono::steady_clock;
  Timings t;
  const auto t0 = Clock::now();
  for (;;) {  // prefill: every step until each sequence has its first token
    bool any = false;
    for (int i = 0; i < a.batch; ++i) any = any || batch.generated(i) == 0;
    if (!any) break;
    KILN_ASSIGN_OR_RETURN(runtime::StaticBatch::Step s, batch.step(0, false));
    (void)s;
    ++t.prefill_steps;
  }
  t.prefill_s = std::chrono::duration<double>(Clock::now() - t0).count();
  for (int step = 1; step < a.gen_len; ++step) {
    const auto s0 = Clock::now();
    KILN_ASSIGN_OR_RETURN(runtime::StaticBatch::Step s, batch.step(0, false));
    (void)s;
    t.decode_step_s.push_back(std::chrono::duration<double>(Clock::now() - s0).count());
  }
  return t;
}

// --device auto: CUDA when this kiln has the backend and a device opens, else the CPU.
Result<std::unique_ptr<runtime::Engine>> load_engine(const BenchArgs& a, runtime::EngineOptions o) {
  if (a.device == "cpu" || a.device == "cuda") {
    o.device = a.device == "cuda" ? runtime::DeviceKind::kCuda : runtime::DeviceKind::kCpu;
    return runtime::Engine::load(a.model_dir, o);
  }
  o.device = runtime::DeviceKind::kCuda;
  auto cuda = runtime::Engine::load(a.model_dir, o);
  const StatusCode code = cuda.is_ok() ? StatusCode::kOk : cuda.status().code();
  // Unimplemented: built without CUDA; failed precondition: no device. Anything else is a real
  // failure of the CUDA engine and is reported, not hidden behind a CPU run.
  if (code != StatusCode::kUnimplemented && code != StatusCode::kFailedPrecondition) return cuda;
  o.device = runtime::DeviceKind::kCpu;
  return runtime::Engine::load(a.model_dir, o);
}

int run(const BenchArgs& a) {
  if (a.model_dir.empty()) return fail(invalid_argument("--model is required (or name a nested benchmark: kiln bench --help)"));
  if (a.batch < 1 || a.prompt_len < 1 || a.gen_len < 1 || a.max_batched_tokens < 1 || a.warmup < 0)
    return fail(invalid_argument(
        "--batch, --prompt-len, --gen-len and --max-batched-tokens must be at least 1, --warmup at least 0"));
  if (a.device != "auto" && a.device != "cpu" && a.device != "cuda")
    return fail(invalid_argument(str_cat("--device must be auto, cpu or cuda, not '", a.device, "'")));
  auto config = model::load_model_config(a.model_dir);
  if (!config.is_ok()) return fail(config.status());
  runtime::EngineOptions o;
  o.num_threads = a.threads;
  auto weights = chosen_weights(a.dtype, a.quantize);
  if (!weights.is_ok()) return fail(weights.status());
  o.weight_dtype = weights->dtype;
  o.quantize_fp8 = weights->fp8;
  o.max_seqs = a.batch;
  // Prefill is chunked at max_batched_tokens: sequences whose prompt is done keep generating while
  // the others finish theirs, so they can run ahead by one token per further prefill step.
  const int64_t prefill_steps_max = (static_cast<int64_t>(a.batch) * a.prompt_len + a.max_batched_tokens - 1) /
                                    a.max_batched_tokens;
  o.max_model_len = a.prompt_len + a.gen_len + prefill_steps_max;
  o.max_batched_tokens = a.max_batched_tokens;
  const auto load_start = std::chrono::steady_clock::now();
  auto engine = load_engine(a, o);
  if (!engine.is_ok()) return fail(engine.status());
  const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - load_start).count();

  for (int w = 0; w < a.warmup; ++w) {
    auto t = run_round(**engine, a, config->vocab_size, a.seed + 1 + static_cast<uint64_t>(w));
    if (!t.is_ok()) return fail(t.status());
  }
  auto timed = run_round(**engine, a, config->vocab_size, a.seed);
  if (!timed.is_ok()) return fail(timed.status());
  const Timings& t = *timed;
  double decode_s = 0;
  for (double x : t.decode_step_s) decode_s += x;
  std::vector<double> sorted = t.decode_step_s;
  std::sort(sorted.begin(), sorted.end());
  const double median_step_s = sorted.empty() ? 0.0 : sorted[sorted.size() / 2];
  const double prefill_tokens = static_cast<double>(a.batch) * a.prompt_len;
  const double decode_tokens = static_cast<double>(a.batch) * (a.gen_len - 1);
  const double prefill_tps = t.prefill_s > 0 ? prefill_tokens / t.prefill_s : 0.0;
  const double decode_tps = decode_s > 0 ? decode_tokens / decode_s : 0.0;
  const runtime::MemoryUsage mem = (*engine)->memory_usage();

  nlohmann::json j;
  j["benchmark"] = "engine";
  j["commit"] = source_commit();
  j["command"] = command_line();
  j["model"] = a.model_dir;
  j["architecture"] = std::string(model::architecture_name(config->architecture));
  j["parameters"] = config->num_parameters();
  j["shape"] = {{"vocab_size", config->vocab_size},
                {"hidden_size", config->hidden_size},
                {"intermediate_size", config->intermediate_size},
                {"num_layers", config->num_layers},
                {"num_heads", config->num_heads},
                {"num_kv_heads", config->num_kv_heads},
                {"head_dim", config->head_dim},
                {"tie_word_embeddings", config->tie_word_embeddings},
                {"torch_dtype", std::string(dtype_name(config->torch_dtype))}};
  j["device"] = (*engine)->device_name();
  // FP8 projections run on CUDA only; elsewhere the dtype the memory plan resolved.
  j["dtype"] = o.quantize_fp8 || config->quantization.quantized()
                   ? std::string("fp8")
                   : std::string(runtime::weight_dtype_name((*engine)->memory_plan().weight_dtype));
  j["batch"] = a.batch;
  j["prompt_len"] = a.prompt_len;
  j["gen_len"] = a.gen_len;
  j["warmup_rounds"] = a.warmup;
  j["load_seconds"] = load_s;
  j["weights_bytes"] = mem.weights_bytes;
  j["kv_cache_bytes"] = mem.kv_cache_bytes;
  j["prefill_steps"] = t.prefill_steps;
  j["prefill_seconds"] = t.prefill_s;
  j["prefill_tokens_per_s"] = prefill_tps;
  j["decode_seconds"] = decode_s;
  j["decode_tokens_per_s"] = decode_tps;
  j["decode_ms_per_step"] = a.gen_len > 1 ? 1000.0 * decode_s / (a.gen_len - 1) : 0.0;
  j["decode_median_ms_per_step"] = 1000.0 * median_step_s;

  std::printf("model   %s (%s, %lld parameters)\n", a.model_dir.c_str(), j["architecture"].get<std::string>().c_str(),
              static_cast<long long>(config->num_parameters()));
  std::printf("device  %s  (commit %s, load %.2fs, %d warm-up round%s)\n", (*engine)->device_name().c_str(),
              j["commit"].get<std::string>().c_str(), load_s, a.warmup, a.warmup == 1 ? "" : "s");
  std::printf("dtype   %s  (weights %.1f MB)\n", j["dtype"].get<std::string>().c_str(), mem.weights_bytes / 1e6);
  std::printf("%-8s %-8s %-10s %-8s %14s %14s %14s %14s\n", "batch", "prompt", "generated", "phase", "tokens", "seconds",
              "tokens/s", "median ms/step");
  std::printf("%-8d %-8d %-10d %-8s %14.0f %14.3f %14.1f %14s\n", a.batch, a.prompt_len, a.gen_len, "prefill",
              prefill_tokens, t.prefill_s, prefill_tps, "");
  std::printf("%-8d %-8d %-10d %-8s %14.0f %14.3f %14.1f %14.3f\n", a.batch, a.prompt_len, a.gen_len, "decode",
              decode_tokens, decode_s, decode_tps, 1000.0 * median_step_s);
  std::printf("%s\n", j.dump().c_str());
  if (!a.json_out.empty()) {
    const Status st = write_file_atomic(a.json_out, j.dump(2) + "\n");
    if (!st.is_ok()) return fail(st);
  }
  return 0;
}

KILN_REGISTER_COMMAND(kBench, "bench", "Benchmarks: the offline engine (kiln bench --model DIR) and nested ones",
                      [](CLI::App& sub) -> std::function<int()> {
                        auto a = std::make_shared<BenchArgs>();
                        sub.add_option("--model", a->model_dir, "Model directory (offline engine benchmark)");
                        sub.add_option("--device", a->device,
                                       "auto, cpu or cuda (auto: cuda when this kiln has it and a device is present)")
                            ->capture_default_str();
                        sub.add_option("--warmup", a->warmup, "Untimed rounds of the same scenario first")
                            ->capture_default_str();
                        sub.add_option("--batch", a->batch, "Sequences run together")->capture_default_str();
                        sub.add_option("--prompt-len", a->prompt_len, "Prompt tokens per sequence")->capture_default_str();
                        sub.add_option("--gen-len", a->gen_len, "Tokens generated per sequence")->capture_default_str();
                        sub.add_option("--threads", a->threads, "CPU threads; 0 = all cores")->capture_default_str();
                        add_dtype_options(sub, &a->dtype, &a->quantize);
                        sub.add_option("--max-batched-tokens", a->max_batched_tokens, "Most tokens per step")
                            ->capture_default_str();
                        sub.add_option("--seed", a->seed, "Seed of the random prompts")->capture_default_str();
                        sub.add_option("--json-out", a->json_out, "Also write the JSON result to this file");
                        sub.require_subcommand(0, 1);
                        auto nested = std::make_shared<std::function<int()>>();
                        for (const Command& c : bench_commands()) {
                          CLI::App* n = sub.add_subcommand(c.name, c.description);
                          auto fn = c.setup(*n);
                          n->callback([nested, fn] { *nested = fn; });
                        }
                        return [a, nested] { return *nested ? (*nested)() : run(*a); };
                      });

}  // namespace
}  // namespace kiln::app
