// The bf16 and q8 GEMMs against double-precision references of the same rounded operands, on
// every instruction set this machine has (the fallbacks are forced through the isa argument, so
// they are tested on an AVX-512 BF16 machine too), and their batch invariance.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "kiln/core/thread_pool.h"
#include "kiln/runtime/backend/cpu/gemm_lowp_cpu.h"
#include "runtime_test_util.h"

namespace kiln::runtime {
namespace {

using testing::random_vector;
using testing::rel_error;

std::vector<cpu::DotIsa> isas_here() {
  std::vector<cpu::DotIsa> out;
  for (cpu::DotIsa i : {cpu::DotIsa::kScalar, cpu::DotIsa::kAvx2, cpu::DotIsa::kAvx512, cpu::DotIsa::kAvx512Vnni,
                        cpu::DotIsa::kAvx512Bf16})
    if (i <= cpu::dot_isa()) out.push_back(i);
  return out;
}

// x [m, k] @ w [n, k]^T + b in double.
std::vector<double> reference(const std::vector<float>& x, const std::vector<float>& w, const std::vector<float>& b,
                              int64_t m, int64_t n, int64_t k) {
  std::vector<double> out(static_cast<size_t>(m * n));
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double s = b[j];
      for (int64_t kk = 0; kk < k; ++kk) s += static_cast<double>(x[i * k + kk]) * w[j * k + kk];
      out[i * n + j] = s;
    }
  return out;
}

std::vector<float> round_bf16(std::vector<float> v) {
  for (float& f : v) f = bf16_to_f32(f32_to_bf16(f));
  return v;
}

class LowpGemmTest : public ::testing::Test {
 protected:
  LowpGemmTest() : pool_(3) { ctx_.pool = &pool_; }
  ThreadPool pool_;
  DeviceContext ctx_;
  // n not a multiple of the panel, k odd and not a multiple of the q8 block; two stacked parts
  // (an f32 one and a bf16 one, as q/k/v may come).
  const int64_t n = 150, k = 333, n0 = 100;
  std::vector<float> w = random_vector(static_cast<size_t>(n * k), 21, 0.05f);
  std::vector<float> bias = random_vector(static_cast<size_t>(n), 22);
  std::vector<uint16_t> w1_bf16;

  std::vector<HostMatrix> parts() {
    w1_bf16.resize(static_cast<size_t>((n - n0) * k));
    for (size_t i = 0; i < w1_bf16.size(); ++i) w1_bf16[i] = f32_to_bf16(w[static_cast<size_t>(n0 * k) + i]);
    return {HostMatrix{w.data(), DType::kF32, n0, k, "w0"}, HostMatrix{w1_bf16.data(), DType::kBF16, n - n0, k, "w1"}};
  }
};

TEST_F(LowpGemmTest, Bf16MatchesTheReferenceOfRoundedOperandsOnEveryIsa) {
  std::vector<uint16_t> packed(static_cast<size_t>(cpu::bf16_packed_size(n, k)));
  cpu::pack_bf16(ctx_, parts(), k, packed.data());
  for (int64_t m : {1, 5, 131}) {
    const auto x = random_vector(static_cast<size_t>(m * k), 23 + static_cast<uint32_t>(m));
    // Products of bf16 are exact in f32: only the f32 sums round (k of them).
    const auto exact = reference(round_bf16(x), round_bf16(w), bias, m, n, k);
    // Against the f32 operands: bf16's 8-bit mantissa.
    const auto f32_ref = reference(x, w, bias, m, n, k);
    for (cpu::DotIsa isa : isas_here()) {
      std::vector<float> out(static_cast<size_t>(m * n));
      cpu::gemm_bf16(ctx_, x.data(), m, k, packed.data(), n, bias.data(), out.data(), isa);
      EXPECT_LT(rel_error(out, exact), 1e-5) << "m=" << m << " isa=" << cpu::dot_isa_name(isa);
      EXPECT_LT(rel_error(out, f32_ref), 1e-2) << "m=" << m << " isa=" << cpu::dot_isa_name(isa);
    }
  }
}

// q8's reference: the same quantization of w (f16 scale per block of 32) and of x (f32 scale),
// dequantized, multiplied in double.
std::vector<float> quantize_blocks(const std::vector<float>& v, int64_t rows, int64_t k, bool f16_scale) {
  std::vector<float> out(v.size());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t b0 = 0; b0 < k; b0 += cpu::kQ8Block) {
      const int64_t len = std::min(cpu::kQ8Block, k - b0);
      float amax = 0;
      for (int64_t i = 0; i < len; ++i) amax = std::max(amax, std::fabs(v[r * k + b0 + i]));
      float s = amax / 127.0f;
      if (f16_scale) s = f16_to_f32(f32_to_f16(s));
      const float inv = f16_scale ? (s > 0 ? 1.0f / s : 0.0f) : (amax > 0 ? 127.0f / amax : 0.0f);
      for (int64_t i = 0; i < len; ++i)
        out[r * k + b0 + i] = std::clamp(std::nearbyint(v[r * k + b0 + i] * inv), -127.0f, 127.0f) * s;
    }
  return out;
}

TEST_F(LowpGemmTest, Q8MatchesTheDequantizedReferenceAndIsBitwiseTheSameOnEveryIsa) {
  std::vector<uint8_t> codes(static_cast<size_t>(cpu::q8_codes_size(n, k)));
  std::vector<uint16_t> scales(static_cast<size_t>(cpu::q8_scales_size(n, k)));
  cpu::pack_q8(ctx_, parts(), k, codes.data(), scales.data());
  std::vector<float> wsrc = w;  // the bf16 part's values as the packer saw them
  for (size_t i = static_cast<size_t>(n0 * k); i < wsrc.size(); ++i) wsrc[i] = bf16_to_f32(f32_to_bf16(wsrc[i]));
  const auto wq = quantize_blocks(wsrc, n, k, true);
  for (int64_t m : {1, 4, 131}) {
    const auto x = random_vector(static_cast<size_t>(m * k), 33 + static_cast<uint32_t>(m));
    const auto dequantized = reference(quantize_blocks(x, m, k, false), wq, bias, m, n, k);
    const auto f32_ref = reference(x, w, bias, m, n, k);
    std::vector<float> first;
    for (cpu::DotIsa isa : isas_here()) {
      std::vector<float> out(static_cast<size_t>(m * n));
      cpu::gemm_q8(ctx_, x.data(), m, k, codes.data(), scales.data(), n, bias.data(), out.data(), isa);
      EXPECT_LT(rel_error(out, dequantized), 1e-5) << "m=" << m << " isa=" << cpu::dot_isa_name(isa);
      EXPECT_LT(rel_error(out, f32_ref), 2e-2) << "m=" << m << " isa=" << cpu::dot_isa_name(isa);
      if (first.empty()) first = out;
      EXPECT_EQ(0, std::memcmp(first.data(), out.data(), out.size() * sizeof(float))) << cpu::dot_isa_name(isa);
    }
  }
}

// Shapes of every kind of edge (k under one block, k not a whole block, n under or just over a
// panel, k long enough to be cut into cache blocks), batches that give every row-block size of
// every kernel, and the extreme codes: a weight block of one sign at its max (u8 code 255 or 1)
// against x at +-127, the largest products the int16 paths must keep exact.
TEST_F(LowpGemmTest, Q8IsBitwiseTheSameOnEveryIsaForOddShapesAndExtremeCodes) {
  struct Shape {
    int64_t n, k;
    std::vector<int64_t> ms;
  };
  for (const Shape& sh : {Shape{7, 5, {1, 2, 3}}, Shape{64, 32, {1, 4, 37}}, Shape{65, 97, {1, 3, 5, 37, 200}},
                          Shape{130, 8200, {1, 7}}}) {
    std::vector<float> ws = random_vector(static_cast<size_t>(sh.n * sh.k), 51, 0.05f);
    for (int64_t j = 0; j < sh.n; j += 3)  // every third output: one block all +max, the next all -max
      for (int64_t kk = 0; kk < std::min<int64_t>(sh.k, 64); ++kk) ws[j * sh.k + kk] = kk < 32 ? 0.5f : -0.5f;
    std::vector<uint8_t> codes(static_cast<size_t>(cpu::q8_codes_size(sh.n, sh.k)));
    std::vector<uint16_t> scales(static_cast<size_t>(cpu::q8_scales_size(sh.n, sh.k)));
    const HostMatrix part{ws.data(), DType::kF32, sh.n, sh.k, "w"};
    cpu::pack_q8(ctx_, std::span(&part, 1), sh.k, codes.data(), scales.data());
    const std::vector<float> b = random_vector(static_cast<size_t>(sh.n), 52);
    const auto wq = quantize_blocks(ws, sh.n, sh.k, true);
    for (int64_t m : sh.ms) {
      std::vector<float> x = random_vector(static_cast<size_t>(m * sh.k), 53 + static_cast<uint32_t>(m));
      for (int64_t r = 0; r < m; r += 2)  // every other row: x at +-127 over its first block
        for (int64_t kk = 0; kk < std::min<int64_t>(sh.k, 32); ++kk) x[r * sh.k + kk] = r % 4 == 0 ? 3.0f : -3.0f;
      const auto dequantized = reference(quantize_blocks(x, m, sh.k, false), wq, b, m, sh.n, sh.k);
      std::vector<float> first;
      for (cpu::DotIsa isa : isas_here()) {
        std::vector<float> out(static_cast<size_t>(m * sh.n));
        cpu::gemm_q8(ctx_, x.data(), m, sh.k, codes.data(), scales.data(), sh.n, b.data(), out.data(), isa);
        const std::string where = "n=" + std::to_string(sh.n) + " k=" + std::to_string(sh.k) +
                                  " m=" + std::to_string(m) + " isa=" + cpu::dot_isa_name(isa);
        EXPECT_LT(rel_error(out, dequantized), 1e-5) << where;
        if (first.empty()) first = out;
        EXPECT_EQ(0, std::memcmp(first.data(), out.data(), out.size() * sizeof(float))) << where;
      }
    }
  }
}

// A row's result is bitwise the same whatever the batch and the threads, for a given isa.
TEST_F(LowpGemmTest, RowsAreBitwiseIndependentOfBatchSizeAndThreads) {
  std::vector<uint16_t> packed(static_cast<size_t>(cpu::bf16_packed_size(n, k)));
  cpu::pack_bf16(ctx_, parts(), k, packed.data());
  std::vector<uint8_t> codes(static_cast<size_t>(cpu::q8_codes_size(n, k)));
  std::vector<uint16_t> scales(static_cast<size_t>(cpu::q8_scales_size(n, k)));
  cpu::pack_q8(ctx_, parts(), k, codes.data(), scales.data());
  const int64_t m_max = 200;
  const auto x = random_vector(static_cast<size_t>(m_max * k), 41);
  DeviceContext single;
  for (cpu::DotIsa isa : isas_here()) {
    for (bool q8 : {false, true}) {
      auto run = [&](const DeviceContext& c, int64_t first, int64_t m) {
        std::vector<float> out(static_cast<size_t>(m * n));
        if (q8) {
          cpu::gemm_q8(c, x.data() + first * k, m, k, codes.data(), scales.data(), n, bias.data(), out.data(), isa);
        } else {
          cpu::gemm_bf16(c, x.data() + first * k, m, k, packed.data(), n, bias.data(), out.data(), isa);
        }
        return out;
      };
      const auto full = run(ctx_, 0, m_max);
      for (int64_t m : {1, 37}) {
        const int64_t first = m_max - m;
        const auto part = run(m == 37 ? single : ctx_, first, m);
        ASSERT_EQ(0, std::memcmp(part.data(), full.data() + first * n, part.size() * sizeof(float)))
            << "m=" << m << " q8=" << q8 << " isa=" << cpu::dot_isa_name(isa);
      }
    }
  }
}

}  // namespace
}  // namespace kiln::runtime
