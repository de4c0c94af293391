#include "kiln/runtime/backend/cpu/gemm_cpu.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kiln/runtime/backend/cpu/gemm_tiles_cpu.h"

#if defined(__x86_64__)
#include <immintrin.h>
#define KILN_GEMM_X86 1
#endif

namespace kiln::runtime::cpu {
namespace {

constexpr int64_t kP = kGemmPanel;
// K block: one panel's slice of kKc x 64 floats (64 KiB) stays in L2 while every row block of a
// row chunk streams past it. A whole panel that fits in kWholePanelBytes is one block: its tile
// then stays in registers from the first k to the last. Row chunk: at most kMc rows of x share
// the slice.
constexpr int64_t kKc = 256;
constexpr int64_t kWholePanelBytes = 512 << 10;
constexpr int64_t kMc = 96;

// Each kernel adds, for k in [k0, k1), x[r, k] * panel[k, j] into tile[r, j] (row stride kP),
// one FMA per element per k, in increasing k.
template <int MR>
void kernel_scalar(const float* x, int64_t ldx, const float* panel, int64_t k0, int64_t k1, float* tile) {
  for (int64_t k = k0; k < k1; ++k) {
    const float* wk = panel + k * kP;
    for (int r = 0; r < MR; ++r) {
      const float xr = x[r * ldx + k];
      float* t = tile + r * kP;
      for (int64_t j = 0; j < kP; ++j) t[j] = std::fma(xr, wk[j], t[j]);
    }
  }
}

#ifdef KILN_GEMM_X86
template <int MR>
__attribute__((target("avx512f"))) void kernel_avx512(const float* x, int64_t ldx, const float* panel, int64_t k0,
                                                      int64_t k1, float* tile) {
  __m512 acc[MR][4];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < 4; ++v) acc[r][v] = _mm512_loadu_ps(tile + r * kP + v * 16);
  for (int64_t k = k0; k < k1; ++k) {
    const float* wk = panel + k * kP;
    const __m512 w0 = _mm512_loadu_ps(wk), w1 = _mm512_loadu_ps(wk + 16);
    const __m512 w2 = _mm512_loadu_ps(wk + 32), w3 = _mm512_loadu_ps(wk + 48);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const __m512 xr = _mm512_set1_ps(x[r * ldx + k]);
      acc[r][0] = _mm512_fmadd_ps(xr, w0, acc[r][0]);
      acc[r][1] = _mm512_fmadd_ps(xr, w1, acc[r][1]);
      acc[r][2] = _mm512_fmadd_ps(xr, w2, acc[r][2]);
      acc[r][3] = _mm512_fmadd_ps(xr, w3, acc[r][3]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < 4; ++v) _mm512_storeu_ps(tile + r * kP + v * 16, acc[r][v]);
}

// AVX2 has 16 registers: the panel is done as two halves of 32 columns, two rows at a time.
template <int MR>
__attribute__((target("avx2,fma"))) void kernel_avx2(const float* x, int64_t ldx, const float* panel, int64_t k0,
                                                    int64_t k1, float* tile) {
  for (int64_t half = 0; half < 2; ++half) {
    const int64_t c0 = half * 32;
    __m256 acc[MR][4];
#pragma GCC unroll 4
    for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
      for (int v = 0; v < 4; ++v) acc[r][v] = _mm256_loadu_ps(tile + r * kP + c0 + v * 8);
    for (int64_t k = k0; k < k1; ++k) {
      const float* wk = panel + k * kP + c0;
      const __m256 w0 = _mm256_loadu_ps(wk), w1 = _mm256_loadu_ps(wk + 8);
      const __m256 w2 = _mm256_loadu_ps(wk + 16), w3 = _mm256_loadu_ps(wk + 24);
#pragma GCC unroll 4
      for (int r = 0; r < MR; ++r) {
        const __m256 xr = _mm256_set1_ps(x[r * ldx + k]);
        acc[r][0] = _mm256_fmadd_ps(xr, w0, acc[r][0]);
        acc[r][1] = _mm256_fmadd_ps(xr, w1, acc[r][1]);
        acc[r][2] = _mm256_fmadd_ps(xr, w2, acc[r][2]);
        acc[r][3] = _mm256_fmadd_ps(xr, w3, acc[r][3]);
      }
    }
#pragma GCC unroll 4
    for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
      for (int v = 0; v < 4; ++v) _mm256_storeu_ps(tile + r * kP + c0 + v * 8, acc[r][v]);
  }
}
#endif

using Kernel = void (*)(const float*, int64_t, const float*, int64_t, int64_t, float*);

using KernelSet = GemmKernelSet<Kernel>;

KernelSet kernels_for(CpuIsa isa) {
  KernelSet s;
  switch (isa) {
#ifdef KILN_GEMM_X86
    case CpuIsa::kAvx512:
      s.use<6>([]<int R>() { return &kernel_avx512<R>; });
      return s;
    case CpuIsa::kAvx2:
      s.use<2>([]<int R>() { return &kernel_avx2<R>; });
      return s;
#endif
    default:
      s.use<4>([]<int R>() { return &kernel_scalar<R>; });
      return s;
  }
}

}  // namespace

int64_t packed_size(int64_t n, int64_t k) { return (n + kP - 1) / kP * kP * k; }

void pack_weight(const float* w, int64_t n, int64_t k, float* packed) {
  const int64_t panels = (n + kP - 1) / kP;
  for (int64_t p = 0; p < panels; ++p) {
    float* dst = packed + p * k * kP;
    for (int64_t j = 0; j < kP; ++j) {
      const int64_t row = p * kP + j;
      if (row < n) {
        const float* src = w + row * k;
        for (int64_t kk = 0; kk < k; ++kk) dst[kk * kP + j] = src[kk];
      } else {
        for (int64_t kk = 0; kk < k; ++kk) dst[kk * kP + j] = 0.0f;
      }
    }
  }
}

void gemm_packed(const DeviceContext& ctx, const float* x, int64_t m, int64_t k, const float* packed, int64_t n,
                 const float* bias, float* out, CpuIsa isa) {
  const KernelSet ks = kernels_for(isa);
  const int64_t kc = k * kP * static_cast<int64_t>(sizeof(float)) <= kWholePanelBytes ? k : kKc;
  for_each_gemm_tile(ctx, m, n, k, kc, ks.max_mr, kMc, bias, out,
                     [&](int64_t r0, int mr, int64_t p, int64_t k0, int64_t k1, float* tile) {
                       ks.by_mr[mr](x + r0 * k, k, packed + p * k * kP, k0, k1, tile);
                     });
}

}  // namespace kiln::runtime::cpu
