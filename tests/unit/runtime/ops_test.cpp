// The row-wise ops and the GEMM against plain double-precision references.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kiln/core/thread_pool.h"
#include "kiln/runtime/backend/cpu/gemm_cpu.h"
#include "kiln/runtime/backend/cpu/kernels_cpu.h"
#include "kiln/runtime/buffer.h"
#include "kiln/runtime/ops/embedding.h"
#include "kiln/runtime/ops/gather_rows.h"
#include "kiln/runtime/ops/linear.h"
#include "kiln/runtime/ops/rms_norm.h"
#include "kiln/runtime/ops/swiglu.h"
#include "runtime_test_util.h"

namespace kiln::runtime {
namespace {

using testing::host_f32;
using testing::host_i32;
using testing::random_vector;
using testing::rel_error;

class OpsTest : public ::testing::Test {
 protected:
  OpsTest() : pool_(3) { ctx_.pool = &pool_; }
  ThreadPool pool_;
  DeviceContext ctx_;
};

TEST_F(OpsTest, EmbeddingGathersRowsAndRejectsBadIds) {
  const int64_t vocab = 11, hidden = 7;
  auto table = random_vector(static_cast<size_t>(vocab * hidden), 1);
  std::vector<int32_t> ids = {3, 0, 10, 3};
  std::vector<float> out(ids.size() * hidden);
  ASSERT_TRUE(ops::embedding(ctx_, host_i32(ids), host_f32(table, {vocab, hidden}), host_f32(out, {4, hidden})).is_ok());
  for (size_t i = 0; i < ids.size(); ++i)
    for (int64_t j = 0; j < hidden; ++j) EXPECT_EQ(out[i * hidden + j], table[ids[i] * hidden + j]);
  ids[2] = 11;
  Status st = ops::embedding(ctx_, host_i32(ids), host_f32(table, {vocab, hidden}), host_f32(out, {4, hidden}));
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("token id 11"), std::string::npos) << st.message();
  // Shape mismatch names the tensor.
  st = ops::embedding(ctx_, host_i32(ids), host_f32(table, {vocab, hidden}), host_f32(out, {3, hidden}));
  EXPECT_NE(st.message().find("embedding out"), std::string::npos) << st.message();
}

std::vector<double> ref_norm(const std::vector<double>& x, const std::vector<float>& w, int64_t n, int64_t h, double eps) {
  std::vector<double> y(x.size());
  for (int64_t i = 0; i < n; ++i) {
    double ss = 0;
    for (int64_t j = 0; j < h; ++j) ss += x[i * h + j] * x[i * h + j];
    const double inv = 1.0 / std::sqrt(ss / h + eps);
    for (int64_t j = 0; j < h; ++j) y[i * h + j] = w[j] * x[i * h + j] * inv;
  }
  return y;
}

TEST_F(OpsTest, RmsNormMatchesReference) {
  for (int64_t h : {1, 8, 65, 1024}) {
    const int64_t n = 5;
    auto x = random_vector(static_cast<size_t>(n * h), 2, 3.0f);
    auto w = random_vector(static_cast<size_t>(h), 4);
    std::vector<float> out(x.size());
    ASSERT_TRUE(ops::rms_norm(ctx_, host_f32(x, {n, h}), host_f32(w, {h}), 1e-5f, host_f32(out, {n, h})).is_ok());
    std::vector<double> xd(x.begin(), x.end());
    EXPECT_LT(rel_error(out, ref_norm(xd, w, n, h, 1e-5)), 1e-6) << "h=" << h;
  }
  std::vector<float> a(4), w(3);
  EXPECT_FALSE(ops::rms_norm(ctx_, host_f32(a, {1, 4}), host_f32(w, {3}), 1e-5f, host_f32(a, {1, 4})).is_ok());
}

TEST_F(OpsTest, SwigluMatchesReference) {
  const int64_t n = 3, inter = 37;
  auto gu = random_vector(static_cast<size_t>(n * 2 * inter), 5, 4.0f);
  std::vector<float> out(static_cast<size_t>(n * inter));
  ASSERT_TRUE(ops::swiglu(ctx_, host_f32(gu, {n, 2 * inter}), host_f32(out, {n, inter})).is_ok());
  std::vector<double> ref(out.size());
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < inter; ++j) {
      const double g = gu[i * 2 * inter + j], u = gu[i * 2 * inter + inter + j];
      ref[i * inter + j] = g / (1.0 + std::exp(-g)) * u;
    }
  EXPECT_LT(rel_error(out, ref), 1e-6);
  EXPECT_FALSE(ops::swiglu(ctx_, host_f32(gu, {n, 2 * inter}), host_f32(out, {n, inter - 1})).is_ok());
  // Gates far into both tails (e^-g clamps to [e^-87, e^88]), element by element, and the same
  // bits on every instruction set this machine has.
  std::vector<float> tails = gu;
  for (size_t j = 0; j < tails.size(); j += 3) tails[j] *= 40.0f;
  ASSERT_TRUE(ops::swiglu(ctx_, host_f32(tails, {n, 2 * inter}), host_f32(out, {n, inter})).is_ok());
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < inter; ++j) {
      const double g = tails[i * 2 * inter + j], u = tails[i * 2 * inter + inter + j];
      const double want = g / (1.0 + std::exp(-g)) * u;
      EXPECT_NEAR(out[i * inter + j], want, 1e-6 * std::max(1.0, std::abs(want))) << "g=" << g;
    }
  std::vector<cpu::CpuIsa> isas = {cpu::CpuIsa::kScalar};
  if (cpu::cpu_isa() != cpu::CpuIsa::kScalar) isas.push_back(cpu::CpuIsa::kAvx2);
  if (cpu::cpu_isa() == cpu::CpuIsa::kAvx512) isas.push_back(cpu::CpuIsa::kAvx512);
  for (cpu::CpuIsa isa : isas) {
    std::vector<float> other(out.size(), NAN);
    ASSERT_TRUE(cpu::swiglu(ctx_, host_f32(tails, {n, 2 * inter}), host_f32(other, {n, inter}), isa).is_ok());
    EXPECT_EQ(0, std::memcmp(other.data(), out.data(), out.size() * sizeof(float))) << cpu::cpu_isa_name(isa);
  }
}

TEST_F(OpsTest, GatherRowsPicksRows) {
  auto x = random_vector(5 * 4, 6);
  std::vector<int32_t> rows = {4, 0, 4};
  std::vector<float> out(3 * 4);
  ASSERT_TRUE(ops::gather_rows(ctx_, host_f32(x, {5, 4}), host_i32(rows), host_f32(out, {3, 4})).is_ok());
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 4; ++j) EXPECT_EQ(out[i * 4 + j], x[rows[i] * 4 + j]);
  rows[1] = 5;
  EXPECT_FALSE(ops::gather_rows(ctx_, host_f32(x, {5, 4}), host_i32(rows), host_f32(out, {3, 4})).is_ok());
}

struct GemmCase {
  int64_t m, n, k;
  bool bias;
};

TEST_F(OpsTest, LinearMatchesDoubleReference) {
  for (const GemmCase& c : {GemmCase{1, 1, 1, false}, GemmCase{3, 70, 5, true}, GemmCase{17, 64, 300, false},
                            GemmCase{40, 129, 513, true}}) {
    auto x = random_vector(static_cast<size_t>(c.m * c.k), 7);
    auto w = random_vector(static_cast<size_t>(c.n * c.k), 8);
    auto b = random_vector(static_cast<size_t>(c.n), 9);
    // Two parts stacked along N, as q/k/v are.
    const int64_t n1 = c.n / 3;
    std::vector<HostMatrix> parts = {{w.data(), DType::kF32, n1, c.k, "w1"},
                                     {w.data() + n1 * c.k, DType::kF32, c.n - n1, c.k, "w2"}};
    std::vector<HostMatrix> biases = {{b.data(), DType::kF32, 1, n1, "b1"}, {b.data() + n1, DType::kF32, 1, c.n - n1, "b2"}};
    auto lw = ops::load_linear_weight(ctx_, parts, c.bias ? std::span<const HostMatrix>(biases) : std::span<const HostMatrix>());
    ASSERT_TRUE(lw.is_ok()) << lw.status().to_string();
    std::vector<float> out(static_cast<size_t>(c.m * c.n));
    ASSERT_TRUE(ops::linear(ctx_, host_f32(x, {c.m, c.k}), *lw, host_f32(out, {c.m, c.n})).is_ok());
    std::vector<double> ref(out.size());
    for (int64_t i = 0; i < c.m; ++i)
      for (int64_t j = 0; j < c.n; ++j) {
        double s = c.bias ? b[j] : 0.0;
        for (int64_t kk = 0; kk < c.k; ++kk) s += static_cast<double>(x[i * c.k + kk]) * w[j * c.k + kk];
        ref[i * c.n + j] = s;
      }
    EXPECT_LT(rel_error(out, ref), 2e-6) << c.m << "x" << c.n << "x" << c.k;
  }
}

// The fused pre-norm and residual projections are, on the CPU, exactly their compositions.
TEST_F(OpsTest, NormLinearAndLinearAddAreTheirCompositions) {
  const int64_t m = 3, n = 10, k = 24;
  auto x = random_vector(static_cast<size_t>(m * k), 12, 2.0f);
  auto w = random_vector(static_cast<size_t>(n * k), 13);
  auto nw = random_vector(static_cast<size_t>(k), 14);
  HostMatrix part{w.data(), DType::kF32, n, k, "w"};
  auto lw = ops::load_linear_weight(ctx_, std::span<const HostMatrix>(&part, 1));
  ASSERT_TRUE(lw.is_ok());
  std::vector<float> normed(x.size()), want(static_cast<size_t>(m * n)), got(want.size()), scratch(want.size());
  ASSERT_TRUE(ops::rms_norm(ctx_, host_f32(x, {m, k}), host_f32(nw, {k}), 1e-6f, host_f32(normed, {m, k})).is_ok());
  ASSERT_TRUE(ops::linear(ctx_, host_f32(normed, {m, k}), *lw, host_f32(want, {m, n})).is_ok());
  std::vector<float> normed2(x.size());
  const ops::PreNorm norm{host_f32(nw, {k}), 1e-6f, host_f32(normed2, {m, k})};
  ASSERT_TRUE(ops::norm_linear(ctx_, host_f32(x, {m, k}), norm, *lw, host_f32(got, {m, n})).is_ok());
  EXPECT_EQ(got, want);

  std::vector<float> gu(want.size()), act_want(static_cast<size_t>(m * n / 2)), act(act_want.size());
  ASSERT_TRUE(ops::swiglu(ctx_, host_f32(want, {m, n}), host_f32(act_want, {m, n / 2})).is_ok());
  ASSERT_TRUE(ops::norm_linear_swiglu(ctx_, host_f32(x, {m, k}), norm, *lw, host_f32(gu, {m, n}),
                                      host_f32(act, {m, n / 2})).is_ok());
  EXPECT_EQ(act, act_want);

  auto res = random_vector(want.size(), 15);
  std::vector<float> sum(res.size());
  for (size_t i = 0; i < sum.size(); ++i) sum[i] = res[i] + want[i];
  ASSERT_TRUE(ops::linear_add(ctx_, host_f32(normed, {m, k}), *lw, host_f32(res, {m, n}), host_f32(scratch, {m, n})).is_ok());
  EXPECT_EQ(res, sum);
  // normed of the wrong width, scratch aliasing the residual
  EXPECT_FALSE(ops::norm_linear(ctx_, host_f32(x, {m, k}), {host_f32(nw, {k}), 1e-6f, host_f32(normed2, {m * 2, k / 2})},
                                *lw, host_f32(got, {m, n})).is_ok());
  EXPECT_FALSE(ops::linear_add(ctx_, host_f32(normed, {m, k}), *lw, host_f32(res, {m, n}), host_f32(res, {m, n})).is_ok());
}

TEST_F(OpsTest, LinearReadsBf16Weights) {
  const int64_t n = 9, k = 33;
  auto w = random_vector(static_cast<size_t>(n * k), 10);
  std::vector<uint16_t> wb(w.size());
  for (size_t i = 0; i < w.size(); ++i) {
    wb[i] = f32_to_bf16(w[i]);
    w[i] = bf16_to_f32(wb[i]);
  }
  HostMatrix part{wb.data(), DType::kBF16, n, k, "w"};
  auto lw = ops::load_linear_weight(ctx_, std::span<const HostMatrix>(&part, 1));
  ASSERT_TRUE(lw.is_ok());
  auto x = random_vector(static_cast<size_t>(2 * k), 11);
  std::vector<float> out(static_cast<size_t>(2 * n));
  ASSERT_TRUE(ops::linear(ctx_, host_f32(x, {2, k}), *lw, host_f32(out, {2, n})).is_ok());
  std::vector<double> ref(out.size());
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double s = 0;
      for (int64_t kk = 0; kk < k; ++kk) s += static_cast<double>(x[i * k + kk]) * w[j * k + kk];
      ref[i * n + j] = s;
    }
  EXPECT_LT(rel_error(out, ref), 2e-6);
}

// The batch-invariance property: a row's output is bitwise the same for any M, any thread count
// and any kernel (AVX-512, AVX2, scalar).
TEST_F(OpsTest, GemmRowsAreBitwiseIndependentOfBatchSizeThreadsAndIsa) {
  const int64_t n = 300, k = 777, m_max = 300;
  auto x = random_vector(static_cast<size_t>(m_max * k), 12);
  auto w = random_vector(static_cast<size_t>(n * k), 13);
  auto b = random_vector(static_cast<size_t>(n), 14);
  std::vector<float> packed(static_cast<size_t>(cpu::packed_size(n, k)));
  cpu::pack_weight(w.data(), n, k, packed.data());
  std::vector<float> full(static_cast<size_t>(m_max * n));
  cpu::gemm_packed(ctx_, x.data(), m_max, k, packed.data(), n, b.data(), full.data(), cpu::cpu_isa());
  DeviceContext single;  // no pool
  std::vector<cpu::CpuIsa> isas = {cpu::CpuIsa::kScalar};
  if (cpu::cpu_isa() != cpu::CpuIsa::kScalar) isas.push_back(cpu::CpuIsa::kAvx2);
  if (cpu::cpu_isa() == cpu::CpuIsa::kAvx512) isas.push_back(cpu::CpuIsa::kAvx512);
  for (int64_t m : {1, 37, 300}) {
    for (int64_t first : {int64_t{0}, m_max - m}) {
      for (cpu::CpuIsa isa : isas) {
        std::vector<float> part(static_cast<size_t>(m * n));
        cpu::gemm_packed(m == 37 ? single : ctx_, x.data() + first * k, m, k, packed.data(), n, b.data(), part.data(), isa);
        ASSERT_EQ(0, std::memcmp(part.data(), full.data() + first * n, part.size() * sizeof(float)))
            << "m=" << m << " first=" << first << " isa=" << cpu::cpu_isa_name(isa);
      }
    }
  }
}

}  // namespace
}  // namespace kiln::runtime
