// Fp8Path::kGemv: FP8 weights times up to 8 bf16 activation rows (decode), on the tensor cores.
//
// Why not FMAs: at one byte a weight, a decode step is bound by how fast the codes are turned into
// numbers, not by HBM. Converting each e4m3 code to f32 (hardware conversions, which run at a
// fraction of the FMA rate) held the first kernel to 1.2-1.7 TB/s. Here a code becomes an f16 in
// three integer operations per pair, and the multiply-adds run as mma.sync m16n8k16 f16 -> f32,
// with the (up to 8) tokens as the mma's n dimension.
//
// The conversion: an e4m3 code c read as the f16 bits (c & 0x80) << 8 | (c & 0x7f) << 7 is exactly
// c's value times 2^-8, subnormals and zero included (both formats have 3 mantissa bits; f16's
// exponent bias is 15 against e4m3's 7). The activations are bf16; they enter the mma as f16 after
// a multiplication by 2^-4 (exact), saturated to f16's range: every bf16 activation of magnitude
// 2^-10 to 2^20 is exact, smaller ones keep an absolute error below 2^-25 (far below bf16's own
// rounding of them), and larger ones (beyond 10^6) saturate. The products are summed in f32 per
// 128-column group, and each group's sum is multiplied by its row's scale times 2^12.
//
// Layout of the work: a block holds two 16-row tiles of the weight (rows r and r + 16, or for the
// SwiGLU epilogue the gate rows j and the up rows n / 2 + j) and 16 warps: each tile's 128-column
// groups are dealt round-robin to 8 warps, whose partial sums meet in shared memory at the end in a
// fixed order. A warp loads its next group's codes, activations and scales into registers before
// the tensor cores work on the current one. (A per-lane cp.async ring of 4 groups in shared memory,
// three times the bytes in flight, measured no faster on an H100: docs/fp8.md.)
//
// The k order inside the mma only has to agree between its two operands, so each lane takes
// contiguous columns: in a 64-column half group, lane (gid, tig) holds columns 16·tig to
// 16·tig + 15 of weight rows gid and gid + 8 and of token gid, and mma step s (of 4) uses its
// columns 4s to 4s + 3 as the fragment positions k = 2·tig, 2·tig + 1 (a0, a1 / b0) and 8 + 2·tig,
// 9 + 2·tig (a2, a3 / b1). The accumulator is exact in its layout: c0, c1 are row gid, tokens 2·tig
// and 2·tig + 1; c2, c3 row gid + 8.
#include "kiln/runtime/backend/cuda/fp8_gemm.h"

#include "kiln/runtime/backend/cuda/cuda_util.cuh"

namespace kiln::runtime::cuda {
namespace {

using dev::bf16;

constexpr int kSplit = 8;                   // warps sharing one tile's groups
constexpr int kWarps = 2 * kSplit;          // two tiles a block
constexpr int kRows = 16;                   // rows a tile
constexpr float kOutScale = 4096.0f;        // 2^8 (codes) times 2^4 (activations)

enum Epilogue : int { kStore = 0, kSwiGlu = 1 };  // kStore also adds into y when accumulating

// Two e4m3 codes (bytes `sel` picks from w: 0x1404 the low pair, 0x3424 the high pair) as an f16x2
// of their values times 2^-8.
__device__ __forceinline__ uint32_t e4m3x2_to_f16x2_scaled(uint32_t w, uint32_t sel) {
  const uint32_t u = __byte_perm(w, 0u, sel);  // the codes in bytes 1 and 3
  return (u & 0x80008000u) | ((u >> 1) & 0x3f803f80u);
}

// Two bf16 (one 32-bit word) times 2^-4 as an f16x2, rounded to nearest and saturated.
__device__ __forceinline__ uint32_t bf16x2_to_f16x2_scaled(uint32_t v) {
  const float lo = __uint_as_float(v << 16) * 0.0625f, hi = __uint_as_float(v & 0xffff0000u) * 0.0625f;
  uint32_t r;
  asm("cvt.rn.satfinite.f16x2.f32 %0, %1, %2;\n" : "=r"(r) : "f"(hi), "f"(lo));
  return r;
}

__device__ __forceinline__ void mma_f16(float (&d)[4], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3, uint32_t b0,
                                        uint32_t b1) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
#else
  (void)d, (void)a0, (void)a1, (void)a2, (void)a3, (void)b0, (void)b1;
  __trap();
#endif
}

// One 128-column group of a lane: [half][row gid / gid + 8] codes, [half][2] activation words
// (16 bf16 of token gid), and the two rows' scales.
struct Group {
  uint4 codes[2][2];
  uint4 acts[2][2];
  float scale[2];
};

template <typename Y, int kEpi>
__global__ void __launch_bounds__(32 * kWarps)
    fp8_gemv_kernel(const bf16* __restrict__ x, const uint8_t* __restrict__ w, const float* __restrict__ ws,
                    const bf16* __restrict__ bias, Y* __restrict__ y, int accumulate, int m, int n, int k) {
  __shared__ float part[2][kSplit][kRows][8];  // [tile][split][row][token]
  const int tid = static_cast<int>(threadIdx.x), lane = tid & 31, warp = tid >> 5;
  const int gid = lane >> 2, tig = lane & 3;
  const int tile = warp & 1, split = warp >> 1;
  // The tile's first row, and how many rows it has (the SwiGLU tiles: gate j.., up n / 2 + j..).
  int r0, rows;
  if constexpr (kEpi == kSwiGlu) {
    const int j0 = static_cast<int>(blockIdx.x) * kRows;
    r0 = tile * (n / 2) + j0;
    rows = min(kRows, n / 2 - j0);
  } else {
    r0 = static_cast<int>(blockIdx.x) * 2 * kRows + tile * kRows;
    rows = min(kRows, n - r0);
  }
  const bool lo_in = gid < rows, hi_in = gid + 8 < rows, tok_in = gid < m;
  const uint8_t* w_lo = w + static_cast<size_t>(r0 + (lo_in ? gid : 0)) * k;
  const uint8_t* w_hi = w + static_cast<size_t>(r0 + (hi_in ? gid + 8 : 0)) * k;
  const bf16* xr = x + static_cast<size_t>(tok_in ? gid : 0) * k;
  const int groups = (k + 127) / 128;
  const uint4 zero = make_uint4(0, 0, 0, 0);

  auto load_codes = [&](Group& s, int g) {  // weights and scales: independent of the previous kernel
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int col = g * 128 + h * 64 + tig * 16;
      const bool in = col < k;  // k is a multiple of 16
      s.codes[h][0] = in && lo_in ? __ldcs(reinterpret_cast<const uint4*>(w_lo + col)) : zero;
      s.codes[h][1] = in && hi_in ? __ldcs(reinterpret_cast<const uint4*>(w_hi + col)) : zero;
    }
    s.scale[0] = lo_in ? ws[static_cast<size_t>(g) * n + r0 + gid] : 0.0f;
    s.scale[1] = hi_in ? ws[static_cast<size_t>(g) * n + r0 + gid + 8] : 0.0f;
  };
  auto load_acts = [&](Group& s, int g) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int col = g * 128 + h * 64 + tig * 16;
      const bool in = col < k && tok_in;
      s.acts[h][0] = in ? *reinterpret_cast<const uint4*>(xr + col) : zero;
      s.acts[h][1] = in ? *reinterpret_cast<const uint4*>(xr + col + 8) : zero;
    }
  };

  float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  Group cur{}, next{};
  int g = split;
  if (g < groups) load_codes(cur, g);
  dev::pdl_begin();
  if (g < groups) load_acts(cur, g);
  for (; g < groups; g += kSplit) {
    if (g + kSplit < groups) {
      load_codes(next, g + kSplit);
      load_acts(next, g + kSplit);
    }
    float p[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const uint32_t lo[4] = {cur.codes[h][0].x, cur.codes[h][0].y, cur.codes[h][0].z, cur.codes[h][0].w};
      const uint32_t hi[4] = {cur.codes[h][1].x, cur.codes[h][1].y, cur.codes[h][1].z, cur.codes[h][1].w};
      const uint32_t xa[8] = {cur.acts[h][0].x, cur.acts[h][0].y, cur.acts[h][0].z, cur.acts[h][0].w,
                              cur.acts[h][1].x, cur.acts[h][1].y, cur.acts[h][1].z, cur.acts[h][1].w};
#pragma unroll
      for (int s = 0; s < 4; ++s) {  // the lane's columns 4s .. 4s + 3 of this half
        mma_f16(p, e4m3x2_to_f16x2_scaled(lo[s], 0x1404u), e4m3x2_to_f16x2_scaled(hi[s], 0x1404u),
                e4m3x2_to_f16x2_scaled(lo[s], 0x3424u), e4m3x2_to_f16x2_scaled(hi[s], 0x3424u),
                bf16x2_to_f16x2_scaled(xa[2 * s]), bf16x2_to_f16x2_scaled(xa[2 * s + 1]));
      }
    }
    acc[0] = fmaf(p[0], cur.scale[0], acc[0]);
    acc[1] = fmaf(p[1], cur.scale[0], acc[1]);
    acc[2] = fmaf(p[2], cur.scale[1], acc[2]);
    acc[3] = fmaf(p[3], cur.scale[1], acc[3]);
    cur = next;
  }

  // The 8 warps of a tile meet in shared memory; each output sums them in split order.
#pragma unroll
  for (int e = 0; e < 4; ++e) {
    const int t = 2 * tig + (e & 1);
    part[tile][split][gid + (e >> 1) * 8][t] = acc[e];
  }
  __syncthreads();
  const auto total = [&](int tl, int row, int t) {
    float v = 0.0f;
#pragma unroll
    for (int s = 0; s < kSplit; ++s) v += part[tl][s][row][t];
    return v * kOutScale;
  };
  if constexpr (kEpi == kSwiGlu) {
    // y[t, j] = silu(bf16(gate + bias)) * bf16(up + bias), as the separate GEMV and swiglu give.
    const int j0 = static_cast<int>(blockIdx.x) * kRows;
    for (int i = tid; i < kRows * m; i += 32 * kWarps) {
      const int row = i % kRows, t = i / kRows, j = j0 + row;
      if (j >= n / 2) continue;
      const float bg = bias != nullptr ? dev::to_f(bias[j]) : 0.0f;
      const float bu = bias != nullptr ? dev::to_f(bias[n / 2 + j]) : 0.0f;
      const float gate = dev::to_f(dev::to_bf(total(0, row, t) + bg));
      const float up = dev::to_f(dev::to_bf(total(1, row, t) + bu));
      y[static_cast<size_t>(t) * (n / 2) + j] = dev::to_bf(dev::silu(gate) * up);
    }
  } else {
    const int base = static_cast<int>(blockIdx.x) * 2 * kRows;
    for (int i = tid; i < 2 * kRows * m; i += 32 * kWarps) {
      const int r = i % (2 * kRows), t = i / (2 * kRows), c = base + r;
      if (c >= n) continue;
      const float v = total(r / kRows, r % kRows, t) + (bias != nullptr ? dev::to_f(bias[c]) : 0.0f);
      const size_t at = static_cast<size_t>(t) * n + c;
      if constexpr (std::is_same_v<Y, float>) {
        y[at] = v;
      } else {
        y[at] = accumulate ? dev::to_bf(dev::to_f(dev::to_bf(v)) + dev::to_f(y[at])) : dev::to_bf(v);
      }
    }
  }
}

template <typename Y, int kEpi>
Status launch_variant(const Fp8GemmArgs& a, Stream stream) {
  const int64_t outputs = kEpi == kSwiGlu ? a.n / 2 : a.n;
  const int64_t per_block = kEpi == kSwiGlu ? kRows : 2 * kRows;
  const dim3 grid(static_cast<unsigned>((outputs + per_block - 1) / per_block));
  return launch("fp8_gemv_kernel", fp8_gemv_kernel<Y, kEpi>, grid, dim3(32 * kWarps), 0, stream,
                reinterpret_cast<const bf16*>(a.x), a.w, a.w_scale, reinterpret_cast<const bf16*>(a.bias),
                static_cast<Y*>(a.y), a.accumulate ? 1 : 0, static_cast<int>(a.m), static_cast<int>(a.n),
                static_cast<int>(a.k));
}

}  // namespace

Status launch_fp8_gemv(const Fp8GemmArgs& a, bool swiglu, Stream stream) {
  const auto aligned16 = [](const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; };
  if (a.m < 1 || a.m > kFp8GemvMaxM) return invalid_argument(str_cat("fp8 GEMV: ", a.m, " rows, at most ", kFp8GemvMaxM));
  if (a.n > 0x7fffffff || a.k > 0x7fffffff || !aligned16(a.x) || !aligned16(a.w)) {
    return invalid_argument(str_cat("fp8 GEMV: n ", a.n, " k ", a.k, " past int32, or operands not 16-byte aligned"));
  }
  if (swiglu) {
    if (a.n % 2 != 0 || a.y_f32 || a.accumulate) return invalid_argument("fp8 GEMV: SwiGLU needs an even n and a bf16 y");
    return launch_variant<bf16, kSwiGlu>(a, stream);
  }
  if (a.y_f32) return launch_variant<float, kStore>(a, stream);
  return launch_variant<bf16, kStore>(a, stream);
}

}  // namespace kiln::runtime::cuda
