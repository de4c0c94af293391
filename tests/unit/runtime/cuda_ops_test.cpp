// Every CUDA op against the CPU op on fresh random inputs of several shapes: outputs poisoned
// first, every element checked, bf16 tolerances.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <random>

#include "cuda_test_util.h"
#include "kiln/runtime/backend/cuda/gemm.h"
#include "kiln/runtime/ops/embedding.h"
#include "kiln/runtime/ops/gather_rows.h"
#include "kiln/runtime/ops/linear.h"
#include "kiln/runtime/ops/paged_attention.h"
#include "kiln/runtime/ops/qkv_rope.h"
#include "kiln/runtime/ops/rms_norm.h"
#include "kiln/runtime/ops/swiglu.h"
#include "kiln/runtime/rope.h"
#include "kiln/runtime/weights.h"

namespace kiln::runtime {
namespace {

using testing::bf16_round;
using testing::expect_close;
using testing::max_abs;
using testing::random_bf16;

class CudaOpsTest : public testing::CudaTest {};

Tensor host(std::vector<float>& v, std::initializer_list<int64_t> shape) {
  return Tensor(v.data(), DType::kF32, Device::cpu(), shape);
}
Tensor host_i32(std::vector<int32_t>& v) {
  return Tensor(v.data(), DType::kI32, Device::cpu(), {static_cast<int64_t>(v.size())});
}

TEST_F(CudaOpsTest, EmbeddingMatchesCpu) {
  uint32_t seed = 1;
  for (auto [vocab, hidden, n] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{{300, 64, 1}, {300, 36, 7}, {1000, 2048, 33}}) {
    std::vector<float> table = random_bf16(static_cast<size_t>(vocab * hidden), seed++);
    std::vector<int32_t> ids(static_cast<size_t>(n));
    std::mt19937 rng(seed++);
    for (int32_t& id : ids) id = static_cast<int32_t>(rng() % vocab);
    std::vector<float> want(static_cast<size_t>(n * hidden));
    ASSERT_TRUE(ops::embedding(cpu_, host_i32(ids), host(table, {vocab, hidden}), host(want, {n, hidden})).is_ok());
    Buffer t = upload(table, DType::kBF16, {vocab, hidden});
    Buffer i = upload_i32(ids);
    Buffer out = poisoned(DType::kBF16, {n, hidden});
    const Status st = ops::embedding(gpu_, i.tensor(), t.tensor(), out.tensor());
    ASSERT_TRUE(st.is_ok()) << st.to_string();
    expect_close(download(out.tensor()), want, 0.0, 0.0, "embedding");
  }
}

TEST_F(CudaOpsTest, GatherRowsMatchesCpu) {
  for (auto [n, h, m] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{{5, 64, 2}, {40, 2048, 17}, {9, 3, 9}}) {
    std::vector<float> x = random_bf16(static_cast<size_t>(n * h), static_cast<uint32_t>(n * h));
    std::vector<int32_t> rows(static_cast<size_t>(m));
    std::mt19937 rng(static_cast<uint32_t>(m));
    for (int32_t& r : rows) r = static_cast<int32_t>(rng() % n);
    std::vector<float> want(static_cast<size_t>(m * h));
    ASSERT_TRUE(ops::gather_rows(cpu_, host(x, {n, h}), host_i32(rows), host(want, {m, h})).is_ok());
    for (DType dt : {DType::kBF16, DType::kF32}) {
      Buffer xb = upload(x, dt, {n, h});
      Buffer rb = upload_i32(rows);
      Buffer out = poisoned(dt, {m, h});
      ASSERT_TRUE(ops::gather_rows(gpu_, xb.tensor(), rb.tensor(), out.tensor()).is_ok());
      expect_close(download(out.tensor()), want, 0.0, 0.0, "gather_rows");
    }
  }
}

TEST_F(CudaOpsTest, RmsNormMatchesCpu) {
  uint32_t seed = 10;
  for (auto [n, h] : std::vector<std::pair<int64_t, int64_t>>{{1, 64}, {5, 2048}, {3, 100}, {2, 4096}}) {
    std::vector<float> x = random_bf16(static_cast<size_t>(n * h), seed++, 2.0f);
    std::vector<float> w = random_bf16(static_cast<size_t>(h), seed++, 0.5f);
    for (float& v : w) v = bf16_to_f32(f32_to_bf16(v + 1.0f));
    const float eps = 1e-5f;
    std::vector<float> want(static_cast<size_t>(n * h));
    ASSERT_TRUE(ops::rms_norm(cpu_, host(x, {n, h}), host(w, {h}), eps, host(want, {n, h})).is_ok());
    Buffer xb = upload(x, DType::kBF16, {n, h});
    Buffer wb = upload(w, DType::kBF16, {h});
    Buffer out = poisoned(DType::kBF16, {n, h});
    ASSERT_TRUE(ops::rms_norm(gpu_, xb.tensor(), wb.tensor(), eps, out.tensor()).is_ok());
    expect_close(download(out.tensor()), want, 1e-2, 1e-2, "rms_norm");
  }
}

// The pre-norm projections (norm in the small-m GEMM's prologue) and the residual projection (add
// in its epilogue): against the CPU ops, and bit for bit against the separate CUDA kernels they
// replace at decode batch sizes.
TEST_F(CudaOpsTest, NormLinearAndLinearAddMatchCpuAndTheSeparateKernels) {
  uint32_t seed = 50;
  const float eps = 1e-6f;
  for (auto [n, k] : std::vector<std::pair<int64_t, int64_t>>{{96, 64}, {1000, 136}, {3072, 1024}, {1024, 2048},
                                                              {512, 4096}, {64, 8192}}) {
    std::vector<float> w = random_bf16(static_cast<size_t>(n * k), seed++, 0.05f);
    std::vector<float> bias = random_bf16(static_cast<size_t>(n), seed++, 0.5f);
    std::vector<float> nw = random_bf16(static_cast<size_t>(k), seed++, 0.5f);
    for (float& v : nw) v = bf16_to_f32(f32_to_bf16(v + 1.0f));
    const HostMatrix part{w.data(), DType::kF32, n, k, "w"};
    const HostMatrix bpart{bias.data(), DType::kF32, 1, n, "b"};
    auto wc = ops::load_linear_weight(cpu_, std::span<const HostMatrix>(&part, 1), std::span<const HostMatrix>(&bpart, 1));
    auto wg = ops::load_linear_weight(gpu_, std::span<const HostMatrix>(&part, 1), std::span<const HostMatrix>(&bpart, 1));
    ASSERT_TRUE(wc.is_ok() && wg.is_ok());
    Buffer nwb = upload(nw, DType::kBF16, {k});
    for (int64_t m : {1, 2, 5}) {
      const std::string what = str_cat(" m=", m, " n=", n, " k=", k);
      std::vector<float> x = random_bf16(static_cast<size_t>(m * k), seed++, 2.0f);
      Buffer xb = upload(x, DType::kBF16, {m, k});
      std::vector<float> normed_cpu(static_cast<size_t>(m * k)), want(static_cast<size_t>(m * n));
      ASSERT_TRUE(ops::norm_linear(cpu_, host(x, {m, k}), {host(nw, {k}), eps, host(normed_cpu, {m, k})}, *wc,
                                   host(want, {m, n})).is_ok());
      // norm_linear
      Buffer normed = poisoned(DType::kBF16, {m, k});
      Buffer out = poisoned(DType::kBF16, {m, n});
      Status st = ops::norm_linear(gpu_, xb.tensor(), {nwb.tensor(), eps, normed.tensor()}, *wg, out.tensor());
      ASSERT_TRUE(st.is_ok()) << st.to_string();
      const std::vector<float> got = download(out.tensor());
      expect_close(got, want, 5e-3 * max_abs(want), 2e-2, "norm_linear" + what);
      Buffer normed_sep = poisoned(DType::kBF16, {m, k});
      Buffer out_sep = poisoned(DType::kBF16, {m, n});
      ASSERT_TRUE(ops::rms_norm(gpu_, xb.tensor(), nwb.tensor(), eps, normed_sep.tensor()).is_ok());
      ASSERT_TRUE(ops::linear(gpu_, normed_sep.tensor(), *wg, out_sep.tensor()).is_ok());
      expect_close(got, download(out_sep.tensor()), 0.0, 0.0, "norm_linear vs separate" + what);
      // norm_linear_swiglu: w as a fused [gate; up] matrix of n / 2 outputs
      std::vector<float> gu_cpu(static_cast<size_t>(m * n)), act_want(static_cast<size_t>(m * n / 2));
      ASSERT_TRUE(ops::norm_linear_swiglu(cpu_, host(x, {m, k}), {host(nw, {k}), eps, host(normed_cpu, {m, k})}, *wc,
                                          host(gu_cpu, {m, n}), host(act_want, {m, n / 2})).is_ok());
      Buffer gu = poisoned(DType::kBF16, {m, n});
      Buffer act = poisoned(DType::kBF16, {m, n / 2});
      st = ops::norm_linear_swiglu(gpu_, xb.tensor(), {nwb.tensor(), eps, normed.tensor()}, *wg, gu.tensor(),
                                   act.tensor());
      ASSERT_TRUE(st.is_ok()) << st.to_string();
      const std::vector<float> act_got = download(act.tensor());
      expect_close(act_got, act_want, 5e-3 * max_abs(act_want), 3e-2, "norm_linear_swiglu" + what);
      Buffer act_sep = poisoned(DType::kBF16, {m, n / 2});
      ASSERT_TRUE(ops::linear_swiglu(gpu_, normed_sep.tensor(), *wg, gu.tensor(), act_sep.tensor()).is_ok());
      expect_close(act_got, download(act_sep.tensor()), 0.0, 0.0, "norm_linear_swiglu vs separate" + what);
      // linear_add: the residual is bf16 on the GPU
      std::vector<float> res = random_bf16(static_cast<size_t>(m * n), seed++, 3.0f);
      std::vector<float> res_cpu = res, scratch_cpu(res.size());
      ASSERT_TRUE(ops::linear_add(cpu_, host(x, {m, k}), *wc, host(res_cpu, {m, n}), host(scratch_cpu, {m, n})).is_ok());
      Buffer rb = upload(res, DType::kBF16, {m, n});
      Buffer scratch = poisoned(DType::kBF16, {m, n});
      st = ops::linear_add(gpu_, xb.tensor(), *wg, rb.tensor(), scratch.tensor());
      ASSERT_TRUE(st.is_ok()) << st.to_string();
      const std::vector<float> res_got = download(rb.tensor());
      expect_close(res_got, res_cpu, 5e-3 * max_abs(res_cpu), 2e-2, "linear_add" + what);
      if (m <= cuda::kSmallMAuto) {  // the product rounded to bf16, then added and rounded again
        Buffer prod = poisoned(DType::kBF16, {m, n});
        ASSERT_TRUE(ops::linear(gpu_, xb.tensor(), *wg, prod.tensor()).is_ok());
        std::vector<float> sum = download(prod.tensor());
        for (size_t i = 0; i < sum.size(); ++i) sum[i] += res[i];
        expect_close(res_got, bf16_round(sum), 0.0, 0.0, "linear_add vs separate" + what);
      }
    }
  }
  // The checks run before any kernel: a normed buffer of the wrong shape is refused on every path.
  Buffer xb = poisoned(DType::kBF16, {1, 64});
  Buffer nwb = poisoned(DType::kBF16, {64});
  Buffer bad = poisoned(DType::kBF16, {1, 63});
  std::vector<float> w(16 * 64, 0.0f);
  const HostMatrix one{w.data(), DType::kF32, 16, 64, "w"};
  auto wg = ops::load_linear_weight(gpu_, std::span<const HostMatrix>(&one, 1));
  ASSERT_TRUE(wg.is_ok());
  Buffer out = poisoned(DType::kBF16, {1, 16});
  EXPECT_EQ(ops::norm_linear(gpu_, xb.tensor(), {nwb.tensor(), eps, bad.tensor()}, *wg, out.tensor()).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ops::linear_add(gpu_, xb.tensor(), *wg, out.tensor(), out.tensor()).code(), StatusCode::kInvalidArgument);
}

TEST_F(CudaOpsTest, SwigluMatchesCpu) {
  uint32_t seed = 20;
  for (auto [n, inter] : std::vector<std::pair<int64_t, int64_t>>{{1, 64}, {7, 8192}, {3, 30}}) {
    std::vector<float> gu = random_bf16(static_cast<size_t>(n * 2 * inter), seed++, 2.0f);
    std::vector<float> want(static_cast<size_t>(n * inter));
    ASSERT_TRUE(ops::swiglu(cpu_, host(gu, {n, 2 * inter}), host(want, {n, inter})).is_ok());
    Buffer g = upload(gu, DType::kBF16, {n, 2 * inter});
    Buffer out = poisoned(DType::kBF16, {n, inter});
    ASSERT_TRUE(ops::swiglu(gpu_, g.tensor(), out.tensor()).is_ok());
    expect_close(download(out.tensor()), want, 1e-3, 1e-2, "swiglu");
  }
}

TEST_F(CudaOpsTest, LinearMatchesCpuOnBothPathsWithAndWithoutBias) {
  uint32_t seed = 30;
  for (auto [n, k] : std::vector<std::pair<int64_t, int64_t>>{{96, 64}, {200, 136}, {1000, 512}, {2048, 2048},
                                                              {300, 4360}}) {
    std::vector<float> w1 = random_bf16(static_cast<size_t>(n / 2 * k), seed++, 0.05f);
    std::vector<float> w2 = random_bf16(static_cast<size_t>((n - n / 2) * k), seed++, 0.05f);
    std::vector<float> b1 = random_bf16(static_cast<size_t>(n / 2), seed++, 0.5f);
    std::vector<float> b2 = random_bf16(static_cast<size_t>(n - n / 2), seed++, 0.5f);
    const HostMatrix parts[2] = {{w1.data(), DType::kF32, n / 2, k, "w1"}, {w2.data(), DType::kF32, n - n / 2, k, "w2"}};
    const HostMatrix bias[2] = {{b1.data(), DType::kF32, 1, n / 2, "b1"}, {b2.data(), DType::kF32, 1, n - n / 2, "b2"}};
    for (bool with_bias : {false, true}) {
      std::span<const HostMatrix> bspan = with_bias ? std::span<const HostMatrix>(bias) : std::span<const HostMatrix>();
      auto wc = ops::load_linear_weight(cpu_, parts, bspan);
      auto wg = ops::load_linear_weight(gpu_, parts, bspan);
      ASSERT_TRUE(wc.is_ok() && wg.is_ok());
      for (int64_t m : {1, 2, 5, 8, 9, 64, 200}) {
        std::vector<float> x = random_bf16(static_cast<size_t>(m * k), seed++);
        std::vector<float> want(static_cast<size_t>(m * n));
        ASSERT_TRUE(ops::linear(cpu_, host(x, {m, k}), *wc, host(want, {m, n})).is_ok());
        const double atol = 2e-3 * max_abs(want);
        Buffer xb = upload(x, DType::kBF16, {m, k});
        for (DType out_dt : {DType::kBF16, DType::kF32}) {
          Buffer out = poisoned(out_dt, {m, n});
          const Status st = ops::linear(gpu_, xb.tensor(), *wg, out.tensor());
          ASSERT_TRUE(st.is_ok()) << st.to_string();
          expect_close(download(out.tensor()), want, atol, out_dt == DType::kBF16 ? 8e-3 : 1e-3,
                       str_cat("linear m=", m, " n=", n, " k=", k, " bias=", with_bias, " ", dtype_name(out_dt)));
        }
        if (m <= cuda::kSmallMMax) {  // both GEMM paths on the same shape
          for (cuda::GemmPath path : {cuda::GemmPath::kSmallM, cuda::GemmPath::kCublasLt}) {
            Buffer out = poisoned(DType::kF32, {m, n});
            cuda::GemmArgs g;
            g.x = xb.tensor().data<const uint16_t>();
            g.w = wg->weight.tensor().data<const uint16_t>();
            g.bias = with_bias ? wg->bias.tensor().data<const uint16_t>() : nullptr;
            g.y = out.tensor().raw();
            g.y_f32 = true;
            g.m = m;
            g.n = n;
            g.k = k;
            const Status st = cuda::gemm(gpu_.blas, g, dev_->stream(), path);
            ASSERT_TRUE(st.is_ok()) << st.to_string();
            expect_close(download(out.tensor()), want, atol, 1e-3,
                         str_cat("gemm path ", static_cast<int>(path), " m=", m, " n=", n, " k=", k));
          }
        }
      }
    }
  }
}

// The fused gate/up projection and SwiGLU: against the CPU op, and bit for bit against the separate
// CUDA product and activation on the small-m path it replaces.
TEST_F(CudaOpsTest, LinearSwigluMatchesCpuAndTheSeparateKernels) {
  uint32_t seed = 40;
  for (auto [inter, k] : std::vector<std::pair<int64_t, int64_t>>{{30, 64}, {1000, 136}, {8192, 2048}, {3072, 1024}}) {
    std::vector<float> wg = random_bf16(static_cast<size_t>(inter * k), seed++, 0.05f);
    std::vector<float> wu = random_bf16(static_cast<size_t>(inter * k), seed++, 0.05f);
    const HostMatrix parts[2] = {{wg.data(), DType::kF32, inter, k, "gate"}, {wu.data(), DType::kF32, inter, k, "up"}};
    auto wc = ops::load_linear_weight(cpu_, parts);
    auto wgpu = ops::load_linear_weight(gpu_, parts);
    ASSERT_TRUE(wc.is_ok() && wgpu.is_ok());
    for (int64_t m : {1, 2, 5}) {
      std::vector<float> x = random_bf16(static_cast<size_t>(m * k), seed++);
      std::vector<float> gu(static_cast<size_t>(m * 2 * inter)), want(static_cast<size_t>(m * inter));
      ASSERT_TRUE(ops::linear_swiglu(cpu_, host(x, {m, k}), *wc, host(gu, {m, 2 * inter}), host(want, {m, inter})).is_ok());
      Buffer xb = upload(x, DType::kBF16, {m, k});
      Buffer scratch = poisoned(DType::kBF16, {m, 2 * inter});
      Buffer out = poisoned(DType::kBF16, {m, inter});
      const Status st = ops::linear_swiglu(gpu_, xb.tensor(), *wgpu, scratch.tensor(), out.tensor());
      ASSERT_TRUE(st.is_ok()) << st.to_string();
      const std::vector<float> got = download(out.tensor());
      expect_close(got, want, 2e-3 * max_abs(want), 2e-2, str_cat("linear_swiglu m=", m, " inter=", inter, " k=", k));
      Buffer gu_sep = poisoned(DType::kBF16, {m, 2 * inter});
      Buffer out_sep = poisoned(DType::kBF16, {m, inter});
      ASSERT_TRUE(ops::linear(gpu_, xb.tensor(), *wgpu, gu_sep.tensor()).is_ok());
      ASSERT_TRUE(ops::swiglu(gpu_, gu_sep.tensor(), out_sep.tensor()).is_ok());
      expect_close(got, download(out_sep.tensor()), 0.0, 0.0, str_cat("linear_swiglu vs separate m=", m));
    }
  }
  // Shapes are checked before any kernel runs.
  std::vector<float> w(16 * 8, 0.0f);
  const HostMatrix one{w.data(), DType::kF32, 16, 8, "w"};
  auto wgpu = ops::load_linear_weight(gpu_, std::span<const HostMatrix>(&one, 1));
  ASSERT_TRUE(wgpu.is_ok());
  Buffer xb = poisoned(DType::kBF16, {1, 8});
  Buffer scratch = poisoned(DType::kBF16, {1, 16});
  Buffer bad = poisoned(DType::kBF16, {1, 7});
  EXPECT_EQ(ops::linear_swiglu(gpu_, xb.tensor(), *wgpu, scratch.tensor(), bad.tensor()).code(),
            StatusCode::kInvalidArgument);
}

TEST_F(CudaOpsTest, QkvRopeCacheMatchesCpu) {
  uint32_t seed = 40;
  struct Case {
    int64_t heads, kv_heads, head_dim;
    bool qk_norm;
    model::RopeScalingType scaling;
  };
  for (const Case& c : {Case{4, 2, 64, false, model::RopeScalingType::kLlama3}, Case{8, 8, 128, true, model::RopeScalingType::kNone},
                        Case{16, 4, 32, false, model::RopeScalingType::kNone}, Case{2, 1, 256, true, model::RopeScalingType::kNone}}) {
    model::ModelConfig cfg;
    cfg.hidden_size = c.heads * c.head_dim;
    cfg.num_heads = c.heads;
    cfg.num_kv_heads = c.kv_heads;
    cfg.head_dim = c.head_dim;
    cfg.max_position_embeddings = 4096;
    cfg.rope_theta = 500000.0;
    cfg.rope_scaling.type = c.scaling;
    if (c.scaling == model::RopeScalingType::kLlama3) {
      cfg.rope_scaling.factor = 32.0;
      cfg.rope_scaling.original_max_position_embeddings = 256;
    }
    const int64_t max_pos = 3000, bs = 16, num_blocks = 40, n = 37;
    auto table = rope_table(cfg, max_pos);
    ASSERT_TRUE(table.is_ok()) << table.status().to_string();
    const int64_t width = (c.heads + 2 * c.kv_heads) * c.head_dim;
    std::vector<float> qkv = random_bf16(static_cast<size_t>(n * width), seed++, 2.0f);
    std::vector<int32_t> positions(static_cast<size_t>(n)), slots(static_cast<size_t>(n));
    std::vector<int32_t> slot_pool(static_cast<size_t>(num_blocks * bs));
    std::iota(slot_pool.begin(), slot_pool.end(), 0);
    std::mt19937 rng(seed++);
    std::shuffle(slot_pool.begin(), slot_pool.end(), rng);
    for (int64_t i = 0; i < n; ++i) {
      positions[static_cast<size_t>(i)] = static_cast<int32_t>(rng() % max_pos);
      slots[static_cast<size_t>(i)] = slot_pool[static_cast<size_t>(i)];
    }
    std::vector<float> qn = random_bf16(static_cast<size_t>(c.head_dim), seed++, 0.3f), kn = random_bf16(static_cast<size_t>(c.head_dim), seed++, 0.3f);
    for (float& v : qn) v = bf16_to_f32(f32_to_bf16(v + 1.0f));
    for (float& v : kn) v = bf16_to_f32(f32_to_bf16(v + 1.0f));
    ops::QkvParams p;
    p.num_heads = c.heads;
    p.num_kv_heads = c.kv_heads;
    p.head_dim = c.head_dim;
    p.qk_norm_eps = 1e-6f;
    const size_t cache_elems = static_cast<size_t>(num_blocks * 2 * bs * c.kv_heads * c.head_dim);
    std::vector<float> cpu_qkv = qkv, cpu_cache(cache_elems, 0.0f);
    Tensor qn_h = c.qk_norm ? host(qn, {c.head_dim}) : Tensor(), kn_h = c.qk_norm ? host(kn, {c.head_dim}) : Tensor();
    const Status cs = ops::qkv_rope_cache(cpu_, host(cpu_qkv, {n, width}), host_i32(positions), host_i32(slots), qn_h, kn_h,
                                          host(*table, {max_pos, c.head_dim}), p,
                                          host(cpu_cache, {num_blocks, 2, bs, c.kv_heads, c.head_dim}));
    ASSERT_TRUE(cs.is_ok()) << cs.to_string();

    Buffer gq = upload(qkv, DType::kBF16, {n, width});
    Buffer gpos = upload_i32(positions), gslot = upload_i32(slots);
    Buffer gqn = upload(qn, DType::kBF16, {c.head_dim}), gkn = upload(kn, DType::kBF16, {c.head_dim});
    Buffer gtab = upload(*table, DType::kF32, {max_pos, c.head_dim});
    Buffer gcache = poisoned(DType::kBF16, {num_blocks, 2, bs, c.kv_heads, c.head_dim});
    const Status gs = ops::qkv_rope_cache(gpu_, gq.tensor(), gpos.tensor(), gslot.tensor(), c.qk_norm ? gqn.tensor() : Tensor(),
                                          c.qk_norm ? gkn.tensor() : Tensor(), gtab.tensor(), p, gcache.tensor());
    ASSERT_TRUE(gs.is_ok()) << gs.to_string();
    const std::string what = str_cat("qkv_rope H=", c.heads, " KV=", c.kv_heads, " D=", c.head_dim, " norm=", c.qk_norm);
    expect_close(download(gq.tensor()), cpu_qkv, 2e-2, 1e-2, what + " qkv");
    // Written slots hold the CPU's k and v; every other slot keeps its poison.
    const std::vector<float> cache = download(gcache.tensor());
    std::vector<bool> written(static_cast<size_t>(num_blocks * bs), false);
    for (int32_t s : slots) written[static_cast<size_t>(s)] = true;
    const int64_t tok = c.kv_heads * c.head_dim;
    std::vector<float> got_w, want_w;
    size_t unpoisoned = 0;
    for (int64_t blk = 0; blk < num_blocks; ++blk)
      for (int64_t kv = 0; kv < 2; ++kv)
        for (int64_t off = 0; off < bs; ++off) {
          const size_t base = static_cast<size_t>(((blk * 2 + kv) * bs + off) * tok);
          for (int64_t e = 0; e < tok; ++e) {
            if (written[static_cast<size_t>(blk * bs + off)]) {
              got_w.push_back(cache[base + static_cast<size_t>(e)]);
              want_w.push_back(cpu_cache[base + static_cast<size_t>(e)]);
            } else if (!std::isnan(cache[base + static_cast<size_t>(e)])) {
              ++unpoisoned;
            }
          }
        }
    EXPECT_EQ(unpoisoned, 0u) << what << ": elements outside the written slots changed";
    expect_close(got_w, want_w, 2e-2, 1e-2, what + " cache");
  }
}

struct AttnCase {
  int64_t heads, kv_heads, head_dim, window;
  std::vector<std::pair<int32_t, int32_t>> seqs;  // (new tokens, kv_len)
};

TEST_F(CudaOpsTest, PagedAttentionMatchesCpu) {
  uint32_t seed = 50;
  std::vector<AttnCase> cases = {
      {4, 4, 64, 0, {{1, 37}, {5, 5}, {3, 70}, {1, 1}, {16, 200}}},
      {8, 2, 128, 0, {{1, 300}, {1, 17}, {1, 64}}},                 // decode only: split-KV
      {32, 8, 64, 0, {{1, 1000}}},                                  // one long decode row
      {16, 8, 128, 24, {{7, 90}, {1, 40}, {30, 30}}},              // sliding window
      {14, 2, 64, 0, {{300, 300}, {2, 129}}},                       // a prefill: no split
      {8, 4, 16, 0, {{1, 40}, {3, 50}, {1, 200}}},                  // head_dim 16: lanes past it idle
      {6, 2, 96, 0, {{1, 150}, {2, 33}}},                           // head_dim 96: 12 of 16 lanes
      {16, 2, 256, 0, {{1, 90}, {1, 7}}},                           // head_dim 256, 8 heads: two blocks
      {24, 2, 64, 0, {{1, 100}, {1, 20}, {1, 1}}},                  // 12 heads per kv head: mma rows g + 8
  };
  // Many one-token spans beside a long one: the row kernel takes the prefill rows too.
  AttnCase skewed{8, 2, 64, 0, {{128, 128}}};
  for (int i = 0; i < 40; ++i) skewed.seqs.push_back({1, 5 + i});
  cases.push_back(skewed);
  for (const AttnCase& c : cases) {
    const int64_t bs = 16, D = c.head_dim, KV = c.kv_heads, H = c.heads;
    int64_t num_blocks = 0;
    for (auto [nn, kv] : c.seqs) num_blocks += (kv + bs - 1) / bs;
    num_blocks += 3;
    std::vector<int32_t> pool(static_cast<size_t>(num_blocks));
    std::iota(pool.begin(), pool.end(), 0);
    std::mt19937 rng(seed++);
    std::shuffle(pool.begin(), pool.end(), rng);
    std::vector<int32_t> query_start = {0}, kv_len, block_start = {0}, block_ids;
    int64_t max_q = 0, max_kv = 0;
    for (auto [nn, kv] : c.seqs) {
      query_start.push_back(query_start.back() + nn);
      kv_len.push_back(kv);
      for (int64_t b = 0; b < (kv + bs - 1) / bs; ++b) {
        block_ids.push_back(pool.back());
        pool.pop_back();
      }
      block_start.push_back(static_cast<int32_t>(block_ids.size()));
      max_q = std::max<int64_t>(max_q, nn);
      max_kv = std::max<int64_t>(max_kv, kv);
    }
    const int64_t n = query_start.back();
    const int64_t width = (H + 2 * KV) * D;
    std::vector<float> qkv = random_bf16(static_cast<size_t>(n * width), seed++, 1.5f);
    std::vector<float> cache = random_bf16(static_cast<size_t>(num_blocks * 2 * bs * KV * D), seed++);
    ops::AttentionParams p;
    p.num_heads = H;
    p.num_kv_heads = KV;
    p.head_dim = D;
    p.scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(D)));
    p.sliding_window = c.window;
    p.max_query_len = max_q;
    p.max_kv_len = max_kv;
    std::vector<float> want(static_cast<size_t>(n * H * D));
    const Status cs = ops::paged_attention(cpu_, host(qkv, {n, width}), host(cache, {num_blocks, 2, bs, KV, D}),
                                           host_i32(query_start), host_i32(kv_len), host_i32(block_start),
                                           host_i32(block_ids), p, host(want, {n, H * D}));
    ASSERT_TRUE(cs.is_ok()) << cs.to_string();
    Buffer gq = upload(qkv, DType::kBF16, {n, width});
    Buffer gc = upload(cache, DType::kBF16, {num_blocks, 2, bs, KV, D});
    Buffer qs = upload_i32(query_start), kl = upload_i32(kv_len), bst = upload_i32(block_start), bid = upload_i32(block_ids);
    // The step's own longest context, then a decode graph's (the whole context length: the most
    // splits, most of them empty).
    for (int64_t kv_bound : {max_kv, int64_t{131072}}) {
      p.max_kv_len = kv_bound;
      Buffer out = poisoned(DType::kBF16, {n, H * D});
      const Status gs = ops::paged_attention(gpu_, gq.tensor(), gc.tensor(), qs.tensor(), kl.tensor(), bst.tensor(),
                                             bid.tensor(), p, out.tensor());
      ASSERT_TRUE(gs.is_ok()) << gs.to_string();
      expect_close(download(out.tensor()), want, 1e-2, 1e-2,
                   str_cat("paged_attention H=", H, " KV=", KV, " D=", D, " window=", c.window, " rows=", n,
                           " max_kv_len=", kv_bound));
    }
  }
}

TEST_F(CudaOpsTest, WeightUploaderConvertsEveryDtypeThroughSmallStagingChunks) {
  auto up = cuda::WeightUploader::create(dev_.get(), 1 << 12);  // 2048 elements a chunk: many chunks
  ASSERT_TRUE(up.is_ok()) << up.status().to_string();
  const size_t n = 10007;
  const std::vector<float> f32 = testing::random_bf16(n, 90, 3.0f);
  std::vector<float> raw(n);
  std::mt19937 rng(91);
  std::normal_distribution<float> dist(0.0f, 3.0f);
  for (float& x : raw) x = dist(rng);  // not representable in bf16: rounding is checked too
  std::vector<uint16_t> as_bf16(n), as_f16(n);
  for (size_t i = 0; i < n; ++i) {
    as_bf16[i] = f32_to_bf16(f32[i]);
    as_f16[i] = f32_to_f16(raw[i]);
  }
  struct Source {
    const void* data;
    DType dtype;
    std::vector<float> want;
  };
  std::vector<float> want_raw(n), want_f16(n);
  for (size_t i = 0; i < n; ++i) {
    want_raw[i] = bf16_to_f32(f32_to_bf16(raw[i]));
    want_f16[i] = bf16_to_f32(f32_to_bf16(f16_to_f32(as_f16[i])));
  }
  const std::vector<Source> sources = {{as_bf16.data(), DType::kBF16, f32}, {raw.data(), DType::kF32, want_raw},
                                       {as_f16.data(), DType::kF16, want_f16}};
  std::vector<Buffer> outs;
  for (const Source& src : sources) {
    outs.push_back(poisoned(DType::kBF16, {static_cast<int64_t>(n)}));
    const Status st = (*up)->upload_bf16(outs.back().tensor().raw(), src.data, src.dtype, n);
    ASSERT_TRUE(st.is_ok()) << st.to_string();
  }
  ASSERT_TRUE((*up)->finish().is_ok());
  EXPECT_EQ((*up)->bytes_uploaded(), static_cast<int64_t>(3 * n * 2));
  for (size_t i = 0; i < sources.size(); ++i) {
    expect_close(download(outs[i].tensor()), sources[i].want, 0.0, 0.0, str_cat("upload from ", dtype_name(sources[i].dtype)));
  }
  EXPECT_FALSE((*up)->upload_bf16(outs[0].tensor().raw(), raw.data(), DType::kI32, 4).is_ok());
}

}  // namespace
}  // namespace kiln::runtime
