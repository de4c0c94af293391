// The loop the packed GEMMs (f32, bf16, q8) share: output column panels of kGemmPanel times row
// chunks, spread over the threads; within one, row blocks of at most max_mr rows accumulate the
// reduction in cache blocks of kc steps into a tile (f32, row stride kGemmPanel) that a kernel
// keeps in registers. A step is the kernel's unit of k (one k, a pair of k, a block of 32 k).
//
// Every output element is one chain over the steps in increasing order from zero, then + bias,
// whatever M, the row block or the thread count: so the results are batch invariant.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <utility>

#include "kiln/runtime/backend/cpu/parallel_cpu.h"

namespace kiln::runtime::cpu {

inline constexpr int64_t kGemmPanel = 64;
inline constexpr int kGemmMaxMr = 6;

// One ISA's kernels of a packed GEMM: by_mr[r] takes a row block of r rows, r in 1 .. max_mr.
template <class Kernel>
struct GemmKernelSet {
  int max_mr = 1;
  Kernel by_mr[kGemmMaxMr + 1] = {};

  // by_mr[r] = instance.template operator()<r>() for r in 1 .. MaxMr: one instance of a kernel
  // template per row count, e.g. use<6>([]<int R>() { return &kernel_avx512<R>; }). Only the
  // addresses are taken here, so kernels with their own target attributes keep them.
  template <int MaxMr, class Instance>
  void use(Instance instance) {
    static_assert(MaxMr >= 1 && MaxMr <= kGemmMaxMr);
    max_mr = MaxMr;
    [&]<int... R>(std::integer_sequence<int, R...>) {
      ((by_mr[R + 1] = instance.template operator()<R + 1>()), ...);
    }(std::make_integer_sequence<int, MaxMr>{});
  }
};

// kernel(r0, mr, p, s0, s1, tile): adds steps [s0, s1) of rows r0 .. r0+mr-1 against panel p into
// tile rows 0 .. mr-1. `mc`: most rows of one chunk (they share the panel's cache block).
template <class Kernel>
void for_each_gemm_tile(const DeviceContext& ctx, int64_t m, int64_t n, int64_t steps, int64_t kc, int max_mr,
                        int64_t mc, const float* bias, float* out, const Kernel& kernel) {
  constexpr int64_t kP = kGemmPanel;
  if (m <= 0 || n <= 0) return;
  const int64_t panels = (n + kP - 1) / kP;
  const int64_t chunks = (m + mc - 1) / mc;
  kc = std::max<int64_t>(kc, 1);
  parallel_for(ctx, panels * chunks, 1, [&](int64_t begin, int64_t end) {
    alignas(64) float tile[kGemmMaxMr * kP];
    for (int64_t t = begin; t < end; ++t) {
      const int64_t p = t / chunks, chunk = t % chunks;
      const int64_t col0 = p * kP, ncols = std::min(kP, n - col0);
      // Chunks of near-equal size too (97 rows: 49 + 48, not 96 + 1).
      const int64_t row_begin = chunk * m / chunks, row_end = (chunk + 1) * m / chunks;
      // steps == 0 still needs one pass to write zeros (+ bias).
      for (int64_t k0 = 0; k0 < steps || (steps == 0 && k0 == 0); k0 += kc) {
        const int64_t k1 = std::min(steps, k0 + kc);
        const bool first = k0 == 0, last = k1 == steps;
        // Row blocks of near-equal size (32 rows: 6 6 5 5 5 5, not 6 6 6 6 6 2): a thin last
        // block would reload the panel slice for little work.
        const int64_t rows = row_end - row_begin, blocks = (rows + max_mr - 1) / max_mr;
        for (int64_t blk = 0, r0 = row_begin; blk < blocks; ++blk) {
          const int mr = static_cast<int>(rows / blocks + (blk < rows % blocks ? 1 : 0));
          for (int r = 0; r < mr; ++r) {
            float* trow = tile + r * kP;
            if (first) {
              std::memset(trow, 0, sizeof(float) * kP);
            } else {
              std::memcpy(trow, out + (r0 + r) * n + col0, sizeof(float) * static_cast<size_t>(ncols));
              std::memset(trow + ncols, 0, sizeof(float) * static_cast<size_t>(kP - ncols));
            }
          }
          if (k1 > k0) kernel(r0, mr, p, k0, k1, tile);
          for (int r = 0; r < mr; ++r) {
            float* orow = out + (r0 + r) * n + col0;
            const float* trow = tile + r * kP;
            if (last && bias != nullptr) {
              for (int64_t j = 0; j < ncols; ++j) orow[j] = trow[j] + bias[col0 + j];
            } else {
              std::memcpy(orow, trow, sizeof(float) * static_cast<size_t>(ncols));
            }
          }
          r0 += mr;
        }
        if (steps == 0) break;
      }
    }
  });
}

}  // namespace kiln::runtime::cpu
