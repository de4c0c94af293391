// Sixteen float lanes with one arithmetic on every instruction set.
//
// A kernel written once against `Ops` (a template parameter) runs as AVX-512 (one register),
// AVX2 (two registers) or plain C++ (an array), and gives bit-identical results on all three:
// `fma` rounds once per lane (std::fma in the portable form), `load`/`store` take a lane count
// (16 or more: all) so tails need no special case, and `sum` adds the lanes in one fixed tree:
// l + (l + 8), then + 4, + 2, + 1.
//
// max(a, b) is a > b ? a : b per lane, which is what x86's maxps computes, NaNs included.
//
// The lane operations carry their instruction set's target attribute and always inline, so a
// kernel that uses them must itself be compiled for that set: write it in a file included under
// `#pragma GCC target(...)` once per set (see attention_cpu.cpp).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__x86_64__)
#include <immintrin.h>
#define KILN_LANES_X86 1
#endif

#define KILN_LANES_INLINE __attribute__((always_inline)) inline

namespace kiln::runtime::cpu::lanes {

struct Portable {
  struct V {
    float l[16];
  };
  static KILN_LANES_INLINE V zero() { return V{}; }
  static KILN_LANES_INLINE V broadcast(float x) {
    V v;
    for (float& e : v.l) e = x;
    return v;
  }
  static KILN_LANES_INLINE V load(const float* p, int n) {
    V v{};
    std::memcpy(v.l, p, sizeof(float) * static_cast<size_t>(n < 16 ? n : 16));
    return v;
  }
  static KILN_LANES_INLINE void store(float* p, const V& v, int n) {
    std::memcpy(p, v.l, sizeof(float) * static_cast<size_t>(n < 16 ? n : 16));
  }
  static KILN_LANES_INLINE V fma(const V& a, const V& b, const V& c) {
    V r;
    for (int i = 0; i < 16; ++i) r.l[i] = std::fma(a.l[i], b.l[i], c.l[i]);
    return r;
  }
  static KILN_LANES_INLINE V add(const V& a, const V& b) {
    V r;
    for (int i = 0; i < 16; ++i) r.l[i] = a.l[i] + b.l[i];
    return r;
  }
  static KILN_LANES_INLINE V mul(const V& a, const V& b) {
    V r;
    for (int i = 0; i < 16; ++i) r.l[i] = a.l[i] * b.l[i];
    return r;
  }
  static KILN_LANES_INLINE V div(const V& a, const V& b) {
    V r;
    for (int i = 0; i < 16; ++i) r.l[i] = a.l[i] / b.l[i];
    return r;
  }
  static KILN_LANES_INLINE V max(const V& a, const V& b) {
    V r;
    for (int i = 0; i < 16; ++i) r.l[i] = a.l[i] > b.l[i] ? a.l[i] : b.l[i];
    return r;
  }
  // Nearest integer, ties to even (the default rounding mode).
  static KILN_LANES_INLINE V round(const V& a) {
    V r;
    for (int i = 0; i < 16; ++i) r.l[i] = std::nearbyint(a.l[i]);
    return r;
  }
  // 2^n for integral n in [-126, 127].
  static KILN_LANES_INLINE V pow2(const V& n) {
    V r;
    for (int i = 0; i < 16; ++i) {
      const uint32_t bits = static_cast<uint32_t>(static_cast<int32_t>(n.l[i]) + 127) << 23;
      std::memcpy(&r.l[i], &bits, sizeof(float));
    }
    return r;
  }
  static KILN_LANES_INLINE float sum(const V& v) {
    float t[8];
    for (int i = 0; i < 8; ++i) t[i] = v.l[i] + v.l[i + 8];
    for (int i = 0; i < 4; ++i) t[i] = t[i] + t[i + 4];
    for (int i = 0; i < 2; ++i) t[i] = t[i] + t[i + 2];
    return t[0] + t[1];
  }
};

#ifdef KILN_LANES_X86
#define KILN_TARGET_AVX512 __attribute__((target("avx512f")))
#define KILN_TARGET_AVX2 __attribute__((target("avx2,fma")))

struct Avx512 {
  using V = __m512;
  static KILN_TARGET_AVX512 KILN_LANES_INLINE V zero() { return _mm512_setzero_ps(); }
  static KILN_TARGET_AVX512 KILN_LANES_INLINE V broadcast(float x) { return _mm512_set1_ps(x); }
  static KILN_TARGET_AVX512 KILN_LANES_INLINE __mmask16 mask(int n) {
    return static_cast<__mmask16>(n >= 16 ? 0xffff : (1u << n) - 1);
  }
  static KILN_TARGET_AVX512 KILN_LANES_INLINE V load(const float* p, int n) {
    return n >= 16 ? _mm512_loadu_ps(p) : _mm512_maskz_loadu_ps(mask(n), p);
  }
  static KILN_TARGET_AVX512 KILN_LANES_INLINE void store(float* p, V v, int n) {
    if (n >= 16) {
      _mm512_storeu_ps(p, v);
    } else {
      _mm512_mask_storeu_ps(p, mask(n), v);
    }
  }
  static KILN_TARGET_AVX512 KILN_LANES_INLINE V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static KILN_TARGET_AVX512 KILN_LANES_INLINE V add(V a, V b) { return _mm512_add_ps(a, b); }
  static KILN_TARGET_AVX512 KILN_LANES_INLINE V mul(V a, V b) { return _mm512_mul_ps(a, b); }
  static KILN_TARGET_AVX512 KILN_LANES_INLINE V div(V a, V b) { return _mm512_div_ps(a, b); }
  static KILN_TARGET_AVX512 KILN_LANES_INLINE V max(V a, V b) { return _mm512_max_ps(a, b); }
  static KILN_TARGET_AVX512 KILN_LANES_INLINE V round(V a) {
    return _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  }
  static KILN_TARGET_AVX512 KILN_LANES_INLINE V pow2(V n) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23));
  }
  static KILN_TARGET_AVX512 KILN_LANES_INLINE float sum(V v) {
    // Lanes 8-15 moved down onto 0-7 (a 128-bit block shuffle), then the 256-bit tree.
    const __m512 t16 = _mm512_add_ps(v, _mm512_shuffle_f32x4(v, v, 0x4e));
    const __m256 t8 = _mm512_castps512_ps256(t16);
    const __m128 t4 = _mm_add_ps(_mm256_castps256_ps128(t8), _mm256_extractf128_ps(t8, 1));
    const __m128 t2 = _mm_add_ps(t4, _mm_movehl_ps(t4, t4));
    const __m128 t1 = _mm_add_ss(t2, _mm_shuffle_ps(t2, t2, 1));
    return _mm_cvtss_f32(t1);
  }
};

struct Avx2 {
  struct V {
    __m256 lo, hi;  // lanes 0-7, 8-15
  };
  static KILN_TARGET_AVX2 KILN_LANES_INLINE V zero() { return {_mm256_setzero_ps(), _mm256_setzero_ps()}; }
  static KILN_TARGET_AVX2 KILN_LANES_INLINE V broadcast(float x) { return {_mm256_set1_ps(x), _mm256_set1_ps(x)}; }
  static KILN_TARGET_AVX2 KILN_LANES_INLINE __m256i mask(int n) {
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), idx);
  }
  static KILN_TARGET_AVX2 KILN_LANES_INLINE V load(const float* p, int n) {
    if (n >= 16) return {_mm256_loadu_ps(p), _mm256_loadu_ps(p + 8)};
    if (n >= 8) return {_mm256_loadu_ps(p), _mm256_maskload_ps(p + 8, mask(n - 8))};
    return {_mm256_maskload_ps(p, mask(n)), _mm256_setzero_ps()};
  }
  static KILN_TARGET_AVX2 KILN_LANES_INLINE void store(float* p, const V& v, int n) {
    if (n >= 16) {
      _mm256_storeu_ps(p, v.lo);
      _mm256_storeu_ps(p + 8, v.hi);
    } else if (n >= 8) {
      _mm256_storeu_ps(p, v.lo);
      _mm256_maskstore_ps(p + 8, mask(n - 8), v.hi);
    } else {
      _mm256_maskstore_ps(p, mask(n), v.lo);
    }
  }
  static KILN_TARGET_AVX2 KILN_LANES_INLINE V fma(const V& a, const V& b, const V& c) {
    return {_mm256_fmadd_ps(a.lo, b.lo, c.lo), _mm256_fmadd_ps(a.hi, b.hi, c.hi)};
  }
  static KILN_TARGET_AVX2 KILN_LANES_INLINE V add(const V& a, const V& b) {
    return {_mm256_add_ps(a.lo, b.lo), _mm256_add_ps(a.hi, b.hi)};
  }
  static KILN_TARGET_AVX2 KILN_LANES_INLINE V mul(const V& a, const V& b) {
    return {_mm256_mul_ps(a.lo, b.lo), _mm256_mul_ps(a.hi, b.hi)};
  }
  static KILN_TARGET_AVX2 KILN_LANES_INLINE V div(const V& a, const V& b) {
    return {_mm256_div_ps(a.lo, b.lo), _mm256_div_ps(a.hi, b.hi)};
  }
  static KILN_TARGET_AVX2 KILN_LANES_INLINE V max(const V& a, const V& b) {
    return {_mm256_max_ps(a.lo, b.lo), _mm256_max_ps(a.hi, b.hi)};
  }
  static KILN_TARGET_AVX2 KILN_LANES_INLINE V round(const V& a) {
    constexpr int kMode = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
    return {_mm256_round_ps(a.lo, kMode), _mm256_round_ps(a.hi, kMode)};
  }
  static KILN_TARGET_AVX2 KILN_LANES_INLINE __m256 pow2(__m256 n) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23));
  }
  static KILN_TARGET_AVX2 KILN_LANES_INLINE V pow2(const V& n) { return {pow2(n.lo), pow2(n.hi)}; }
  static KILN_TARGET_AVX2 KILN_LANES_INLINE float sum(const V& v) {
    const __m256 t8 = _mm256_add_ps(v.lo, v.hi);
    const __m128 t4 = _mm_add_ps(_mm256_castps256_ps128(t8), _mm256_extractf128_ps(t8, 1));
    const __m128 t2 = _mm_add_ps(t4, _mm_movehl_ps(t4, t4));
    const __m128 t1 = _mm_add_ss(t2, _mm_shuffle_ps(t2, t2, 1));
    return _mm_cvtss_f32(t1);
  }
};
#endif

}  // namespace kiln::runtime::cpu::lanes
