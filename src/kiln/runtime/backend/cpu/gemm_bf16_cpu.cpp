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
// As the f32 GEMM: a panel slice of kKc pairs (64 KiB) stays in L2 while the row blocks of a chunk
// stream past it; a panel of at most kWholePanelBytes is one block.
constexpr int64_t kKc = 256;
constexpr int64_t kWholePanelBytes = 512 << 10;
constexpr int64_t kMc = 96;

// Each kernel adds, for pairs q in [q0, q1), x[r, 2q] * w[2q, j] + x[r, 2q+1] * w[2q+1, j] into
// tile[r, j] (row stride kP). x: bf16 rows of `ldx` pairs; panel: kP * 2 bf16 per pair.
template <int MR>
void kernel_scalar(const uint16_t* x, int64_t ldx, const uint16_t* panel, int64_t q0, int64_t q1, float* tile) {
  for (int64_t q = q0; q < q1; ++q) {
    const uint16_t* wq = panel + q * kP * 2;
    for (int r = 0; r < MR; ++r) {
      const float x0 = bf16_to_f32(x[(r * ldx + q) * 2]), x1 = bf16_to_f32(x[(r * ldx + q) * 2 + 1]);
      float* t = tile + r * kP;
      for (int64_t j = 0; j < kP; ++j) {
        t[j] = std::fma(x0, bf16_to_f32(wq[j * 2]), t[j]);
        t[j] = std::fma(x1, bf16_to_f32(wq[j * 2 + 1]), t[j]);
      }
    }
  }
}

#ifdef KILN_GEMM_X86
inline int32_t load_pair(const uint16_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

template <int MR>
__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16"))) void kernel_dpbf16(const uint16_t* x, int64_t ldx,
                                                                                 const uint16_t* panel, int64_t q0,
                                                                                 int64_t q1, float* tile) {
  __m512 acc[MR][4];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < 4; ++v) acc[r][v] = _mm512_loadu_ps(tile + r * kP + v * 16);
  for (int64_t q = q0; q < q1; ++q) {
    const uint16_t* wq = panel + q * kP * 2;
    const __m512bh w0 = (__m512bh)_mm512_loadu_si512(wq), w1 = (__m512bh)_mm512_loadu_si512(wq + 32);
    const __m512bh w2 = (__m512bh)_mm512_loadu_si512(wq + 64), w3 = (__m512bh)_mm512_loadu_si512(wq + 96);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const __m512bh xr = (__m512bh)_mm512_set1_epi32(load_pair(x + (r * ldx + q) * 2));
      acc[r][0] = _mm512_dpbf16_ps(acc[r][0], xr, w0);
      acc[r][1] = _mm512_dpbf16_ps(acc[r][1], xr, w1);
      acc[r][2] = _mm512_dpbf16_ps(acc[r][2], xr, w2);
      acc[r][3] = _mm512_dpbf16_ps(acc[r][3], xr, w3);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < 4; ++v) _mm512_storeu_ps(tile + r * kP + v * 16, acc[r][v]);
}

// Without vdpbf16ps: each 32-bit lane holds a (k even, k odd) pair; shifting and masking give the
// two halves as f32.
template <int MR>
__attribute__((target("avx512f"))) void kernel_avx512(const uint16_t* x, int64_t ldx, const uint16_t* panel,
                                                      int64_t q0, int64_t q1, float* tile) {
  __m512 acc[MR][4];
  const __m512i hi = _mm512_set1_epi32(static_cast<int32_t>(0xffff0000u));
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < 4; ++v) acc[r][v] = _mm512_loadu_ps(tile + r * kP + v * 16);
  for (int64_t q = q0; q < q1; ++q) {
    const uint16_t* wq = panel + q * kP * 2;
    __m512 we[4], wo[4];
#pragma GCC unroll 4
    for (int v = 0; v < 4; ++v) {
      const __m512i w = _mm512_loadu_si512(wq + v * 32);
      we[v] = _mm512_castsi512_ps(_mm512_slli_epi32(w, 16));
      wo[v] = _mm512_castsi512_ps(_mm512_and_si512(w, hi));
    }
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const __m512 x0 = _mm512_set1_ps(bf16_to_f32(x[(r * ldx + q) * 2]));
      const __m512 x1 = _mm512_set1_ps(bf16_to_f32(x[(r * ldx + q) * 2 + 1]));
#pragma GCC unroll 4
      for (int v = 0; v < 4; ++v) acc[r][v] = _mm512_fmadd_ps(x1, wo[v], _mm512_fmadd_ps(x0, we[v], acc[r][v]));
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < 4; ++v) _mm512_storeu_ps(tile + r * kP + v * 16, acc[r][v]);
}

// AVX2 has 16 registers: the panel is done as two halves of 32 columns.
template <int MR>
__attribute__((target("avx2,fma"))) void kernel_avx2(const uint16_t* x, int64_t ldx, const uint16_t* panel,
                                                    int64_t q0, int64_t q1, float* tile) {
  const __m256i hi = _mm256_set1_epi32(static_cast<int32_t>(0xffff0000u));
  for (int64_t half = 0; half < 2; ++half) {
    const int64_t c0 = half * 32;
    __m256 acc[MR][4];
#pragma GCC unroll 4
    for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
      for (int v = 0; v < 4; ++v) acc[r][v] = _mm256_loadu_ps(tile + r * kP + c0 + v * 8);
    for (int64_t q = q0; q < q1; ++q) {
      const uint16_t* wq = panel + q * kP * 2 + c0 * 2;
#pragma GCC unroll 4
      for (int v = 0; v < 4; ++v) {
        const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wq + v * 16));
        const __m256 we = _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
        const __m256 wo = _mm256_castsi256_ps(_mm256_and_si256(w, hi));
#pragma GCC unroll 4
        for (int r = 0; r < MR; ++r) {
          const __m256 x0 = _mm256_set1_ps(bf16_to_f32(x[(r * ldx + q) * 2]));
          const __m256 x1 = _mm256_set1_ps(bf16_to_f32(x[(r * ldx + q) * 2 + 1]));
          acc[r][v] = _mm256_fmadd_ps(x1, wo, _mm256_fmadd_ps(x0, we, acc[r][v]));
        }
      }
    }
#pragma GCC unroll 4
    for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
      for (int v = 0; v < 4; ++v) _mm256_storeu_ps(tile + r * kP + c0 + v * 8, acc[r][v]);
  }
}
#endif

using Kernel = void (*)(const uint16_t*, int64_t, const uint16_t*, int64_t, int64_t, float*);

using KernelSet = GemmKernelSet<Kernel>;

KernelSet kernels_for(DotIsa isa) {
  KernelSet s;
#ifdef KILN_GEMM_X86
  if (isa >= DotIsa::kAvx512Bf16) {
    s.use<6>([]<int R>() { return &kernel_dpbf16<R>; });
    return s;
  }
  if (isa >= DotIsa::kAvx512) {
    s.use<4>([]<int R>() { return &kernel_avx512<R>; });
    return s;
  }
  if (isa >= DotIsa::kAvx2) {
    s.use<2>([]<int R>() { return &kernel_avx2<R>; });
    return s;
  }
#endif
  s.use<4>([]<int R>() { return &kernel_scalar<R>; });
  return s;
}

}  // namespace

void gemm_bf16(const DeviceContext& ctx, const float* x, int64_t m, int64_t k, const uint16_t* packed, int64_t n,
               const float* bias, float* out, DotIsa isa) {
  if (m <= 0 || n <= 0) return;
  const int64_t pairs = (k + 1) / 2;
  // The activations once in bf16 (a zero pads an odd k), on the calling thread: m * k is small
  // next to the product's m * k * n. Reused across calls: the engine thread calls this for every
  // linear of every step.
  thread_local std::vector<uint16_t> xb;
  xb.resize(static_cast<size_t>(m * pairs * 2));
  for (int64_t r = 0; r < m; ++r) {
    uint16_t* row = xb.data() + r * pairs * 2;
    for (int64_t kk = 0; kk < k; ++kk) row[kk] = f32_to_bf16(x[r * k + kk]);
    if (k % 2 != 0) row[k] = 0;
  }
  const KernelSet ks = kernels_for(isa);
  const int64_t kc = pairs * kP * 4 <= kWholePanelBytes ? pairs : kKc;
  const uint16_t* xs = xb.data();
  for_each_gemm_tile(ctx, m, n, pairs, kc, ks.max_mr, kMc, bias, out,
                     [&](int64_t r0, int mr, int64_t p, int64_t q0, int64_t q1, float* tile) {
                       ks.by_mr[mr](xs + r0 * pairs * 2, pairs, packed + p * pairs * kP * 2, q0, q1, tile);
                     });
}

}  // namespace kiln::runtime::cpu
