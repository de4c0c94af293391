// The experts' grouped GEMMs on CUDA (ops::moe_grouped_linear[_swiglu], backend/cuda/moe_gemm.cu)
// against the CPU's per-expert ops over the same bf16 inputs, through both kernels (the tiles and
// the rows kernel, its runs whole or cut): skewed routing (every row to one expert), empty experts,
// one row per expert (decode), runs crossing the tiled kernel's 32-row tiles, widths and depths
// that are not multiples of its 64-column tiles and 128-deep stages, and 8 and 128 experts. Then a whole MoE layer on CUDA (grouped) against the CPU (per expert), and captured into
// a CUDA graph. Skips without a GPU.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "cuda_test_util.h"
#include "engine_test_util.h"
#include "kiln/model/checkpoint.h"
#include "kiln/model/config.h"
#include "kiln/runtime/backend/cuda/moe_cuda.h"
#include "kiln/runtime/models/moe_block.h"
#include "kiln/runtime/ops/linear.h"
#include "kiln/runtime/ops/moe.h"
#include "kiln/runtime/ops/swiglu.h"

namespace kiln::runtime {
namespace {

using testing::bf16_round;
using testing::random_bf16;

Tensor host(std::vector<float>& v, std::initializer_list<int64_t> shape) {
  return Tensor(v.data(), DType::kF32, Device::cpu(), shape);
}

struct GroupCase {
  std::string name;
  int64_t k, n;                 // each expert's weight is [n, k]; swiglu: n = 2 I
  std::vector<int64_t> counts;  // rows per expert, in expert order
};

std::vector<int64_t> spread(int64_t experts, const std::vector<std::pair<int64_t, int64_t>>& at) {
  std::vector<int64_t> c(static_cast<size_t>(experts), 0);
  for (auto [e, rows] : at) c[static_cast<size_t>(e)] = rows;
  return c;
}

std::vector<GroupCase> cases() {
  std::vector<GroupCase> cs;
  cs.push_back({"E=8 all 37 rows to expert 2", 64, 64, spread(8, {{2, 37}})});
  cs.push_back({"E=8 decode top-2", 128, 96, spread(8, {{1, 1}, {6, 1}})});
  cs.push_back({"E=8 every expert, 1..70 rows", 72, 200, {1, 70, 0, 33, 32, 31, 64, 2}});
  cs.push_back({"E=128 decode top-8", 256, 160, spread(128, {{0, 1}, {3, 1}, {9, 1}, {64, 1}, {65, 1}, {100, 1}, {126, 1}, {127, 1}})});
  cs.push_back({"E=128 decode batch 4 (shared experts)", 96, 72, spread(128, {{5, 4}, {7, 2}, {8, 1}, {127, 25}})});
  std::vector<int64_t> c128(128);
  std::mt19937 rng(7);
  for (auto& c : c128) c = rng() % 3 == 0 ? 0 : static_cast<int64_t>(rng() % 12);
  c128[40] = 100;  // four tiles, the last partial
  cs.push_back({"E=128 prefill, random counts", 200, 136, c128});
  cs.push_back({"E=128 all rows to the last expert", 8, 2, spread(128, {{127, 65}})});
  cs.push_back({"E=8 Qwen3-30B-A3B gate/up depth, decode", 2048, 1536, spread(8, {{0, 1}, {2, 1}, {3, 1}, {7, 1}})});
  return cs;
}

class CudaMoeGemmTest : public testing::CudaTest {
 protected:
  // Per-expert bf16 weights [n, k] on the CPU (f32) and on the GPU, with the GPU's table.
  struct Experts {
    std::vector<std::vector<float>> w;
    std::vector<ops::LinearWeight> cpu, gpu;
    ops::GroupedLinearWeight table;
  };
  Experts make_experts(int64_t e, int64_t n, int64_t k, uint32_t seed) {
    Experts x;
    for (int64_t i = 0; i < e; ++i) {
      x.w.push_back(random_bf16(static_cast<size_t>(n * k), seed + static_cast<uint32_t>(i),
                                1.0f / std::sqrt(static_cast<float>(k))));
      const HostMatrix m{x.w.back().data(), DType::kF32, n, k, str_cat("expert ", i)};
      auto c = ops::load_linear_weight(cpu_, std::span<const HostMatrix>(&m, 1));
      auto g = ops::load_linear_weight(gpu_, std::span<const HostMatrix>(&m, 1));
      EXPECT_TRUE(c.is_ok() && g.is_ok());
      x.cpu.push_back(std::move(c).value());
      x.gpu.push_back(std::move(g).value());
    }
    EXPECT_TRUE(ops::grouped_linear_supported(gpu_, x.gpu));
    auto t = ops::group_linear_weights(gpu_, x.gpu);
    EXPECT_TRUE(t.is_ok()) << t.status().to_string();
    x.table = std::move(t).value();
    return x;
  }

  // Runs the grouped op over `c` and checks every row of an expert against the CPU's per-expert op,
  // and that the rows past the experts' runs stay untouched (poisoned).
  void check(const GroupCase& c, bool swiglu, uint32_t seed) {
    const int64_t e = static_cast<int64_t>(c.counts.size());
    const int64_t rows = std::accumulate(c.counts.begin(), c.counts.end(), int64_t{0});
    constexpr int64_t kSpare = 3;  // rows past the last run
    const int64_t p = rows + kSpare, cols = swiglu ? c.n / 2 : c.n;
    const std::string what = str_cat(c.name, swiglu ? " swiglu" : " linear", " n=", c.n, " k=", c.k);
    Experts ex = make_experts(e, c.n, c.k, seed);
    // The rows of x are tokens' rows, several sorted rows reading one token as in a real step: x[r]
    // = xt[x_row[r]] for `tokens` rows of xt. The kernels read either x or xt through x_row.
    const int64_t tokens = std::max<int64_t>(1, p / 3);
    std::vector<float> xt = random_bf16(static_cast<size_t>(tokens * c.k), seed + 1000, 1.0f);
    std::vector<int32_t> x_row(static_cast<size_t>(p));
    std::mt19937 pick(seed);
    for (int32_t& t : x_row) t = static_cast<int32_t>(pick() % static_cast<uint32_t>(tokens));
    std::vector<float> x(static_cast<size_t>(p * c.k));
    for (int64_t r = 0; r < p; ++r)
      std::copy_n(xt.begin() + x_row[static_cast<size_t>(r)] * c.k, c.k, x.begin() + r * c.k);
    std::vector<int32_t> start(static_cast<size_t>(e + 1), 0);
    for (int64_t i = 0; i < e; ++i) start[static_cast<size_t>(i + 1)] = start[static_cast<size_t>(i)] + static_cast<int32_t>(c.counts[static_cast<size_t>(i)]);

    // The CPU, expert by expert: the f32 product rounded to bf16 (the GPU's product), then the
    // SwiGLU of those bf16 values rounded to bf16.
    std::vector<float> want(static_cast<size_t>(rows * cols));
    for (int64_t i = 0; i < e; ++i) {
      const int64_t first = start[static_cast<size_t>(i)], count = c.counts[static_cast<size_t>(i)];
      if (count == 0) continue;
      std::vector<float> xi(x.begin() + first * c.k, x.begin() + (first + count) * c.k);
      std::vector<float> prod(static_cast<size_t>(count * c.n));
      ASSERT_TRUE(ops::linear(cpu_, host(xi, {count, c.k}), ex.cpu[static_cast<size_t>(i)], host(prod, {count, c.n})).is_ok());
      prod = bf16_round(std::move(prod));
      std::vector<float> out(static_cast<size_t>(count * cols));
      if (swiglu) {
        ASSERT_TRUE(ops::swiglu(cpu_, host(prod, {count, c.n}), host(out, {count, cols})).is_ok());
        out = bf16_round(std::move(out));
      } else {
        out = prod;
      }
      std::copy(out.begin(), out.end(), want.begin() + first * cols);
    }

    Buffer xg = upload(x, DType::kBF16, {p, c.k});
    Buffer xtg = upload(xt, DType::kBF16, {tokens, c.k});
    Buffer rg = upload_i32(x_row);
    Buffer sg = upload_i32(start);
    const int64_t most = *std::max_element(c.counts.begin(), c.counts.end());
    // Both kernels; the rows kernel with runs that hold each expert's rows whole (max_rows = the
    // largest count) and cut into runs of one row (max_rows 1 although experts have more: the
    // bound picks the kernel, never the values); and the ops' own choice.
    struct Variant {
      const char* name;
      cuda::MoeGemmPath path;
      int64_t max_rows;
    };
    const Variant variants[] = {{"tiles", cuda::MoeGemmPath::kTiles, 0},
                                {"rows", cuda::MoeGemmPath::kRows, most},
                                {"rows of 1", cuda::MoeGemmPath::kRows, 1},
                                {"rows of 8", cuda::MoeGemmPath::kRows, 0},
                                {"auto", cuda::MoeGemmPath::kAuto, most}};
    for (const Variant& v : variants) for (const bool gather : {false, true}) {
      const std::string vwhat = str_cat(what, " [", v.name, gather ? ", gathered" : "", "]");
      Buffer og = poisoned(DType::kBF16, {p, cols});
      const Tensor& xin = gather ? xtg.tensor() : xg.tensor();
      const Tensor rows_of_x = rg.tensor();
      const Tensor* xr = gather ? &rows_of_x : nullptr;
      const Status st =
          v.path == cuda::MoeGemmPath::kAuto
              ? (swiglu ? ops::moe_grouped_linear_swiglu(gpu_, xin, sg.tensor(), ex.table, og.tensor(), v.max_rows, xr)
                        : ops::moe_grouped_linear(gpu_, xin, sg.tensor(), ex.table, og.tensor(), v.max_rows, xr))
              : cuda::moe_grouped_linear(gpu_, xin, sg.tensor(), ex.table, swiglu, og.tensor(), v.max_rows, v.path, xr);
      ASSERT_TRUE(st.is_ok()) << vwhat << ": " << st.to_string();
      std::vector<float> got = download(og.tensor());
      for (size_t i = static_cast<size_t>(rows * cols); i < got.size(); ++i)
        ASSERT_TRUE(std::isnan(got[i])) << vwhat << ": element " << i << " past the experts' rows was written";
      got.resize(static_cast<size_t>(rows * cols));
      testing::expect_close(got, want, 1e-2, 1e-2, vwhat);
    }
  }
};

TEST_F(CudaMoeGemmTest, GroupedSwigluMatchesCpuPerExpert) {
  uint32_t seed = 1;
  for (const GroupCase& c : cases()) check(c, true, seed += 300);
}

TEST_F(CudaMoeGemmTest, GroupedLinearMatchesCpuPerExpert) {
  uint32_t seed = 50000;
  for (const GroupCase& c : cases()) check(c, false, seed += 300);
}

// A step's rows fewer than the workspace's, and no rows at all: nothing is read or written.
TEST_F(CudaMoeGemmTest, NoRowsWritesNothing) {
  Experts ex = make_experts(8, 64, 64, 9);
  Buffer xg = upload(std::vector<float>(64, 1.0f), DType::kBF16, {1, 64});
  Buffer sg = upload_i32(std::vector<int32_t>(9, 0));
  Buffer og = poisoned(DType::kBF16, {1, 32});
  ASSERT_TRUE(ops::moe_grouped_linear_swiglu(gpu_, xg.tensor(), sg.tensor(), ex.table, og.tensor()).is_ok());
  for (float v : download(og.tensor())) EXPECT_TRUE(std::isnan(v));
}

// What the grouped GEMMs cannot take is refused where the weights are grouped, with the reason.
TEST_F(CudaMoeGemmTest, RefusesDepthsNotAMultipleOf8AndTheCpu) {
  std::vector<float> w = random_bf16(4 * 12, 3);
  const HostMatrix m{w.data(), DType::kF32, 4, 12, "w"};
  std::vector<ops::LinearWeight> gpu;
  gpu.push_back(std::move(ops::load_linear_weight(gpu_, std::span<const HostMatrix>(&m, 1))).value());
  EXPECT_FALSE(ops::grouped_linear_supported(gpu_, gpu));
  auto g = ops::group_linear_weights(gpu_, gpu);
  ASSERT_FALSE(g.is_ok());
  EXPECT_NE(g.status().message().find("multiple of 8"), std::string::npos) << g.status().to_string();
  std::vector<ops::LinearWeight> cpu;
  cpu.push_back(std::move(ops::load_linear_weight(cpu_, std::span<const HostMatrix>(&m, 1))).value());
  EXPECT_FALSE(ops::grouped_linear_supported(cpu_, cpu));
}

// A whole MoE layer: CUDA (grouped GEMMs, no host round trip) against the CPU (per expert). The
// residual starts at zero so that the layer's output is compared, not the residual's rounding.
// Tokens whose top-k differ between the bf16 and f32 routers (near ties) are not compared; every
// other token's output must agree to bf16 accuracy.
class CudaMoeBlockTest : public testing::CudaTest, public ::testing::WithParamInterface<std::string> {
 protected:
  // The first sparse layer of the preset, on the CPU and on CUDA.
  void load() {
    const auto dir = testing::tiny_model(GetParam(), 4);
    auto config = model::load_model_config(dir);
    ASSERT_TRUE(config.is_ok()) << config.status().to_string();
    c_ = *config;
    auto ck = model::Checkpoint::open(dir);
    ASSERT_TRUE(ck.is_ok());
    int64_t layer = 0;
    while (layer < c_.num_layers && !c_.layer_is_sparse(layer)) ++layer;
    ASSERT_LT(layer, c_.num_layers);
    const std::string prefix = str_cat("model.layers.", layer, ".");
    auto cpu_block = models::MoeBlock::load(cpu_, c_, **ck, prefix);
    auto gpu_block = models::MoeBlock::load(gpu_, c_, **ck, prefix);
    ASSERT_TRUE(cpu_block.is_ok() && gpu_block.is_ok());
    cpu_block_ = std::make_unique<models::MoeBlock>(std::move(cpu_block).value());
    gpu_block_ = std::make_unique<models::MoeBlock>(std::move(gpu_block).value());
  }
  void write_bf16(const std::vector<float>& v, const Tensor& t) {
    std::vector<uint16_t> h(v.size());
    for (size_t i = 0; i < v.size(); ++i) h[i] = f32_to_bf16(v[i]);
    ASSERT_TRUE(copy_to_device(gpu_, h.data(), t).is_ok());
    ASSERT_TRUE(synchronize(gpu_).is_ok());
  }

  model::ModelConfig c_;
  std::unique_ptr<models::MoeBlock> cpu_block_, gpu_block_;
};

TEST_P(CudaMoeBlockTest, GroupedLayerMatchesCpu) {
  ASSERT_NO_FATAL_FAILURE(load());
  const model::ModelConfig& c = c_;
  models::MoeBlock* cpu_block = cpu_block_.get();
  models::MoeBlock* gpu_block = gpu_block_.get();
  EXPECT_FALSE(cpu_block->grouped());
  ASSERT_TRUE(gpu_block->grouped()) << "plain bf16 experts on CUDA take the grouped GEMMs";
  const int64_t h = c.hidden_size, k = c.num_experts_per_tok;
  uint32_t seed = 11;
  for (const int64_t n : {1, 3, 40, 300}) {
    SCOPED_TRACE(str_cat(GetParam(), " n=", n));
    std::vector<float> x = random_bf16(static_cast<size_t>(n * h), seed++, 1.0f);
    models::MoeWorkspace cws, gws;
    ASSERT_TRUE(cws.ensure(cpu_, c, n).is_ok());
    ASSERT_TRUE(gws.ensure(gpu_, c, n).is_ok());
    std::vector<float> want(static_cast<size_t>(n * h), 0.0f);
    ASSERT_TRUE(cpu_block->forward(cpu_, host(x, {n, h}), cws, host(want, {n, h})).is_ok());
    Buffer xg = upload(x, DType::kBF16, {n, h});
    Buffer og = upload(std::vector<float>(static_cast<size_t>(n * h), 0.0f), DType::kBF16, {n, h});
    const Status st = gpu_block->forward(gpu_, xg.tensor(), gws, og.tensor());
    ASSERT_TRUE(st.is_ok()) << st.to_string();
    const std::vector<float> got = download(og.tensor());
    std::vector<int32_t> gpu_ids(static_cast<size_t>(n * k));
    ASSERT_TRUE(copy_to_host(gpu_, gws.topk_ids.tensor().rows(0, n), gpu_ids.data()).is_ok());
    ASSERT_TRUE(synchronize(gpu_).is_ok());
    const int32_t* cpu_ids = cws.topk_ids.tensor().data<int32_t>();
    int64_t compared = 0;
    for (int64_t t = 0; t < n; ++t) {
      std::vector<int32_t> a(cpu_ids + t * k, cpu_ids + (t + 1) * k), b(gpu_ids.begin() + t * k, gpu_ids.begin() + (t + 1) * k);
      std::sort(a.begin(), a.end());
      std::sort(b.begin(), b.end());
      if (a != b) continue;
      ++compared;
      double err = 0, norm = 0;
      for (int64_t i = t * h; i < (t + 1) * h; ++i) {
        err += std::pow(got[static_cast<size_t>(i)] - want[static_cast<size_t>(i)], 2);
        norm += std::pow(want[static_cast<size_t>(i)], 2);
      }
      EXPECT_LT(std::sqrt(err / std::max(norm, 1e-30)), 3e-2) << "token " << t;
    }
    EXPECT_GE(compared * 4, n * 3) << "the routers disagree on too many tokens";
  }
}

// The layer reads nothing on the host mid-step: its launches capture into a CUDA graph (a stream
// sync or a device-to-host read would end the capture with an error), and the graph replayed on
// other inputs, so other routing and other experts' row counts, gives bitwise the eager result.
TEST_P(CudaMoeBlockTest, GroupedLayerCapturesIntoAGraph) {
  ASSERT_NO_FATAL_FAILURE(load());
  const int64_t n = 5, h = c_.hidden_size;
  models::MoeWorkspace ws;
  ASSERT_TRUE(ws.ensure(gpu_, c_, n).is_ok());
  Buffer xg = upload(random_bf16(static_cast<size_t>(n * h), 1, 1.0f), DType::kBF16, {n, h});
  Buffer og = poisoned(DType::kBF16, {n, h});
  ASSERT_TRUE(fill_zero(gpu_, og.tensor()).is_ok());
  ASSERT_TRUE(gpu_block_->forward(gpu_, xg.tensor(), ws, og.tensor()).is_ok());  // plans chosen outside
  ASSERT_TRUE(synchronize(gpu_).is_ok());

  const auto stream = static_cast<cudaStream_t>(gpu_.stream);
  ASSERT_EQ(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal), cudaSuccess);
  const Status st = gpu_block_->forward(gpu_, xg.tensor(), ws, og.tensor());
  cudaGraph_t graph = nullptr;
  const cudaError_t end = cudaStreamEndCapture(stream, &graph);
  ASSERT_TRUE(st.is_ok()) << st.to_string();
  ASSERT_EQ(end, cudaSuccess) << cudaGetErrorString(end);
  cudaGraphExec_t exec = nullptr;
  ASSERT_EQ(cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);

  for (uint32_t seed : {2u, 3u}) {
    const std::vector<float> x = random_bf16(static_cast<size_t>(n * h), seed, 2.0f);
    ASSERT_NO_FATAL_FAILURE(write_bf16(x, xg.tensor()));
    ASSERT_TRUE(fill_zero(gpu_, og.tensor()).is_ok());
    ASSERT_EQ(cudaGraphLaunch(exec, stream), cudaSuccess);
    const std::vector<float> replayed = download(og.tensor());
    ASSERT_TRUE(fill_zero(gpu_, og.tensor()).is_ok());
    ASSERT_TRUE(gpu_block_->forward(gpu_, xg.tensor(), ws, og.tensor()).is_ok());
    const std::vector<float> eager = download(og.tensor());
    EXPECT_EQ(replayed, eager) << "seed " << seed;
    EXPECT_GT(testing::max_abs(eager), 0.0) << "seed " << seed;
  }
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
}

INSTANTIATE_TEST_SUITE_P(Presets, CudaMoeBlockTest, ::testing::Values("tiny-qwen3-moe", "tiny-mixtral"),
                         testing::preset_test_name);

}  // namespace
}  // namespace kiln::runtime
