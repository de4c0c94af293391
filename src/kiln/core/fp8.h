// float8_e4m3fn, the element type of FP8 checkpoints: 1 sign, 4 exponent (bias 7) and 3 mantissa
// bits; no infinities; S.1111.111 is NaN, so the largest finite value is ±448 (S.1111.110);
// exponent 0 holds subnormals m/8 · 2^-6.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

namespace kiln {

inline constexpr float kE4M3Max = 448.0f;

inline float e4m3_to_f32(uint8_t code) {
  const uint32_t exp = (code >> 3) & 0xfu, mant = code & 0x7u;
  float v;
  if (exp == 0xf && mant == 0x7) v = NAN;
  else if (exp == 0) v = std::ldexp(static_cast<float>(mant), -9);
  else v = std::ldexp(static_cast<float>(8u | mant), static_cast<int>(exp) - 10);
  return (code & 0x80u) ? -v : v;
}

// Rounds to the nearest e4m3fn value, ties to even, as torch's conversion does. NaN becomes NaN
// (0x7f with the sign). Finite values beyond ±448 saturate to ±448 where torch would give NaN:
// every quantizer clamps to ±448 before converting (both published formats do), so the two agree
// on all values a quantizer produces.
inline uint8_t f32_to_e4m3(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  const uint8_t sign = static_cast<uint8_t>((bits >> 24) & 0x80u);
  const uint32_t abs = bits & 0x7fffffffu;
  if (abs > 0x7f800000u) return static_cast<uint8_t>(sign | 0x7fu);
  float a;
  std::memcpy(&a, &abs, 4);
  if (a >= kE4M3Max) return static_cast<uint8_t>(sign | 0x7eu);
  if (abs < 0x3c800000u) {  // below 2^-6: a multiple of the subnormal step 2^-9; 8 steps is 0x08
    return static_cast<uint8_t>(sign | static_cast<uint32_t>(std::nearbyint(a * 512.0f)));
  }
  // Keep 3 of the 23 mantissa bits, rounding the 20 dropped ones to nearest even; rebias 127 -> 7.
  const uint32_t rounded = abs + 0x7ffffu + ((abs >> 20) & 1u);
  uint32_t code = (rounded >> 20) - (120u << 3);
  if (code > 0x7eu) code = 0x7eu;
  return static_cast<uint8_t>(sign | code);
}

}  // namespace kiln
