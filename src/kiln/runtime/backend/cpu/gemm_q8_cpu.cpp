#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "kiln/runtime/backend/cpu/gemm_lowp_cpu.h"
#include "kiln/runtime/backend/cpu/gemm_tiles_cpu.h"

#if defined(__x86_64__)
#include <immintrin.h>
#define KILN_GEMM_X86 1
// GCC 12's AVX-512 intrinsics (cvtph_ps, cvtepi32_ps, slli) pass an undefined merge source that
// -Wmaybe-uninitialized reports at every use.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace kiln::runtime::cpu {
namespace {

constexpr int64_t kP = kGemmPanel;
constexpr int64_t kB = kQ8Block;
constexpr int64_t kBlockBytes = kB * kP;  // one block of one panel's codes
// A panel slice of kKc blocks (64 KiB of codes) stays in L2 while the row blocks of a chunk
// stream past it; a panel of at most kWholePanelBytes is one slice.
constexpr int64_t kKc = 32;
constexpr int64_t kWholePanelBytes = 512 << 10;
constexpr int64_t kMc = 96;

// The activations quantized per block: codes (int8, [m][blocks * kB]), scales ([m][blocks]) and
// -128 * the sum of each block's codes ([m][blocks]), which takes out the +128 of the weights'
// unsigned codes: sum((w + 128) * x) - 128 * sum(x) = sum(w * x). `wide`: the codes as int16,
// for the kernels that multiply in int16 (null for the others).
struct QuantizedRows {
  const int8_t* codes;
  const int16_t* wide;
  const float* scales;
  const int32_t* offsets;
  int64_t blocks;
};

// Each kernel adds, for blocks b in [b0, b1), fma(float(dot_b), wscale * xscale, tile) for rows
// r0 .. r0 + MR - 1 of x (tile row stride kP).
template <int MR>
void kernel_scalar(const QuantizedRows& x, int64_t r0, const uint8_t* codes, const uint16_t* scales, int64_t b0,
                   int64_t b1, float* tile) {
  for (int64_t b = b0; b < b1; ++b) {
    const uint8_t* cb = codes + b * kBlockBytes;
    for (int r = 0; r < MR; ++r) {
      const int8_t* xq = x.codes + (r0 + r) * x.blocks * kB + b * kB;
      const float xs = x.scales[(r0 + r) * x.blocks + b];
      const int32_t off = x.offsets[(r0 + r) * x.blocks + b];
      float* t = tile + r * kP;
      for (int64_t j = 0; j < kP; ++j) {
        int32_t dot = off;
        for (int64_t i = 0; i < kB; ++i) dot += int32_t{cb[(i / 4) * kP * 4 + j * 4 + i % 4]} * int32_t{xq[i]};
        t[j] = std::fma(static_cast<float>(dot), f16_to_f32(scales[b * kP + j]) * xs, t[j]);
      }
    }
  }
}

#ifdef KILN_GEMM_X86
inline int32_t load4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

template <int MR>
__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni"))) void kernel_vnni(const QuantizedRows& x, int64_t r0,
                                                                                const uint8_t* codes,
                                                                                const uint16_t* scales, int64_t b0,
                                                                                int64_t b1, float* tile) {
  __m512 acc[MR][4];
#pragma GCC unroll 4
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < 4; ++v) acc[r][v] = _mm512_loadu_ps(tile + r * kP + v * 16);
  const int8_t* xq[MR];
  const float* xs[MR];
  const int32_t* xo[MR];
  for (int r = 0; r < MR; ++r) {
    xq[r] = x.codes + (r0 + r) * x.blocks * kB;
    xs[r] = x.scales + (r0 + r) * x.blocks;
    xo[r] = x.offsets + (r0 + r) * x.blocks;
  }
  for (int64_t b = b0; b < b1; ++b) {
    const uint8_t* cb = codes + b * kBlockBytes;
    __m512i dot[MR][4];
#pragma GCC unroll 4
    for (int r = 0; r < MR; ++r) {
      const __m512i off = _mm512_set1_epi32(xo[r][b]);
#pragma GCC unroll 4
      for (int v = 0; v < 4; ++v) dot[r][v] = off;
    }
#pragma GCC unroll 8
    for (int g = 0; g < kB / 4; ++g) {
      const uint8_t* cg = cb + g * kP * 4;
      const __m512i w0 = _mm512_loadu_si512(cg), w1 = _mm512_loadu_si512(cg + 64);
      const __m512i w2 = _mm512_loadu_si512(cg + 128), w3 = _mm512_loadu_si512(cg + 192);
#pragma GCC unroll 4
      for (int r = 0; r < MR; ++r) {
        const __m512i xr = _mm512_set1_epi32(load4(xq[r] + b * kB + g * 4));
        dot[r][0] = _mm512_dpbusd_epi32(dot[r][0], w0, xr);
        dot[r][1] = _mm512_dpbusd_epi32(dot[r][1], w1, xr);
        dot[r][2] = _mm512_dpbusd_epi32(dot[r][2], w2, xr);
        dot[r][3] = _mm512_dpbusd_epi32(dot[r][3], w3, xr);
      }
    }
    const uint16_t* sb = scales + b * kP;
#pragma GCC unroll 4
    for (int v = 0; v < 4; ++v) {
      const __m512 ws = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(sb + v * 16)));
#pragma GCC unroll 4
      for (int r = 0; r < MR; ++r) {
        const __m512 s = _mm512_mul_ps(ws, _mm512_set1_ps(xs[r][b]));
        acc[r][v] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot[r][v]), s, acc[r][v]);
      }
    }
  }
#pragma GCC unroll 4
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < 4; ++v) _mm512_storeu_ps(tile + r * kP + v * 16, acc[r][v]);
}

// Below VNNI: vpmaddubsw would saturate (a u8 code up to 255 times 127, two of them summed, passes
// int16), so codes and x are widened to int16 and vpmaddwd sums pairs of products exactly into
// int32. An output's 4 k of a group then fill two int32 lanes (k 4g, 4g+1 and 4g+2, 4g+3); the
// lanes are added once per block. Integer sums are exact in any order, so the block's dot, and
// with it every bit of the result, is the scalar kernel's.
inline int64_t load8(const int16_t* p) {
  int64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

// 16 registers: each block is done in quarters of 16 outputs (8 int32 accumulators for 2 rows),
// the quarters inside the block loop so that the panel is read once, in order (quarters outside
// it read every fourth line, which streams a large weight at a third of the speed). The f32 tile
// stays in memory (L1): it is touched once per block and quarter.
template <int MR>
__attribute__((target("avx2,fma,f16c"))) void kernel_avx2(const QuantizedRows& x, int64_t r0, const uint8_t* codes,
                                                         const uint16_t* scales, int64_t b0, int64_t b1,
                                                         float* tile) {
  // One row has the registers for halves of 32 outputs (8 accumulators).
  constexpr int kV = MR == 1 ? 8 : 4;
  for (int64_t b = b0; b < b1; ++b) {
    const int16_t* xw[MR];
#pragma GCC unroll 4
    for (int r = 0; r < MR; ++r) xw[r] = x.wide + ((r0 + r) * x.blocks + b) * kB;
    for (int64_t c0 = 0; c0 < kP; c0 += 4 * kV) {
      const uint8_t* cb = codes + b * kBlockBytes + c0 * 4;
      __m256i dot[MR][kV];
#pragma GCC unroll 4
      for (int r = 0; r < MR; ++r)
#pragma GCC unroll 8
        for (int v = 0; v < kV; ++v) dot[r][v] = _mm256_setzero_si256();
      // Not unrolled: GCC would reassociate the integer sums across groups and spill.
#pragma GCC unroll 1
      for (int g = 0; g < kB / 4; ++g) {
        __m256i xr[MR];
#pragma GCC unroll 4
        for (int r = 0; r < MR; ++r) xr[r] = _mm256_set1_epi64x(load8(xw[r] + g * 4));
#pragma GCC unroll 8
        for (int v = 0; v < kV; ++v) {  // outputs c0 + 4v .. c0 + 4v + 3
          const __m256i w =
              _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(cb + g * kP * 4 + v * 16)));
#pragma GCC unroll 4
          for (int r = 0; r < MR; ++r) dot[r][v] = _mm256_add_epi32(dot[r][v], _mm256_madd_epi16(w, xr[r]));
        }
      }
      const uint16_t* sb = scales + b * kP + c0;
#pragma GCC unroll 4
      for (int r = 0; r < MR; ++r) {
        const int64_t i = (r0 + r) * x.blocks + b;
        const __m256i off = _mm256_set1_epi32(x.offsets[i]);
        const __m256 xs = _mm256_set1_ps(x.scales[i]);
#pragma GCC unroll 4
        for (int h = 0; h < kV / 2; ++h) {  // outputs c0 + 8h .. c0 + 8h + 7
          // hadd leaves outputs (0 1 4 5 | 2 3 6 7); 0xD8 orders the 64-bit quarters 0 2 1 3.
          const __m256i d = _mm256_add_epi32(
              _mm256_permute4x64_epi64(_mm256_hadd_epi32(dot[r][2 * h], dot[r][2 * h + 1]), 0xD8), off);
          const __m256 ws = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(sb + 8 * h)));
          float* t = tile + r * kP + c0 + 8 * h;
          _mm256_storeu_ps(t, _mm256_fmadd_ps(_mm256_cvtepi32_ps(d), _mm256_mul_ps(ws, xs), _mm256_loadu_ps(t)));
        }
      }
    }
  }
}

// AVX-512BW without VNNI: as kernel_avx2 with 512-bit registers, the whole panel for up to 2 rows
// (8 accumulators each), halves of 32 outputs for more.
template <int MR>
__attribute__((target("avx512f,avx512bw"))) void kernel_avx512(const QuantizedRows& x, int64_t r0,
                                                               const uint8_t* codes, const uint16_t* scales,
                                                               int64_t b0, int64_t b1, float* tile) {
  constexpr int kV = MR <= 2 ? 8 : 4;
  // Even and odd int32 lanes of two registers: the two halves of 16 outputs' dots.
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
  for (int64_t b = b0; b < b1; ++b) {
    const int16_t* xw[MR];
#pragma GCC unroll 4
    for (int r = 0; r < MR; ++r) xw[r] = x.wide + ((r0 + r) * x.blocks + b) * kB;
    for (int64_t c0 = 0; c0 < kP; c0 += 8 * kV) {
      const uint8_t* cb = codes + b * kBlockBytes + c0 * 4;
      __m512i dot[MR][kV];
#pragma GCC unroll 4
      for (int r = 0; r < MR; ++r)
#pragma GCC unroll 8
        for (int v = 0; v < kV; ++v) dot[r][v] = _mm512_setzero_si512();
#pragma GCC unroll 1
      for (int g = 0; g < kB / 4; ++g) {
        __m512i xr[MR];
#pragma GCC unroll 4
        for (int r = 0; r < MR; ++r) xr[r] = _mm512_set1_epi64(load8(xw[r] + g * 4));
#pragma GCC unroll 8
        for (int v = 0; v < kV; ++v) {  // outputs c0 + 8v .. c0 + 8v + 7
          const __m512i w =
              _mm512_cvtepu8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(cb + g * kP * 4 + v * 32)));
#pragma GCC unroll 4
          for (int r = 0; r < MR; ++r) dot[r][v] = _mm512_add_epi32(dot[r][v], _mm512_madd_epi16(w, xr[r]));
        }
      }
      const uint16_t* sb = scales + b * kP + c0;
#pragma GCC unroll 4
      for (int r = 0; r < MR; ++r) {
        const int64_t i = (r0 + r) * x.blocks + b;
        const __m512i off = _mm512_set1_epi32(x.offsets[i]);
        const __m512 xs = _mm512_set1_ps(x.scales[i]);
#pragma GCC unroll 4
        for (int h = 0; h < kV / 2; ++h) {  // outputs c0 + 16h .. c0 + 16h + 15
          const __m512i lo = dot[r][2 * h], hi = dot[r][2 * h + 1];
          const __m512i d = _mm512_add_epi32(
              _mm512_add_epi32(_mm512_permutex2var_epi32(lo, even, hi), _mm512_permutex2var_epi32(lo, odd, hi)), off);
          const __m512 ws = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(sb + 16 * h)));
          float* t = tile + r * kP + c0 + 16 * h;
          _mm512_storeu_ps(t, _mm512_fmadd_ps(_mm512_cvtepi32_ps(d), _mm512_mul_ps(ws, xs), _mm512_loadu_ps(t)));
        }
      }
    }
  }
}
#endif

using Kernel = void (*)(const QuantizedRows&, int64_t, const uint8_t*, const uint16_t*, int64_t, int64_t, float*);

struct KernelSet : GemmKernelSet<Kernel> {
  bool wide_x = false;  // the kernels read QuantizedRows::wide
};

KernelSet kernels_for(DotIsa isa) {
  KernelSet s;
#ifdef KILN_GEMM_X86
  if (isa >= DotIsa::kAvx512Vnni) {
    s.use<3>([]<int R>() { return &kernel_vnni<R>; });
    return s;
  }
  // kAvx512 alone may be AVX-512F without BW (Xeon Phi), whose AVX2 runs the level instead.
  if (isa >= DotIsa::kAvx512 && cpu_has_avx512bw()) {
    s.wide_x = true;
    s.use<4>([]<int R>() { return &kernel_avx512<R>; });
    return s;
  }
  if (isa >= DotIsa::kAvx2) {
    s.wide_x = true;
    s.use<2>([]<int R>() { return &kernel_avx2<R>; });
    return s;
  }
#endif
  s.use<3>([]<int R>() { return &kernel_scalar<R>; });
  return s;
}

}  // namespace

void gemm_q8(const DeviceContext& ctx, const float* x, int64_t m, int64_t k, const uint8_t* codes,
             const uint16_t* scales, int64_t n, const float* bias, float* out, DotIsa isa) {
  if (m <= 0 || n <= 0) return;
  const int64_t blocks = q8_blocks(k);
  const KernelSet ks = kernels_for(isa);
  // The activations quantized once per call on the calling thread (m * k is small next to the
  // product), into buffers reused across calls.
  thread_local std::vector<int8_t> xq;
  thread_local std::vector<int16_t> xw;
  thread_local std::vector<float> xs;
  thread_local std::vector<int32_t> xo;
  xq.resize(static_cast<size_t>(m * blocks * kB));
  if (ks.wide_x) xw.resize(static_cast<size_t>(m * blocks * kB));
  xs.resize(static_cast<size_t>(m * blocks));
  xo.resize(static_cast<size_t>(m * blocks));
  for (int64_t r = 0; r < m; ++r) {
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t k0 = b * kB, len = std::min(kB, k - k0);
      const float* xb = x + r * k + k0;
      float amax = 0.0f;
      for (int64_t i = 0; i < len; ++i) amax = std::max(amax, std::fabs(xb[i]));
      const float scale = amax / 127.0f, inv = amax > 0.0f ? 127.0f / amax : 0.0f;
      int8_t* q = xq.data() + r * blocks * kB + k0;
      int32_t sum = 0;
      for (int64_t i = 0; i < kB; ++i) {
        const float v = i < len ? std::clamp(std::nearbyint(xb[i] * inv), -127.0f, 127.0f) : 0.0f;
        q[i] = static_cast<int8_t>(v);
        sum += q[i];
      }
      xs[static_cast<size_t>(r * blocks + b)] = scale;
      xo[static_cast<size_t>(r * blocks + b)] = -128 * sum;
    }
  }
  if (ks.wide_x) std::copy(xq.begin(), xq.begin() + m * blocks * kB, xw.begin());
  const QuantizedRows rows{xq.data(), ks.wide_x ? xw.data() : nullptr, xs.data(), xo.data(), blocks};
  const int64_t kc = blocks * kBlockBytes <= kWholePanelBytes ? blocks : kKc;
  for_each_gemm_tile(ctx, m, n, blocks, kc, ks.max_mr, kMc, bias, out,
                     [&](int64_t r0, int mr, int64_t p, int64_t b0, int64_t b1, float* tile) {
                       ks.by_mr[mr](rows, r0, codes + p * blocks * kBlockBytes, scales + p * blocks * kP, b0, b1,
                                    tile);
                     });
}

}  // namespace kiln::runtime::cpu
