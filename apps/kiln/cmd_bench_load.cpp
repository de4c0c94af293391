// `kiln bench load --model DIR`: how long loading a checkpoint takes and the bytes per second it
// reaches (checkpoint bytes over the time from Engine::load's call to its return: reading, converting
// and uploading the weights, allocating the KV cache). Each run loads from scratch; the first may
// read from disk, later ones from the page cache, so both are shown.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench_command.h"
#include "dtype_option.h"
#include "kiln/core/file.h"
#include "kiln/core/str.h"
#include "kiln/model/checkpoint.h"
#include "kiln/model/config.h"
#include "kiln/runtime/engine.h"
#include "kiln/text/tokenizer.h"

namespace kiln::app {
namespace {

struct LoadBenchArgs {
  std::string model_dir, device = "cpu", kv_cache_memory = "256MiB", json_out, dtype = "auto", quantize;
  int device_index = 0, threads = 0, repeat = 3, max_seqs = 16;
  int64_t max_model_len = 2048;
};

int fail(const Status& s) {
  std::fprintf(stderr, "kiln bench load: %s\n", s.to_string().c_str());
  return 1;
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

int run(const LoadBenchArgs& a) {
  if (a.model_dir.empty()) return fail(invalid_argument("--model is required"));
  if (a.repeat < 1) return fail(invalid_argument("--repeat must be at least 1"));
  if (a.device != "cpu" && a.device != "cuda") return fail(invalid_argument("--device: use cpu or cuda"));
  long long kv = 0;
  if (!parse_bytes(a.kv_cache_memory, &kv) || kv <= 0) return fail(invalid_argument("--kv-cache-memory: not a size"));
  auto config = model::load_model_config(a.model_dir);
  if (!config.is_ok()) return fail(config.status());
  uint64_t checkpoint_bytes = 0;
  {
    auto ck = model::Checkpoint::open(a.model_dir);
    if (!ck.is_ok()) return fail(ck.status());
    checkpoint_bytes = (*ck)->total_bytes();
  }
  runtime::EngineOptions o;
  o.device = a.device == "cuda" ? runtime::DeviceKind::kCuda : runtime::DeviceKind::kCpu;
  o.device_index = a.device_index;
  o.num_threads = a.threads;
  o.max_model_len = a.max_model_len;
  o.max_seqs = a.max_seqs;
  o.kv_cache_bytes = kv;
  auto weights = chosen_weights(a.dtype, a.quantize);
  if (!weights.is_ok()) return fail(weights.status());
  o.weight_dtype = weights->dtype;
  o.quantize_fp8 = weights->fp8;

  const auto tok_start = std::chrono::steady_clock::now();
  auto tok = text::Tokenizer::load(a.model_dir);
  const double tokenizer_s = seconds_since(tok_start);
  if (!tok.is_ok()) return fail(tok.status());

  std::printf("model       %s (%s, %lld parameters)\n", a.model_dir.c_str(),
              std::string(model::architecture_name(config->architecture)).c_str(),
              static_cast<long long>(config->num_parameters()));
  std::printf("checkpoint  %s of tensors\n", format_bytes(double(checkpoint_bytes)).c_str());
  std::printf("tokenizer   %.3f s\n", tokenizer_s);
  std::printf("%-5s %10s %14s %14s %14s %14s\n", "run", "seconds", "GB/s", "weights", "kv cache", "workspace");
  nlohmann::json runs = nlohmann::json::array();
  std::string device_name, dtype;
  double best = 0;
  for (int i = 0; i < a.repeat; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    auto engine = runtime::Engine::load(a.model_dir, o);
    const double s = seconds_since(t0);
    if (!engine.is_ok()) return fail(engine.status());
    const runtime::MemoryUsage m = (*engine)->memory_usage();
    device_name = (*engine)->device_name();
    dtype = runtime::weight_dtype_name((*engine)->memory_plan().weight_dtype);
    const double gbps = s > 0 ? static_cast<double>(checkpoint_bytes) / s / 1e9 : 0.0;
    best = std::max(best, gbps);
    std::printf("%-5d %10.3f %14.2f %14s %14s %14s\n", i + 1, s, gbps, format_bytes(double(m.weights_bytes)).c_str(),
                format_bytes(double(m.kv_cache_bytes)).c_str(), format_bytes(double(m.workspace_bytes)).c_str());
    runs.push_back({{"seconds", s},
                    {"bytes_per_second", s > 0 ? static_cast<double>(checkpoint_bytes) / s : 0.0},
                    {"weights_bytes", m.weights_bytes},
                    {"kv_cache_bytes", m.kv_cache_bytes},
                    {"workspace_bytes", m.workspace_bytes}});
  }
  std::printf("device      %s\n", device_name.c_str());
  nlohmann::json j = {{"benchmark", "load"},
                      {"model", a.model_dir},
                      {"device", device_name},
                      {"dtype", dtype},
                      {"checkpoint_bytes", checkpoint_bytes},
                      {"tokenizer_seconds", tokenizer_s},
                      {"best_bytes_per_second", best * 1e9},
                      {"runs", runs}};
  std::printf("%s\n", j.dump().c_str());
  if (!a.json_out.empty()) {
    const Status st = write_file_atomic(a.json_out, j.dump(2) + "\n");
    if (!st.is_ok()) return fail(st);
  }
  return 0;
}

KILN_REGISTER_BENCH_COMMAND(kBenchLoad, "load", "Time to load a checkpoint and the bytes/s reached",
                            [](CLI::App& sub) -> std::function<int()> {
  auto a = std::make_shared<LoadBenchArgs>();
  sub.add_option("--model", a->model_dir, "Model directory (Hugging Face layout)")->required();
  sub.add_option("--device", a->device, "cpu or cuda")->capture_default_str();
  sub.add_option("--device-index", a->device_index, "CUDA device index")->capture_default_str();
  sub.add_option("--threads", a->threads, "CPU threads; 0 = all cores")->capture_default_str();
  sub.add_option("--repeat", a->repeat, "Loads to time")->capture_default_str();
  sub.add_option("--max-model-len", a->max_model_len, "Context length the engine is built for")->capture_default_str();
  sub.add_option("--max-seqs", a->max_seqs, "Sequences the engine is built for")->capture_default_str();
  sub.add_option("--kv-cache-memory", a->kv_cache_memory, "KV cache size")->capture_default_str();
  sub.add_option("--json-out", a->json_out, "Also write the JSON result to this file");
  add_dtype_options(sub, &a->dtype, &a->quantize);
  return [a] { return run(*a); };
});

}  // namespace
}  // namespace kiln::app
