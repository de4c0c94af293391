#include "kiln/core/fp8.h"

#include <gtest/gtest.h>

#include <cmath>

#include "kiln/core/dtype.h"

namespace kiln {
namespace {

// The e4m3fn value of every code, from the format's definition (OCP FP8 spec, "E4M3"): normal
// (-1)^s · 2^(e-7) · (1 + m/8) for e in 1..15 except S.1111.111 (NaN), subnormal (-1)^s · 2^-6 · m/8.
double reference_value(int code) {
  const int s = code >> 7, e = (code >> 3) & 15, m = code & 7;
  if (e == 15 && m == 7) return NAN;
  const double mag = e == 0 ? std::pow(2.0, -6) * (m / 8.0) : std::pow(2.0, e - 7) * (1.0 + m / 8.0);
  return s ? -mag : mag;
}

TEST(Fp8, DecodesEveryCodeExactly) {
  int nans = 0;
  for (int c = 0; c < 256; ++c) {
    const double want = reference_value(c);
    const float got = e4m3_to_f32(static_cast<uint8_t>(c));
    if (std::isnan(want)) {
      EXPECT_TRUE(std::isnan(got)) << c;
      ++nans;
      continue;
    }
    EXPECT_EQ(static_cast<double>(got), want) << "code " << c;
    EXPECT_EQ(std::signbit(got), (c & 0x80) != 0) << "code " << c;  // -0 is 0x80
  }
  EXPECT_EQ(nans, 2);  // 0x7f and 0xff only: e4m3fn has no infinities
  EXPECT_EQ(e4m3_to_f32(0x7e), 448.0f);
  EXPECT_EQ(e4m3_to_f32(0x01), std::ldexp(1.0f, -9));
}

TEST(Fp8, EncodeInvertsDecodeForEveryFiniteCode) {
  for (int c = 0; c < 256; ++c) {
    const float v = e4m3_to_f32(static_cast<uint8_t>(c));
    if (std::isnan(v)) continue;
    EXPECT_EQ(f32_to_e4m3(v), c) << "value " << v;
  }
}

TEST(Fp8, RoundsToNearestEvenBetweenNeighbours) {
  // For each pair of adjacent non-negative finite codes: just below the midpoint goes down, just
  // above goes up, the midpoint itself to the even code.
  for (int c = 0; c < 0x7e; ++c) {
    const float lo = e4m3_to_f32(static_cast<uint8_t>(c)), hi = e4m3_to_f32(static_cast<uint8_t>(c + 1));
    const float mid = (lo + hi) / 2;  // exact in f32
    EXPECT_EQ(f32_to_e4m3(std::nextafter(mid, lo)), c) << mid;
    EXPECT_EQ(f32_to_e4m3(std::nextafter(mid, hi)), c + 1) << mid;
    EXPECT_EQ(f32_to_e4m3(mid), (c % 2 == 0) ? c : c + 1) << mid;
    EXPECT_EQ(f32_to_e4m3(-mid), 0x80 | ((c % 2 == 0) ? c : c + 1)) << -mid;
  }
}

TEST(Fp8, SaturatesAndKeepsNan) {
  EXPECT_EQ(f32_to_e4m3(448.0f), 0x7e);
  EXPECT_EQ(f32_to_e4m3(1e6f), 0x7e);
  EXPECT_EQ(f32_to_e4m3(-INFINITY), 0xfe);
  EXPECT_EQ(f32_to_e4m3(NAN) & 0x7f, 0x7f);
  EXPECT_EQ(f32_to_e4m3(std::ldexp(1.0f, -11)), 0x00);  // a quarter step rounds to zero
  EXPECT_EQ(f32_to_e4m3(std::ldexp(3.0f, -10)), 0x02);  // 1.5 steps of 2^-9: tie to even (2)
  EXPECT_EQ(f32_to_e4m3(std::ldexp(5.0f, -10)), 0x02);  // 2.5 steps: tie to even (2)
}

TEST(Fp8, DtypeNameAndWidening) {
  DType t;
  ASSERT_TRUE(parse_dtype("F8_E4M3", &t));
  EXPECT_EQ(t, DType::kF8E4M3);
  EXPECT_EQ(dtype_size(t), 1u);
  const uint8_t codes[3] = {0x38, 0xb8, 0x7e};  // 1, -1, 448
  float out[3];
  convert_to_f32(codes, DType::kF8E4M3, 3, out);
  EXPECT_EQ(out[0], 1.0f);
  EXPECT_EQ(out[1], -1.0f);
  EXPECT_EQ(out[2], 448.0f);
}

}  // namespace
}  // namespace kiln
