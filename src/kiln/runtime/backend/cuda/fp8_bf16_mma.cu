// Fp8Path::kBf16Mma: kiln's tensor-core GEMM for FP8 weights with bf16 activations,
// y[m, n] = x[m, k] · bf16(e4m3(w) · scale)[n, k]^T. The weight crosses HBM as one byte a
// weight and is widened to bf16 in shared memory, where it meets the activations in bf16
// mma.sync with f32 accumulation. The widened weight is rounded exactly as the dequantize kernel
// rounds it (the product of code and scale, to nearest even), so the result is the dequantized
// path's to within the order of the f32 sums -- without writing and reading a bf16 copy of the
// weight on every product.
//
// A block computes kTileM tokens x kTileN outputs with 4 warps (2 x 2, each 32 x 32: 2 x 4
// m16n8k16 tiles), over kTileK-deep stages. A stage lies inside one 128-column scale group, so
// each weight row's stage has one scale. Two shared-memory buffers: while the tensor cores work on
// one stage, the next stage's activations and codes are in flight into registers, then widened
// into the other buffer; one barrier per stage. Rows are padded to 144 bytes so that the eight row
// addresses of each ldmatrix fall in distinct banks.
#include "kiln/runtime/backend/cuda/fp8_gemm.h"

#include "kiln/runtime/backend/cuda/cuda_util.cuh"
#include "kiln/runtime/backend/cuda/mma_tile.cuh"

namespace kiln::runtime::cuda {
namespace {

using dev::bf16;
using dev::Bf16x8;

constexpr int kTileM = 64;
constexpr int kTileN = 64;
constexpr int kTileK = 64;
constexpr int kThreads = 128;
constexpr int kRow = kTileK + 8;                                // padded row, bf16 elements
constexpr int kAChunks = kTileM * (kTileK / 8) / kThreads;      // 16-byte activation loads a thread
constexpr int kBChunks = kTileN * (kTileK / 16) / kThreads;     // 16-byte code loads a thread
static_assert(128 % kTileK == 0, "a stage lies inside one scale group");

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// Four 8 x 8 bf16 matrices; lane l gives the address of row l % 8 of matrix l / 8.
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const bf16* p) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
#else
  (void)r, (void)p;
  __trap();
#endif
}

__device__ __forceinline__ void mma_bf16(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#else
  (void)d, (void)a, (void)b0, (void)b1;
  __trap();
#endif
}

// Fragments (PTX ISA, mma.m16n8k16 with 16-bit operands; lane = 4 · gid + tig):
//   A 16 x 16: a0 (row gid, k 2·tig, +1), a1 (row gid + 8), a2 (k + 8), a3 (row + 8, k + 8): the
//     four 8 x 8 matrices of one ldmatrix.x4 whose lanes point at rows r0 + l % 8 + 8 · (l / 8 % 2),
//     column k0 + 8 · (l / 16).
//   B 16 x 8 ("col": stored [n][k]): b0 (k 2·tig, +1; column gid), b1 (k + 8): one ldmatrix.x4
//     gives two n-tiles when lanes point at n0 + l % 8 + 8 · (l / 16), column k0 + 8 · (l / 8 % 2).
//   C 16 x 8 f32: c0, c1 (row gid, columns 2·tig, +1), c2, c3 (row gid + 8).
__global__ void __launch_bounds__(kThreads)
    fp8_bf16_mma_kernel(const bf16* __restrict__ x, const uint8_t* __restrict__ w, const float* __restrict__ ws,
                        const bf16* __restrict__ bias, bf16* __restrict__ y, int accumulate, int m, int n, int k) {
  __shared__ __align__(16) bf16 sa[2][kTileM * kRow];
  __shared__ __align__(16) bf16 sb[2][kTileN * kRow];
  const int tid = static_cast<int>(threadIdx.x), lane = tid & 31, warp = tid >> 5;
  const int wm = (warp >> 1) * 32, wn = (warp & 1) * 32;  // the warp's 32 x 32 sub-tile
  const int m0 = static_cast<int>(blockIdx.y) * kTileM, n0 = static_cast<int>(blockIdx.x) * kTileN;
  const int stages = (k + kTileK - 1) / kTileK;

  // Activation chunk c: row c / 8, columns 8 · (c % 8); code chunk c: row c / 4, columns
  // 16 · (c % 4). k is a multiple of 16, so a chunk is all inside k or all past it (zeros), as
  // are rows past m or n.
  uint4 ra[kAChunks], rb[kBChunks];
  float rs[kBChunks];
  const uint4 zero = make_uint4(0, 0, 0, 0);
  auto fetch_codes = [&](int s) {  // the weights: independent of the previous kernel
#pragma unroll
    for (int i = 0; i < kBChunks; ++i) {
      const int c = tid + i * kThreads, r = n0 + (c >> 2), col = s * kTileK + (c & 3) * 16;
      const bool in = r < n && col < k;
      rb[i] = in ? __ldcs(reinterpret_cast<const uint4*>(w + static_cast<size_t>(r) * k + col)) : zero;
      rs[i] = in ? ws[static_cast<size_t>(col / 128) * n + r] : 0.0f;
    }
  };
  auto fetch_acts = [&](int s) {
#pragma unroll
    for (int i = 0; i < kAChunks; ++i) {
      const int c = tid + i * kThreads, r = m0 + (c >> 3), col = s * kTileK + (c & 7) * 8;
      ra[i] = r < m && col < k ? *reinterpret_cast<const uint4*>(x + static_cast<size_t>(r) * k + col) : zero;
    }
  };
  auto store = [&](int buf) {  // activations as they are; codes widened: bf16(e4m3 · scale)
#pragma unroll
    for (int i = 0; i < kAChunks; ++i) {
      const int c = tid + i * kThreads;
      *reinterpret_cast<uint4*>(&sa[buf][(c >> 3) * kRow + (c & 7) * 8]) = ra[i];
    }
#pragma unroll
    for (int i = 0; i < kBChunks; ++i) {
      const int c = tid + i * kThreads;
      float f[16];
      dev::unpack16_e4m3(rb[i], f);
#pragma unroll
      for (int j = 0; j < 16; ++j) f[j] *= rs[i];
      Bf16x8* o = reinterpret_cast<Bf16x8*>(&sb[buf][(c >> 2) * kRow + (c & 3) * 16]);
      o[0] = dev::pack8(f);
      o[1] = dev::pack8(f + 8);
    }
  };

  fetch_codes(0);
  dev::pdl_begin();
  fetch_acts(0);
  store(0);
  __syncthreads();

  float acc[2][4][4] = {};
  for (int s = 0; s < stages; ++s) {
    const int buf = s & 1;
    if (s + 1 < stages) {
      fetch_codes(s + 1);
      fetch_acts(s + 1);
    }
#pragma unroll
    for (int kk = 0; kk < kTileK; kk += 16) {
      uint32_t af[2][4], bf[2][4];
#pragma unroll
      for (int i = 0; i < 2; ++i) {
        const int r = wm + i * 16 + (lane & 7) + ((lane >> 3) & 1) * 8;
        ldmatrix_x4(af[i], &sa[buf][r * kRow + kk + (lane >> 4) * 8]);
      }
#pragma unroll
      for (int j = 0; j < 2; ++j) {
        const int r = wn + j * 16 + (lane & 7) + (lane >> 4) * 8;
        ldmatrix_x4(bf[j], &sb[buf][r * kRow + kk + ((lane >> 3) & 1) * 8]);
      }
#pragma unroll
      for (int i = 0; i < 2; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) mma_bf16(acc[i][j], af[i], bf[j >> 1][(j & 1) * 2], bf[j >> 1][(j & 1) * 2 + 1]);
    }
    if (s + 1 < stages) store(buf ^ 1);
    __syncthreads();
  }

  // Epilogue as the GEMV's: bias, bf16 rounding, residual add of the rounded product.
  dev::store_mma_tile_32x32(acc, m0 + wm, n0 + wn, bias, y, accumulate, m, n);
}

}  // namespace

Status launch_fp8_bf16_mma(const Fp8GemmArgs& a, Stream stream) {
  const auto aligned16 = [](const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; };
  constexpr int64_t kMax = 0x7fffffff;
  if (a.y_f32) return invalid_argument("fp8 GEMM: the bf16 mma path writes bf16");
  if (a.m > kMax || a.n > kMax || a.k > kMax || (a.m + kTileM - 1) / kTileM > 65535 || !aligned16(a.x) ||
      !aligned16(a.w)) {
    return unimplemented(str_cat("fp8 GEMM: the bf16 mma kernel does not take m ", a.m, " n ", a.n, " k ", a.k));
  }
  const dim3 grid(static_cast<unsigned>((a.n + kTileN - 1) / kTileN), static_cast<unsigned>((a.m + kTileM - 1) / kTileM));
  return launch("fp8_bf16_mma_kernel", fp8_bf16_mma_kernel, grid, dim3(kThreads), 0, stream,
                reinterpret_cast<const bf16*>(a.x), a.w, a.w_scale, reinterpret_cast<const bf16*>(a.bias),
                static_cast<bf16*>(a.y), a.accumulate ? 1 : 0, static_cast<int>(a.m), static_cast<int>(a.n),
                static_cast<int>(a.k));
}

}  // namespace kiln::runtime::cuda
