// kiln bench: the offline engine benchmark (`kiln bench --model DIR`): prefill and decode speed of
// a batch of random prompts, as a table and as JSON. Nested `kiln bench <name>` commands come from
// bench_command.h.
#include <chrono>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench_command.h"
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
  std::string model_dir, json_out;
  int batch = 1, prompt_len = 128, gen_len = 128, threads = 0;
  int max_batched_tokens = 8192;
  uint64_t seed = 0;
};

int fail(const Status& s) {
  std::fprintf(stderr, "kiln bench: %s\n", s.to_string().c_str());
  return 1;
}

int run(const BenchArgs& a) {
  if (a.model_dir.empty()) return fail(invalid_argument("--model is required (or name a nested benchmark: kiln bench --help)"));
  if (a.batch < 1 || a.prompt_len < 1 || a.gen_len < 1 || a.max_batched_tokens < 1)
    return fail(invalid_argument("--batch, --prompt-len, --gen-len and --max-batched-tokens must be at least 1"));
  auto config = model::load_model_config(a.model_dir);
  if (!config.is_ok()) return fail(config.status());
  runtime::EngineOptions o;
  o.num_threads = a.threads;
  o.max_seqs = a.batch;
  o.max_model_len = a.prompt_len + a.gen_len;
  o.max_batched_tokens = a.max_batched_tokens;
  const auto load_start = std::chrono::steady_clock::now();
  auto engine = runtime::Engine::load(a.model_dir, o);
  if (!engine.is_ok()) return fail(engine.status());
  const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - load_start).count();

  runtime::StaticBatch batch(**engine, o.max_batched_tokens);
  std::mt19937_64 rng(a.seed);
  for (int i = 0; i < a.batch; ++i) {
    std::vector<int32_t> prompt(static_cast<size_t>(a.prompt_len));
    for (auto& t : prompt) t = static_cast<int32_t>(rng() % static_cast<uint64_t>(config->vocab_size));
    runtime::SamplingParams greedy;
    greedy.temperature = 0.0f;
    batch.add(std::move(prompt), greedy);
  }
  // Prefill: every step until each sequence has its first token.
  auto clock = [] { return std::chrono::steady_clock::now(); };
  const auto t0 = clock();
  int prefill_steps = 0;
  for (;;) {
    bool any = false;
    for (int i = 0; i < a.batch; ++i) any = any || batch.generated(i) == 0;
    if (!any) break;
    auto s = batch.step(0, false);
    if (!s.is_ok()) return fail(s.status());
    ++prefill_steps;
  }
  const auto t1 = clock();
  for (int step = 1; step < a.gen_len; ++step) {
    auto s = batch.step(0, false);
    if (!s.is_ok()) return fail(s.status());
  }
  const auto t2 = clock();
  const double prefill_s = std::chrono::duration<double>(t1 - t0).count();
  const double decode_s = std::chrono::duration<double>(t2 - t1).count();
  const double prefill_tokens = static_cast<double>(a.batch) * a.prompt_len;
  const double decode_tokens = static_cast<double>(a.batch) * (a.gen_len - 1);
  const double prefill_tps = prefill_s > 0 ? prefill_tokens / prefill_s : 0.0;
  const double decode_tps = decode_s > 0 ? decode_tokens / decode_s : 0.0;

  nlohmann::json j;
  j["benchmark"] = "engine";
  j["model"] = a.model_dir;
  j["architecture"] = std::string(model::architecture_name(config->architecture));
  j["parameters"] = config->num_parameters();
  j["device"] = (*engine)->device_name();
  j["batch"] = a.batch;
  j["prompt_len"] = a.prompt_len;
  j["gen_len"] = a.gen_len;
  j["load_seconds"] = load_s;
  j["prefill_steps"] = prefill_steps;
  j["prefill_seconds"] = prefill_s;
  j["prefill_tokens_per_s"] = prefill_tps;
  j["decode_seconds"] = decode_s;
  j["decode_tokens_per_s"] = decode_tps;
  j["decode_ms_per_step"] = a.gen_len > 1 ? 1000.0 * decode_s / (a.gen_len - 1) : 0.0;

  std::printf("model   %s (%s, %lld parameters)\n", a.model_dir.c_str(), j["architecture"].get<std::string>().c_str(),
              static_cast<long long>(config->num_parameters()));
  std::printf("device  %s\n", (*engine)->device_name().c_str());
  std::printf("%-8s %-8s %-10s %-8s %14s %14s %14s\n", "batch", "prompt", "generated", "phase", "tokens", "seconds",
              "tokens/s");
  std::printf("%-8d %-8d %-10d %-8s %14.0f %14.3f %14.1f\n", a.batch, a.prompt_len, a.gen_len, "prefill", prefill_tokens,
              prefill_s, prefill_tps);
  std::printf("%-8d %-8d %-10d %-8s %14.0f %14.3f %14.1f\n", a.batch, a.prompt_len, a.gen_len, "decode", decode_tokens,
              decode_s, decode_tps);
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
                        sub.add_option("--batch", a->batch, "Sequences run together")->capture_default_str();
                        sub.add_option("--prompt-len", a->prompt_len, "Prompt tokens per sequence")->capture_default_str();
                        sub.add_option("--gen-len", a->gen_len, "Tokens generated per sequence")->capture_default_str();
                        sub.add_option("--threads", a->threads, "CPU threads; 0 = all cores")->capture_default_str();
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
