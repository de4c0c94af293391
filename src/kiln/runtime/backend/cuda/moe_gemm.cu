// The experts' grouped GEMM: every expert's product over its run of sorted rows in one launch, the
// runs read from expert_start in device memory (no host round trip; docs/moe-grouped-gemm.md).
//
// A block computes a tile of kTm rows of one expert by kTn weight rows (output columns) with bf16
// tensor cores (wmma 16x16x16, f32 accumulation). The grid is (row-tile bound, column tiles): the
// experts need sum_e ceil(count_e / kTm) <= ceil(rows / kTm) + E row tiles, a bound the host knows
// without the counts, so the launch shape depends on the step's size only (graph-safe). Each block
// maps its row-tile index to (expert, tile) by a warp scan of the per-expert tile counts and exits
// when it has none: an expert no row chose is never read, and at batch 1 only the top-k experts'
// weights are streamed, each once per column tile.
//
// SwiGLU: the block's kTn weight rows are kTn / 2 gate rows j0.. and the matching up rows
// n / 2 + j0..; gate and up are rounded to bf16 before silu(gate) * up, as ops::linear_swiglu.
#include <cuda_bf16.h>
#include <mma.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "kiln/core/str.h"
#include "kiln/runtime/backend/cuda/cuda_util.cuh"
#include "kiln/runtime/backend/cuda/kernels.h"
#include "kiln/runtime/backend/cuda/warp_row_dot.cuh"

namespace kiln::runtime::cuda {
namespace {

using dev::bf16;
using dev::Bf16x8;
namespace wmma = nvcuda::wmma;

constexpr int kTm = 32;               // rows of a tile (two 16-row fragments)
constexpr int kTn = 64;               // weight rows (output columns) of a tile: one 16-column fragment per warp
constexpr int kTk = 128;              // k of a stage: 16 KiB of weights in flight per block
constexpr int kThreads = 128;         // 4 warps
constexpr int kLdAb = kTk + 8;        // smem row stride of the bf16 tiles (multiple of 8, spreads banks)
constexpr int kLdC = kTn + 4;         // smem row stride of the f32 results
constexpr int kXVecs = kTm * kTk / 8 / kThreads;  // 16-byte vectors of x per thread and stage
constexpr int kWVecs = kTn * kTk / 8 / kThreads;  // of w

__device__ __forceinline__ Bf16x8 zero8() {
  Bf16x8 v;
  const __nv_bfloat162 z = __float2bfloat162_rn(0.0f);
#pragma unroll
  for (int i = 0; i < 4; ++i) v.h[i] = z;
  return v;
}

// The row of x that sorted row r reads: x_row[r] (the token; clamped to x's rows, see
// moe_permute_kernel) or, without x_row, r itself.
__device__ __forceinline__ int64_t x_source_row(const int32_t* __restrict__ x_row, int64_t x_rows, int64_t r) {
  if (x_row == nullptr) return r;
  const int64_t t = x_row[r];
  return t < 0 ? 0 : (t >= x_rows ? x_rows - 1 : t);
}

const bf16* xb(const MoeGemmArgs& g) { return reinterpret_cast<const bf16*>(g.x); }
bf16* yb(const MoeGemmArgs& g) { return reinterpret_cast<bf16*>(g.y); }

// Finds this block's expert and first row: each expert's run is cut into tiles of tile_rows rows,
// numbered expert by expert. Warp 0 scans the tile counts, each lane summing a contiguous slice of
// experts. Returns false when the index is past the last tile.
__device__ bool find_tile(const int32_t* __restrict__ expert_start, int num_experts, int64_t rows, int tile_rows,
                          int tile, int* expert, int64_t* row0, int64_t* row_end) {
  __shared__ int found[3];  // expert, first row, end row (-1: none)
  if (threadIdx.x < 32) {
    const int lane = threadIdx.x;
    const int per = (num_experts + 31) / 32;
    const int e0 = min(lane * per, num_experts), e1 = min(e0 + per, num_experts);
    const auto clamp_row = [&](int32_t r) -> int64_t { return r < 0 ? 0 : (r > rows ? rows : r); };
    const auto tiles_of = [&](int e) {
      const int64_t c = clamp_row(expert_start[e + 1]) - clamp_row(expert_start[e]);
      return c > 0 ? static_cast<int>((c + tile_rows - 1) / tile_rows) : 0;
    };
    int mine = 0;
    for (int e = e0; e < e1; ++e) mine += tiles_of(e);
    int incl = mine;  // inclusive scan over the lanes
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
      const int v = __shfl_up_sync(0xffffffffu, incl, o);
      if (lane >= o) incl += v;
    }
    if (lane == 0) found[0] = -1;
    __syncwarp();
    const int before = incl - mine;
    if (tile >= before && tile < incl) {  // exactly one lane, if any
      int t = tile - before;
      for (int e = e0; e < e1; ++e) {
        const int here = tiles_of(e);
        if (t < here) {
          const int64_t s = clamp_row(expert_start[e]);
          found[0] = e;
          found[1] = static_cast<int>(s + static_cast<int64_t>(t) * tile_rows);
          found[2] = static_cast<int>(clamp_row(expert_start[e + 1]));
          break;
        }
        t -= here;
      }
    }
  }
  __syncthreads();
  *expert = found[0];
  *row0 = found[1];
  *row_end = found[2];
  return found[0] >= 0;
}

template <bool kSwiGlu>
__global__ void __launch_bounds__(kThreads) moe_grouped_gemm_kernel(const bf16* __restrict__ x,
                                                                      const int32_t* __restrict__ x_row, int64_t x_rows,
                                                                      int64_t rows,
                                                                      const int32_t* __restrict__ expert_start,
                                                                      int num_experts,
                                                                      const int64_t* __restrict__ weights, int64_t n,
                                                                      int64_t k, bf16* __restrict__ y) {
  dev::pdl_begin();
  int expert = 0;
  int64_t row0 = 0, row_end = 0;
  if (!find_tile(expert_start, num_experts, rows, kTm, static_cast<int>(blockIdx.x), &expert, &row0, &row_end)) return;
  const int64_t tile_rows = row_end - row0 < kTm ? row_end - row0 : kTm;
  const int64_t out_cols = kSwiGlu ? n / 2 : n;
  // Output column of the block's first column; weight row of local column c.
  const int64_t col0 = static_cast<int64_t>(blockIdx.y) * (kSwiGlu ? kTn / 2 : kTn);
  const auto weight_row = [&](int c) -> int64_t {  // -1 past the end
    if constexpr (kSwiGlu) {
      const int64_t j = col0 + (c % (kTn / 2));
      return j < out_cols ? (c < kTn / 2 ? j : out_cols + j) : -1;
    } else {
      const int64_t j = col0 + c;
      return j < out_cols ? j : -1;
    }
  };
  const bf16* w = reinterpret_cast<const bf16*>(weights[expert]);

  // The bf16 tiles, then (after the last stage) the f32 results in the same bytes.
  constexpr int kTileBytes = (kTm + kTn) * kLdAb * 2, kResultBytes = kTm * kLdC * 4;
  __shared__ __align__(32) unsigned char smem[kTileBytes > kResultBytes ? kTileBytes : kResultBytes];
  bf16* xs = reinterpret_cast<bf16*>(smem);
  bf16* ws = xs + kTm * kLdAb;
  float* cs = reinterpret_cast<float*>(smem);

  const int tid = threadIdx.x, warp = tid >> 5;
  const int64_t kv = k / 8;
  const auto* xv = reinterpret_cast<const Bf16x8*>(x);
  const auto* wv = reinterpret_cast<const Bf16x8*>(w);
  Bf16x8 xr[kXVecs], wr[kWVecs];
  const Bf16x8* xsrc[kXVecs];  // the x row of each of this thread's vectors (null past the tile's rows)
#pragma unroll
  for (int i = 0; i < kXVecs; ++i) {
    const int r = (tid + i * kThreads) / (kTk / 8);
    xsrc[i] = r < tile_rows ? xv + x_source_row(x_row, x_rows, row0 + r) * kv : nullptr;
  }
  const auto load_stage = [&](int64_t k0) {  // zeros past the rows, the columns and k
#pragma unroll
    for (int i = 0; i < kXVecs; ++i) {
      const int64_t kk = k0 / 8 + (tid + i * kThreads) % (kTk / 8);
      xr[i] = xsrc[i] != nullptr && kk < kv ? xsrc[i][kk] : zero8();
    }
#pragma unroll
    for (int i = 0; i < kWVecs; ++i) {
      const int v = tid + i * kThreads, c = v / (kTk / 8);
      const int64_t kk = k0 / 8 + v % (kTk / 8), wrow = weight_row(c);
      wr[i] = wrow >= 0 && kk < kv ? wv[wrow * kv + kk] : zero8();
    }
  };
  const auto store_stage = [&] {
#pragma unroll
    for (int i = 0; i < kXVecs; ++i) {
      const int v = tid + i * kThreads;
      *reinterpret_cast<Bf16x8*>(&xs[(v / (kTk / 8)) * kLdAb + (v % (kTk / 8)) * 8]) = xr[i];
    }
#pragma unroll
    for (int i = 0; i < kWVecs; ++i) {
      const int v = tid + i * kThreads;
      *reinterpret_cast<Bf16x8*>(&ws[(v / (kTk / 8)) * kLdAb + (v % (kTk / 8)) * 8]) = wr[i];
    }
  };

  // Warp `warp` owns columns [16 warp, 16 warp + 16) and both 16-row halves of the tile.
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[kTm / 16];
#pragma unroll
  for (int f = 0; f < kTm / 16; ++f) wmma::fill_fragment(acc[f], 0.0f);
  load_stage(0);
  for (int64_t k0 = 0; k0 < k; k0 += kTk) {
    __syncthreads();  // the previous stage's fragments are loaded
    store_stage();
    __syncthreads();
    if (k0 + kTk < k) load_stage(k0 + kTk);  // in flight during this stage's products
#pragma unroll
    for (int kk = 0; kk < kTk; kk += 16) {
      wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::col_major> b;
      wmma::load_matrix_sync(b, &ws[(warp * 16) * kLdAb + kk], kLdAb);
#pragma unroll
      for (int f = 0; f < kTm / 16; ++f) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major> a;
        wmma::load_matrix_sync(a, &xs[(f * 16) * kLdAb + kk], kLdAb);
        wmma::mma_sync(acc[f], a, b, acc[f]);
      }
    }
  }
  __syncthreads();  // every warp is done with the tiles that the results overwrite
#pragma unroll
  for (int f = 0; f < kTm / 16; ++f)
    wmma::store_matrix_sync(&cs[(f * 16) * kLdC + warp * 16], acc[f], kLdC, wmma::mem_row_major);
  __syncthreads();
  constexpr int kCols = kSwiGlu ? kTn / 2 : kTn;
  for (int i = tid; i < kTm * kCols; i += kThreads) {
    const int r = i / kCols, c = i % kCols;
    const int64_t j = col0 + c;
    if (r >= tile_rows || j >= out_cols) continue;
    float v = cs[r * kLdC + c];
    if constexpr (kSwiGlu) {
      const float g = dev::to_f(dev::to_bf(v)), u = dev::to_f(dev::to_bf(cs[r * kLdC + kTn / 2 + c]));
      v = dev::silu(g) * u;
    }
    y[(row0 + r) * out_cols + j] = dev::to_bf(v);
  }
}

// Decode-sized steps: the experts' rows kernel. With a few rows an expert (one at batch 1), a
// tile of kTm rows is mostly empty and the tiled kernel streams the experts' weights at a fraction
// of HBM's rate. This kernel is the dense small-m GEMV (dev::WarpRowDot) over runs of at most M rows
// of one expert: blockIdx.x is a run (find_tile with M-row tiles; launch_rows bounds their number),
// blockIdx.y a group of output columns of the run's expert. A warp computes whole output columns,
// `cols` of them one after another (the launch picks `cols` so the grid fills the GPU about once:
// the routing scan and the expert's address, read before any weight can be, are paid once a block
// rather than once a column). Each column streams two weight rows at once: under SwiGLU the gate
// row j and the up row n / 2 + j, each rounded to bf16 before silu(gate) * up, as ops::linear_swiglu;
// otherwise the neighbouring rows 2j and 2j + 1, two outputs.
constexpr int kRowWarps = 8;

template <int M, bool kSwiGlu>
__global__ void __launch_bounds__(32 * kRowWarps) moe_rows_kernel(const bf16* __restrict__ x,
                                                                  const int32_t* __restrict__ x_row, int64_t x_rows,
                                                                  int64_t rows, const int32_t* __restrict__ expert_start,
                                                                  int num_experts, const int64_t* __restrict__ weights,
                                                                  int64_t n, int64_t k, int cols, bf16* __restrict__ y) {
  dev::pdl_begin();  // the runs, and x, come from the kernels before
  int expert = 0;
  int64_t row0 = 0, row_end = 0;
  if (!find_tile(expert_start, num_experts, rows, M, static_cast<int>(blockIdx.x), &expert, &row0, &row_end)) return;
  const int here = static_cast<int>(row_end - row0 < M ? row_end - row0 : M);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int64_t kv = k / 8;
  dev::GatheredRows<M> xr;
#pragma unroll
  for (int m = 0; m < M; ++m) xr.r[m] = reinterpret_cast<const Bf16x8*>(x) + x_source_row(x_row, x_rows, row0 + (m < here ? m : 0)) * kv;
  const auto* w = reinterpret_cast<const Bf16x8*>(weights[expert]);
  const int64_t jobs = kSwiGlu ? n / 2 : (n + 1) / 2;  // output columns, or pairs of them
  const int64_t first = static_cast<int64_t>(blockIdx.y) * kRowWarps * cols + warp;
  for (int c = 0; c < cols; ++c) {
    const int64_t j = first + static_cast<int64_t>(c) * kRowWarps;
    if (j >= jobs) break;
    const int64_t r0 = kSwiGlu ? j : 2 * j, r1 = kSwiGlu ? n / 2 + j : 2 * j + 1;
    const bool two = r1 < n;
    dev::WarpRowDot<M> d0, d1;
    d0.prefetch(w + r0 * kv, kv);
    if (two) d1.prefetch(w + r1 * kv, kv);
    float a0[M], a1[M];
#pragma unroll
    for (int m = 0; m < M; ++m) a0[m] = a1[m] = 0.0f;
    d0.accumulate(w + r0 * kv, xr, kv, here, a0);
    if (two) d1.accumulate(w + r1 * kv, xr, kv, here, a1);
#pragma unroll
    for (int m = 0; m < M; ++m) {
      a0[m] = dev::warp_sum(a0[m]);
      a1[m] = dev::warp_sum(a1[m]);
    }
    if (lane != 0) continue;
#pragma unroll
    for (int m = 0; m < M; ++m) {
      if (m >= here) break;
      if constexpr (kSwiGlu) {
        y[(row0 + m) * (n / 2) + j] = dev::to_bf(dev::silu(dev::to_f(dev::to_bf(a0[m]))) * dev::to_f(dev::to_bf(a1[m])));
      } else {
        y[(row0 + m) * n + r0] = dev::to_bf(a0[m]);
        if (two) y[(row0 + m) * n + r1] = dev::to_bf(a1[m]);
      }
    }
  }
}

template <int M>
Status launch_rows(const MoeGemmArgs& g, Stream stream) {
  // Every run has a row, and each expert's last run may be partial.
  const int64_t loose = (g.rows + M - 1) / M + (g.rows < g.num_experts ? g.rows : g.num_experts);
  const int64_t runs = g.rows < loose ? g.rows : loose;
  const int64_t jobs = g.swiglu ? g.n / 2 : (g.n + 1) / 2;
  // Columns a warp: enough that the grid is about kRowBlocksPerSm blocks an SM (all resident at
  // once), at least one. Two measured best at batch 1 on an H100 (CudaMoeGemmBench: gate/up 23.0
  // us against 26.6 at three and 25.3 at one, down 13.8 against 17.0 and 17.3).
  constexpr int64_t kRowBlocksPerSm = 2;
  const int64_t per_sm = g.rows_blocks_per_sm > 0 ? g.rows_blocks_per_sm : kRowBlocksPerSm;
  const int64_t target = std::max<int64_t>(1, per_sm * g.sm_count / runs);  // blocks a run
  const int64_t per_block = std::max<int64_t>(1, (jobs + target - 1) / target);
  const auto cols = static_cast<int>(std::min<int64_t>((per_block + kRowWarps - 1) / kRowWarps, 1 << 20));
  const int64_t col_blocks = (jobs + int64_t{kRowWarps} * cols - 1) / (int64_t{kRowWarps} * cols);
  if (runs > (int64_t{1} << 31) - 1 || col_blocks > 65535)
    return invalid_argument(str_cat("moe rows kernel: ", g.n, " weight rows exceed the grid's 65535 blocks"));
  const dim3 grid(static_cast<unsigned>(runs), static_cast<unsigned>(col_blocks));
  if (g.swiglu)
    return launch("moe_rows_kernel<swiglu>", moe_rows_kernel<M, true>, grid, dim3(32 * kRowWarps), 0, stream, xb(g), g.x_row,
                  g.x_rows, g.rows, g.expert_start, g.num_experts, g.weights, g.n, g.k, cols, yb(g));
  return launch("moe_rows_kernel", moe_rows_kernel<M, false>, grid, dim3(32 * kRowWarps), 0, stream, xb(g), g.x_row,
                g.x_rows, g.rows, g.expert_start, g.num_experts, g.weights, g.n, g.k, cols, yb(g));
}

Status launch_tiles(const MoeGemmArgs& g, Stream stream) {
  // Row starts are int32 (expert_start), so `rows` fits.
  const int64_t row_tiles = (g.rows + kTm - 1) / kTm + g.num_experts;
  const int64_t out_cols = g.swiglu ? g.n / 2 : g.n;
  const int64_t col_tiles = (out_cols + (g.swiglu ? kTn / 2 : kTn) - 1) / (g.swiglu ? kTn / 2 : kTn);
  // Row tiles vary fastest, so the blocks resident together share a column tile: each expert's
  // weight columns come from HBM about once and serve the expert's other row tiles from L2.
  if (row_tiles > (int64_t{1} << 31) - 1 || col_tiles > 65535)
    return invalid_argument(str_cat("moe grouped gemm: ", out_cols, " output columns exceed the grid's 65535 tiles"));
  const dim3 grid(static_cast<unsigned>(row_tiles), static_cast<unsigned>(col_tiles));
  if (g.swiglu)
    return launch("moe_grouped_gemm_kernel<swiglu>", moe_grouped_gemm_kernel<true>, grid, dim3(kThreads), 0, stream, xb(g),
                  g.x_row, g.x_rows, g.rows, g.expert_start, g.num_experts, g.weights, g.n, g.k, yb(g));
  return launch("moe_grouped_gemm_kernel", moe_grouped_gemm_kernel<false>, grid, dim3(kThreads), 0, stream, xb(g),
                g.x_row, g.x_rows, g.rows, g.expert_start, g.num_experts, g.weights, g.n, g.k, yb(g));
}

// KILN_MOE_GEMM=tiles|rows forces one kernel under kAuto (benchmarks compare them); unset: auto.
MoeGemmPath env_path() {
  static const MoeGemmPath p = [] {
    const char* v = std::getenv("KILN_MOE_GEMM");
    if (v != nullptr && std::strcmp(v, "tiles") == 0) return MoeGemmPath::kTiles;
    if (v != nullptr && std::strcmp(v, "rows") == 0) return MoeGemmPath::kRows;
    return MoeGemmPath::kAuto;
  }();
  return p;
}

}  // namespace

MoeGemmPath moe_gemm_choose_path(int64_t max_rows, MoeGemmPath path) {
  if (path == MoeGemmPath::kAuto) path = env_path();
  if (path != MoeGemmPath::kAuto) return path;
  // One row an expert (decode of one sequence): the rows kernel streams the chosen experts' weights
  // 1.23x faster than the tiles (H100, Qwen3-30B-A3B shapes). With more rows an expert it measured
  // slower (8 sequences 0.70x, 64 sequences 0.38x: docs/moe-grouped-gemm.md), so they take the tiles.
  return max_rows == 1 ? MoeGemmPath::kRows : MoeGemmPath::kTiles;
}

Status launch_moe_grouped_gemm(const MoeGemmArgs& g, MoeGemmPath path, Stream stream) {
  if (g.rows == 0) return Status::ok();
  if (g.k <= 0 || g.k % 8 != 0 || g.n <= 0 || (g.swiglu && g.n % 2 != 0) || g.num_experts <= 0)
    return invalid_argument(str_cat("moe grouped gemm: n=", g.n, " k=", g.k, g.swiglu ? " (swiglu)" : "", " over ",
                                    g.num_experts, " experts (k must be a multiple of 8)"));
  if (g.x_row != nullptr ? g.x_rows <= 0 : g.x_rows != g.rows)
    return invalid_argument(str_cat("moe grouped gemm: ", g.x_rows, " rows of x for ", g.rows, " sorted rows"));
  if (moe_gemm_choose_path(g.max_rows, path) == MoeGemmPath::kTiles) return launch_tiles(g, stream);
  // The run length: the fewest rows that hold every expert's rows in one run, at most kMoeRowsMaxRun.
  const int64_t run = g.max_rows > 0 && g.max_rows < kMoeRowsMaxRun ? g.max_rows : kMoeRowsMaxRun;
  if (run <= 1) return launch_rows<1>(g, stream);
  if (run <= 2) return launch_rows<2>(g, stream);
  if (run <= 4) return launch_rows<4>(g, stream);
  return launch_rows<8>(g, stream);
}

}  // namespace kiln::runtime::cuda
