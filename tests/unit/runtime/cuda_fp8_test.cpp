// FP8 weights on CUDA: each GEMM path against the CPU's dequantized reference, op by op; and an
// FP8 checkpoint's greedy tokens against its dequantized-bf16 twin over 512 steps (kAuto's paths:
// the GEMV, and above 8 rows kiln's bf16 mma kernel).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <tuple>
#include <vector>

#include "cuda_test_util.h"
#include "fp8_test_util.h"
#include "kiln/core/fp8.h"
#include "kiln/model/fp8_quantize.h"
#include "kiln/runtime/backend/cuda/fp8_linear.h"
#include "kiln/runtime/backend/cuda/lt_matmul.h"
#include "kiln/runtime/fp8_weights.h"
#include "kiln/runtime/ops/linear.h"
#include "kiln/runtime/ops/rms_norm.h"
#include "kiln/runtime/ops/swiglu.h"

namespace kiln::runtime {
namespace {

using cuda::Fp8Path;
using testing::expect_close;
using testing::max_abs;

struct Shape {
  int64_t m, n1, n2, k;  // the weight is two stacked parts, [n1 + n2, k]
};

class CudaFp8Ops : public testing::CudaTest {
 protected:
  // Random N(0, 0.02) parts quantized with `q` on the host, loaded as one FP8 LinearWeight.
  void make_weight(const model::QuantizationConfig& q, const Shape& s, uint32_t seed) {
    parts_.clear();
    w_ref_.clear();
    int i = 0;
    for (int64_t rows : {s.n1, s.n2}) {
      std::vector<float> w = testing::random_bf16(static_cast<size_t>(rows * s.k), seed + i++, 0.02f);
      Fp8HostMatrix m;
      m.config = q;
      m.rows = rows;
      m.cols = s.k;
      m.name = str_cat("part", i);
      m.owned_codes.resize(w.size());
      m.scales.resize(static_cast<size_t>(model::fp8_scale_count(q, rows, s.k)));
      model::quantize_fp8(q, w.data(), rows, s.k, m.owned_codes.data(), m.scales.data());
      m.codes = m.owned_codes.data();
      std::vector<float> back(w.size());
      model::dequantize_fp8(q, m.codes, m.scales.data(), rows, s.k, back.data());
      w_ref_.insert(w_ref_.end(), back.begin(), back.end());
      parts_.push_back(std::move(m));
    }
    auto lw = load_fp8_linear_weight(gpu_, parts_);
    ASSERT_TRUE(lw.is_ok()) << lw.status().to_string();
    w_ = std::move(lw).value();
    ASSERT_EQ(w_.weight.tensor().dtype(), DType::kF8E4M3);
  }

  // y = x · w_ref^T in double, x as given (bf16 values).
  std::vector<float> reference(const std::vector<float>& x, int64_t m, int64_t n, int64_t k) const {
    std::vector<float> y(static_cast<size_t>(m * n));
    for (int64_t r = 0; r < m; ++r)
      for (int64_t c = 0; c < n; ++c) {
        double acc = 0;
        for (int64_t j = 0; j < k; ++j) acc += static_cast<double>(x[r * k + j]) * w_ref_[c * k + j];
        y[r * n + c] = static_cast<float>(acc);
      }
    return y;
  }

  // x quantized as the cuBLASLt path quantizes activations: per row and 128 columns, scale
  // amax / 448, e4m3 round to nearest even; returned dequantized.
  static std::vector<float> quantized_rows(const std::vector<float>& x, int64_t m, int64_t k) {
    std::vector<float> out(x.size());
    for (int64_t r = 0; r < m; ++r)
      for (int64_t g = 0; g < k; g += 128) {
        const int64_t e = std::min(k, g + 128);
        float amax = 0;
        for (int64_t j = g; j < e; ++j) amax = std::max(amax, std::fabs(x[r * k + j]));
        const float s = amax > 0 ? amax / 448.0f : 1.0f;
        for (int64_t j = g; j < e; ++j)
          out[r * k + j] = e4m3_to_f32(f32_to_e4m3(std::clamp(x[r * k + j] / s, -448.0f, 448.0f))) * s;
      }
    return out;
  }

  std::vector<float> run(const Buffer& x, int64_t m, Fp8Path path, bool accumulate, const std::vector<float>& y0) {
    Buffer y = accumulate ? upload(y0, DType::kBF16, {m, w_.out_features}) : poisoned(DType::kBF16, {m, w_.out_features});
    cuda::Fp8GemmArgs a;
    a.x = x.tensor().data<const uint16_t>();
    a.w = w_.weight.tensor().data<const uint8_t>();
    a.w_scale = w_.scales.tensor().data<const float>();
    a.y = y.tensor().raw();
    a.accumulate = accumulate;
    a.m = m;
    a.n = w_.out_features;
    a.k = w_.in_features;
    const Status st = cuda::run_fp8_gemm(gpu_.blas, gpu_.device, a, static_cast<cuda::Stream>(gpu_.stream), path);
    // cuBLASLt's block-scaled e4m3 algorithms depend on the library and the card; where its
    // heuristic offers none, the forced path answers kUnimplemented (and kAuto falls back to
    // kiln's mma kernel): an empty result says so.
    if (path == Fp8Path::kCublasLt && st.code() == StatusCode::kUnimplemented) return {};
    EXPECT_TRUE(st.is_ok()) << st.to_string();
    return download(y.tensor());
  }

  std::vector<Fp8HostMatrix> parts_;
  std::vector<float> w_ref_;  // [n, k] dequantized on the host
  ops::LinearWeight w_;
};

TEST_F(CudaFp8Ops, EveryPathMatchesTheDequantizedReference) {
  // n 136 and k 48: a last 16-row tile and a last 64-column half group only partly inside.
  const Shape shapes[] = {{1, 384, 256, 320}, {2, 384, 256, 320}, {3, 100, 36, 48},     {8, 1024, 1024, 4096},
                          {33, 384, 256, 320}, {128, 1024, 512, 4096}, {300, 768, 256, 2048}};
  for (const model::QuantizationConfig& q : {model::fp8_block_config(), model::fp8_channel_config()}) {
    for (const Shape& s : shapes) {
      const int64_t n = s.n1 + s.n2;
      SCOPED_TRACE(str_cat(q.scaling == model::Fp8Scaling::kBlock ? "block" : "channel", " m ", s.m, " n ", n, " k ", s.k));
      make_weight(q, s, 11);
      const std::vector<float> x = testing::random_bf16(static_cast<size_t>(s.m * s.k), 5);
      const Buffer xb = upload(x, DType::kBF16, {s.m, s.k});
      const std::vector<float> ref = reference(x, s.m, n, s.k);
      const double scale = max_abs(ref);
      // bf16 activations (GEMV, dequantized-bf16 GEMM): only the bf16 output rounding and, for
      // dequant, the weights' rounding to bf16 -- 1% of the largest |y|.
      if (s.m <= cuda::kFp8GemvMaxM) expect_close(run(xb, s.m, Fp8Path::kGemv, false, {}), ref, 0.01 * scale, 0.01, "gemv");
      expect_close(run(xb, s.m, Fp8Path::kDequant, false, {}), ref, 0.01 * scale, 0.01, "dequant");
      // kiln's bf16 mma kernel (the codes widened in shared memory): the dequantized path's
      // numbers, so held to the same bound, at every M, N and K edge (k 320: a last half stage).
      expect_close(run(xb, s.m, Fp8Path::kBf16Mma, false, {}), ref, 0.01 * scale, 0.01, "bf16 mma");
      // e4m3 activations (cuBLASLt): against the reference fed the same quantized activations.
      const std::vector<float> ref_q = reference(quantized_rows(x, s.m, s.k), s.m, n, s.k);
      const std::vector<float> lt = run(xb, s.m, Fp8Path::kCublasLt, false, {});
      if (lt.empty()) {
        std::printf("cuBLASLt has no block-scaled FP8 algorithm for m %lld n %lld k %lld here\n",
                    static_cast<long long>(s.m), static_cast<long long>(n), static_cast<long long>(s.k));
      } else {
        expect_close(lt, ref_q, 0.01 * scale, 0.01, "cublaslt");
      }
      // kiln's mma kernel takes the same quantized activations: M and N edges (m 1, 33, 300; n
      // 640, 1024), and a last partial 128-column group (k 320).
      expect_close(run(xb, s.m, Fp8Path::kMma, false, {}), ref_q, 0.01 * scale, 0.01, "mma");
      // And the residual add: y0 + bf16(product). kAuto keeps the activations bf16 (GEMV, or
      // the bf16 mma kernel above 8 rows), so its reference is ref.
      const std::vector<float> y0 = testing::random_bf16(static_cast<size_t>(s.m * n), 6);
      std::vector<float> want(y0.size());
      const auto& base = ref;
      for (size_t i = 0; i < want.size(); ++i) want[i] = y0[i] + base[i];
      expect_close(run(xb, s.m, Fp8Path::kAuto, true, y0), want, 0.01 * scale + 0.02, 0.01, "auto, accumulate");
    }
  }
}

TEST_F(CudaFp8Ops, LinearOpDispatchesFp8Weights) {
  const Shape s{4, 256, 128, 512};
  make_weight(model::fp8_block_config(), s, 3);
  const std::vector<float> x = testing::random_bf16(static_cast<size_t>(s.m * s.k), 8);
  const Buffer xb = upload(x, DType::kBF16, {s.m, s.k});
  Buffer y = poisoned(DType::kBF16, {s.m, s.n1 + s.n2});
  ASSERT_TRUE(ops::linear(gpu_, xb.tensor(), w_, y.tensor()).is_ok());
  const std::vector<float> ref = reference(x, s.m, s.n1 + s.n2, s.k);
  expect_close(download(y.tensor()), ref, 0.01 * max_abs(ref), 0.01, "ops::linear");
}

// Decode's fused ops with FP8 weights (the GEMV's SwiGLU epilogue; the norm runs as its own
// kernel) give exactly what the separate kernels give, and the separate kernels the host reference.
TEST_F(CudaFp8Ops, FusedNormAndSwigluMatchTheSeparateKernels) {
  const float eps = 1e-6f;
  for (const Shape& s : {Shape{0, 40, 40, 96}, Shape{0, 384, 384, 512}, Shape{0, 1536, 1536, 2048}}) {
    make_weight(model::fp8_block_config(), s, 17);
    const int64_t n = s.n1 + s.n2, k = s.k;
    std::vector<float> nw = testing::random_bf16(static_cast<size_t>(k), 9, 0.5f);
    for (float& v : nw) v = bf16_to_f32(f32_to_bf16(v + 1.0f));
    const Buffer nwb = upload(nw, DType::kBF16, {k});
    for (int64_t m : {1, 2, 5, 8}) {
      const std::string what = str_cat(" m ", m, " n ", n, " k ", k);
      const std::vector<float> x = testing::random_bf16(static_cast<size_t>(m * k), 12, 2.0f);
      const Buffer xb = upload(x, DType::kBF16, {m, k});
      // The separate kernels: rms_norm, the GEMV, swiglu.
      Buffer normed = poisoned(DType::kBF16, {m, k});
      ASSERT_TRUE(ops::rms_norm(gpu_, xb.tensor(), nwb.tensor(), eps, normed.tensor()).is_ok());
      Buffer gu = poisoned(DType::kBF16, {m, n});
      ASSERT_TRUE(ops::linear(gpu_, normed.tensor(), w_, gu.tensor()).is_ok());
      const std::vector<float> gu_sep = download(gu.tensor());
      const std::vector<float> ref = reference(download(normed.tensor()), m, n, k);
      expect_close(gu_sep, ref, 0.01 * max_abs(ref), 0.01, "separate linear" + what);
      Buffer act_sep = poisoned(DType::kBF16, {m, n / 2});
      ASSERT_TRUE(ops::swiglu(gpu_, gu.tensor(), act_sep.tensor()).is_ok());
      const std::vector<float> want_act = download(act_sep.tensor());
      // Fused (SwiGLU up to 8 rows).
      Buffer normed2 = poisoned(DType::kBF16, {m, k});
      Buffer out = poisoned(DType::kBF16, {m, n});
      Status st = ops::norm_linear(gpu_, xb.tensor(), {nwb.tensor(), eps, normed2.tensor()}, w_, out.tensor());
      ASSERT_TRUE(st.is_ok()) << st.to_string();
      expect_close(download(out.tensor()), gu_sep, 0.0, 0.0, "norm_linear" + what);
      Buffer scratch = poisoned(DType::kBF16, {m, n});
      Buffer act = poisoned(DType::kBF16, {m, n / 2});
      st = ops::norm_linear_swiglu(gpu_, xb.tensor(), {nwb.tensor(), eps, normed2.tensor()}, w_, scratch.tensor(),
                                   act.tensor());
      ASSERT_TRUE(st.is_ok()) << st.to_string();
      expect_close(download(act.tensor()), want_act, 0.0, 0.0, "norm_linear_swiglu" + what);
      Buffer act2 = poisoned(DType::kBF16, {m, n / 2});
      ASSERT_TRUE(ops::linear_swiglu(gpu_, normed.tensor(), w_, scratch.tensor(), act2.tensor()).is_ok());
      expect_close(download(act2.tensor()), want_act, 0.0, 0.0, "linear_swiglu" + what);
    }
  }
}

// Greedy decoding of a Llama-3.2-1B-shaped FP8 checkpoint (two layers, 8192-token vocabulary)
// against the same weights dequantized to bf16, teacher-forced: the reference's greedy tokens
// over 512 decode steps are fed to both; the FP8 engine's choice must agree at >= 95% of them,
// through decode steps (GEMV) and through one 528-token prefill (kAuto: kiln's bf16 mma kernel,
// the codes widened to bf16). With e4m3 activations (KILN_FP8_GEMM=e4m3, kiln's mma kernel on the H100)
// only 404 and 400 of 512 agreed: docs/fp8.md.
class CudaFp8Engine : public ::testing::TestWithParam<std::string> {};

TEST_P(CudaFp8Engine, GreedyTokensAgreeWithTheDequantizedReference) {
  if (cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device";
  namespace fs = std::filesystem;
  const fs::path fp8 = testing::make_fp8_model("llama-3.2-1b", GetParam(), 21, 0, 0, 2, 8192);
  const fs::path ref = testing::dequantized_copy(fp8, fp8.string() + "-dequantized");
  auto load = [](const fs::path& dir) {
    setenv("KILN_CUDA_GRAPHS", "1", 1);
    EngineOptions o;
    o.device = DeviceKind::kCuda;
    o.block_size = 16;
    o.kv_cache_bytes = 256 << 20;
    o.max_model_len = 1024;
    o.max_batched_tokens = 1024;
    o.max_seqs = 4;
    auto e = Engine::load(dir, o);
    EXPECT_TRUE(e.is_ok()) << e.status().to_string();
    return e.is_ok() ? std::move(e).value() : nullptr;
  };
  auto a = load(fp8);
  auto b = load(ref);
  ASSERT_TRUE(a && b);
  constexpr int kSteps = 512;
  testing::BlockPool pa(a->kv_geometry().num_blocks, 1), pb(b->kv_geometry().num_blocks, 1);
  testing::Seq sa, sb;
  for (int32_t i = 0; i < 16; ++i) sa.tokens.push_back((i * 977 + 5) % 8192);
  sa.params.temperature = 0.0f;
  sb = sa;
  int agree = 0;
  for (int step = 0; step < kSteps; ++step) {
    StepPlan qa, qb;
    testing::add_to_plan(qa, sa, static_cast<int32_t>(sa.tokens.size()) - sa.computed, 16, pa, true);
    testing::add_to_plan(qb, sb, static_cast<int32_t>(sb.tokens.size()) - sb.computed, 16, pb, true);
    auto ra = a->step(qa);
    auto rb = b->step(qb);
    ASSERT_TRUE(ra.is_ok() && rb.is_ok());
    agree += ra->samples[0].token == rb->samples[0].token;
    sa.tokens.push_back(rb->samples[0].token);  // both continue with the reference's token
    sb.tokens.push_back(rb->samples[0].token);
  }
  std::printf("fp8 %s decode: %d of %d greedy tokens agree\n", GetParam().c_str(), agree, kSteps);
  EXPECT_GE(agree, kSteps * 95 / 100);

  // The same tokens as one prefill through the FP8 engine: every position's argmax.
  auto c = load(fp8);
  ASSERT_TRUE(c);
  const std::vector<int32_t> all(sb.tokens.begin(), sb.tokens.end() - 1);
  const auto rows = testing::logits_in_chunks(*c, all, {static_cast<int32_t>(all.size())}, 2);
  ASSERT_EQ(rows.size(), all.size());
  int agree_prefill = 0;
  for (int step = 0; step < kSteps; ++step) {
    const auto& r = rows[15 + static_cast<size_t>(step)];
    const size_t arg = static_cast<size_t>(std::max_element(r.begin(), r.end()) - r.begin());
    agree_prefill += static_cast<int32_t>(arg) == sb.tokens[16 + static_cast<size_t>(step)];
  }
  std::printf("fp8 %s prefill: %d of %d greedy tokens agree\n", GetParam().c_str(), agree_prefill, kSteps);
  EXPECT_GE(agree_prefill, kSteps * 95 / 100);
  std::error_code ec;
  fs::remove_all(fp8, ec);
  fs::remove_all(ref, ec);
}

// Which scale modes cuBLASLt's heuristic offers for an e4m3 GEMM on this card and library, printed
// for the record (docs/fp8.md): kiln's cuBLASLt path asks for 1 x 128 scales on both operands.
// Per-tensor scales are the one mode every FP8 tensor-core GEMM on sm_90 has.
TEST(CudaFp8Probe, ReportsTheScaleModesCublasLtOffers) {
  if (cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device";
  cublasLtHandle_t lt = nullptr;
  ASSERT_EQ(cublasLtCreate(&lt), CUBLAS_STATUS_SUCCESS);
  const std::pair<const char*, int32_t> modes[] = {
      {"scalar", CUBLASLT_MATMUL_MATRIX_SCALE_SCALAR_32F},
      {"outer_vec", CUBLASLT_MATMUL_MATRIX_SCALE_OUTER_VEC_32F},
      {"vec128", CUBLASLT_MATMUL_MATRIX_SCALE_VEC128_32F},
      {"blk128x128", CUBLASLT_MATMUL_MATRIX_SCALE_BLK128x128_32F}};
  bool scalar = false;
  for (const auto& [m, n, k] : {std::tuple<int64_t, int64_t, int64_t>{128, 1536, 4096}, {512, 4096, 4096}}) {
    for (const auto& [wname, wmode] : modes) {
      for (const auto& [xname, xmode] : modes) {
        cuda::LtPlan p;
        ASSERT_TRUE(p.init(CUDA_R_8F_E4M3, CUDA_R_16BF, m, n, k).is_ok());
        ASSERT_TRUE(p.set(CUBLASLT_MATMUL_DESC_A_SCALE_MODE, wmode).is_ok());
        ASSERT_TRUE(p.set(CUBLASLT_MATMUL_DESC_B_SCALE_MODE, xmode).is_ok());
        cublasLtMatmulHeuristicResult_t res[4]{};
        int found = 0;
        const cublasStatus_t st = p.heuristics(lt, res, 4, &found);
        std::printf("fp8 probe m %lld n %lld k %lld: weights %s x activations %s -> %s, %d algorithms\n",
                    static_cast<long long>(m), static_cast<long long>(n), static_cast<long long>(k), wname, xname,
                    cublasLtGetStatusName(st), found);
        if (wmode == CUBLASLT_MATMUL_MATRIX_SCALE_SCALAR_32F && xmode == wmode && found > 0) scalar = true;
      }
    }
  }
  cublasLtDestroy(lt);
  EXPECT_TRUE(scalar) << "cuBLASLt offered no per-tensor-scaled e4m3 GEMM";
}

INSTANTIATE_TEST_SUITE_P(Layouts, CudaFp8Engine, ::testing::Values("block", "channel"));

}  // namespace
}  // namespace kiln::runtime
