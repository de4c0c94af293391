#include "kiln/runtime/backend/cuda/fp8_gemm.h"

#include <cuda_fp8.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <tuple>

#include "kiln/runtime/backend/cuda/cuda_util.cuh"
#include "kiln/runtime/backend/cuda/gemm.h"
#include "kiln/runtime/backend/cuda/lt_matmul.h"
#include "kiln/runtime/backend/cuda/mma_tile.cuh"

namespace kiln::runtime::cuda {
namespace {

using dev::bf16;
using dev::Bf16x8;

constexpr int kGroup = 128;  // columns per scale

// Per token and 128 columns: scale = amax / 448 (1 for an all-zero group), codes = e4m3(x / scale)
// rounded to nearest even and saturated. One warp per group, four columns a lane; scales are
// written [groups, m] (token-contiguous), the layout cuBLASLt's VEC128 scales take.
__global__ void quantize_rows_kernel(const bf16* __restrict__ x, int m, int k, uint8_t* __restrict__ xq,
                                     float* __restrict__ xs) {
  dev::pdl_begin();
  const int row = blockIdx.y;
  const int group = blockIdx.x * 4 + (threadIdx.x >> 5);
  const int lane = threadIdx.x & 31;
  const int groups = (k + kGroup - 1) / kGroup;
  if (group >= groups) return;
  const int col = group * kGroup + lane * 4;
  float v[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  const bool in = col < k;  // k is a multiple of 16, so four columns are all in or all out
  if (in) {
    const __nv_bfloat162* p = reinterpret_cast<const __nv_bfloat162*>(x + static_cast<size_t>(row) * k + col);
    const float2 a = __bfloat1622float2(p[0]), b = __bfloat1622float2(p[1]);
    v[0] = a.x, v[1] = a.y, v[2] = b.x, v[3] = b.y;
  }
  float amax = fmaxf(fmaxf(fabsf(v[0]), fabsf(v[1])), fmaxf(fabsf(v[2]), fabsf(v[3])));
  amax = dev::warp_max(amax);
  const float s = amax > 0.0f ? amax / 448.0f : 1.0f;
  if (lane == 0) xs[static_cast<size_t>(group) * m + row] = s;
  if (!in) return;
  const __nv_fp8x2_storage_t lo = __nv_cvt_float2_to_fp8x2(make_float2(v[0] / s, v[1] / s), __NV_SATFINITE, __NV_E4M3);
  const __nv_fp8x2_storage_t hi = __nv_cvt_float2_to_fp8x2(make_float2(v[2] / s, v[3] / s), __NV_SATFINITE, __NV_E4M3);
  *reinterpret_cast<uint32_t*>(xq + static_cast<size_t>(row) * k + col) =
      static_cast<uint32_t>(lo) | (static_cast<uint32_t>(hi) << 16);
}

// kiln's block-scaled FP8 tensor-core GEMM (Fp8Path::kMma): y[m, n] = sum over 128-column groups g
// of xs[g, m] · ws[g, n] · (sum over the group's k of xq[m, k] · w[n, k]). A block computes a
// 64 (tokens) x 128 (outputs) tile with 8 warps, each a 32 x 32 sub-tile: 2 x 4 mma.sync
// m16n8k32 e4m3 tiles. Per group the codes of both operands are staged through shared memory, the
// group's partial sums are accumulated in f32 by the tensor cores, then each partial is multiplied
// by its row's and column's scales and added to the running f32 sums (the DeepSeek-V3 recipe: the
// scales apply per group, never inside the mma). The next group's codes are loaded into registers
// while the tensor cores work on the current one.
//
// Fragments of mma.m16n8k32 with 8-bit operands (PTX ISA, "Matrix Fragments for mma.m16n8k32",
// 8-bit types), lane = 4 · gid + tig:
//   A (16 x 32, row-major), 4 x .b32 of 4 codes each, byte i of a register being element i:
//     a0: row gid,     k 4·tig + i        a1: row gid + 8, k 4·tig + i
//     a2: row gid,     k 16 + 4·tig + i   a3: row gid + 8, k 16 + 4·tig + i
//   B (32 x 8, "col": k contiguous per column), 2 x .b32:
//     b0: column gid, k 4·tig + i         b1: column gid, k 16 + 4·tig + i
//   C/D (16 x 8 f32): c0, c1: row gid, columns 2·tig, 2·tig + 1; c2, c3: row gid + 8, same columns.
// Which k a byte stands for only has to agree between A and B (the mma sums over k), so a k order
// misread the same way in both would still give the right product; the C layout is what must be
// exact. Both tiles keep k contiguous in shared memory ([row][k] for A, [column][k] for B, which
// is the weight's own [n, k] layout), so every fragment register is one 32-bit load. Rows are
// padded to 144 bytes: the 32 lanes' loads then fall in 32 different banks.
constexpr int kMmaM = 64;
constexpr int kMmaN = 128;
constexpr int kMmaThreads = 256;
constexpr int kMmaRow = kGroup + 16;                        // padded shared-memory row, bytes
constexpr int kMmaAChunks = kMmaM * (kGroup / 16) / kMmaThreads;  // 16-byte loads a thread, A
constexpr int kMmaBChunks = kMmaN * (kGroup / 16) / kMmaThreads;  // and B

__device__ __forceinline__ void mma_e4m3(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 890
  asm volatile(
      "mma.sync.aligned.m16n8k32.row.col.f32.e4m3.e4m3.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#else
  // e4m3 mma needs sm_89+; fp8_gemm() never launches this kernel on an older card.
  (void)d, (void)a, (void)b;
  __trap();
#endif
}

__device__ __forceinline__ uint32_t lds32(const uint8_t* p) { return *reinterpret_cast<const uint32_t*>(p); }

__global__ void __launch_bounds__(kMmaThreads)
    fp8_mma_kernel(const uint8_t* __restrict__ xq, const float* __restrict__ xs, const uint8_t* __restrict__ w,
                   const float* __restrict__ ws, const bf16* __restrict__ bias, bf16* __restrict__ y, int accumulate,
                   int m, int n, int k) {
  __shared__ __align__(16) uint8_t sa[kMmaM * kMmaRow];
  __shared__ __align__(16) uint8_t sb[kMmaN * kMmaRow];
  __shared__ float ssa[kMmaM], ssb[kMmaN];
  dev::pdl_begin();
  const int tid = static_cast<int>(threadIdx.x), lane = tid & 31, warp = tid >> 5;
  const int gid = lane >> 2, tig = lane & 3;
  const int wm = (warp >> 2) * 32, wn = (warp & 3) * 32;  // the warp's 32 x 32 sub-tile
  const int m0 = static_cast<int>(blockIdx.y) * kMmaM, n0 = static_cast<int>(blockIdx.x) * kMmaN;
  const int groups = (k + kGroup - 1) / kGroup;

  // Chunk c of a tile is row c / 8, bytes 16 · (c % 8) of the group; rows past m or n and columns
  // past k (a last partial group) are zeros, and so are their scales.
  uint4 ra[kMmaAChunks], rb[kMmaBChunks];
  float rs = 0.0f;
  auto fetch = [&](int g) {
    const uint4 zero = make_uint4(0, 0, 0, 0);
#pragma unroll
    for (int i = 0; i < kMmaAChunks; ++i) {
      const int c = tid + i * kMmaThreads, r = m0 + (c >> 3), col = g * kGroup + (c & 7) * 16;
      ra[i] = r < m && col < k ? *reinterpret_cast<const uint4*>(xq + static_cast<size_t>(r) * k + col) : zero;
    }
#pragma unroll
    for (int i = 0; i < kMmaBChunks; ++i) {
      const int c = tid + i * kMmaThreads, r = n0 + (c >> 3), col = g * kGroup + (c & 7) * 16;
      rb[i] = r < n && col < k ? *reinterpret_cast<const uint4*>(w + static_cast<size_t>(r) * k + col) : zero;
    }
    if (tid < kMmaM) {
      rs = m0 + tid < m ? xs[static_cast<size_t>(g) * m + m0 + tid] : 0.0f;
    } else if (tid < kMmaM + kMmaN) {
      const int c = n0 + tid - kMmaM;
      rs = c < n ? ws[static_cast<size_t>(g) * n + c] : 0.0f;
    }
  };

  float acc[2][4][4] = {};
  fetch(0);
  for (int g = 0; g < groups; ++g) {
#pragma unroll
    for (int i = 0; i < kMmaAChunks; ++i) {
      const int c = tid + i * kMmaThreads;
      *reinterpret_cast<uint4*>(sa + (c >> 3) * kMmaRow + (c & 7) * 16) = ra[i];
    }
#pragma unroll
    for (int i = 0; i < kMmaBChunks; ++i) {
      const int c = tid + i * kMmaThreads;
      *reinterpret_cast<uint4*>(sb + (c >> 3) * kMmaRow + (c & 7) * 16) = rb[i];
    }
    if (tid < kMmaM) {
      ssa[tid] = rs;
    } else if (tid < kMmaM + kMmaN) {
      ssb[tid - kMmaM] = rs;
    }
    __syncthreads();
    if (g + 1 < groups) fetch(g + 1);

    float part[2][4][4] = {};
#pragma unroll
    for (int kk = 0; kk < kGroup; kk += 32) {
      uint32_t af[2][4], bf[4][2];
#pragma unroll
      for (int i = 0; i < 2; ++i) {
        const uint8_t* p = sa + (wm + i * 16 + gid) * kMmaRow + kk + tig * 4;
        af[i][0] = lds32(p);
        af[i][1] = lds32(p + 8 * kMmaRow);
        af[i][2] = lds32(p + 16);
        af[i][3] = lds32(p + 8 * kMmaRow + 16);
      }
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const uint8_t* p = sb + (wn + j * 8 + gid) * kMmaRow + kk + tig * 4;
        bf[j][0] = lds32(p);
        bf[j][1] = lds32(p + 16);
      }
#pragma unroll
      for (int i = 0; i < 2; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) mma_e4m3(part[i][j], af[i], bf[j]);
    }
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      const float s_lo = ssa[wm + i * 16 + gid], s_hi = ssa[wm + i * 16 + gid + 8];
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const float w0 = ssb[wn + j * 8 + tig * 2], w1 = ssb[wn + j * 8 + tig * 2 + 1];
        acc[i][j][0] = fmaf(part[i][j][0], s_lo * w0, acc[i][j][0]);
        acc[i][j][1] = fmaf(part[i][j][1], s_lo * w1, acc[i][j][1]);
        acc[i][j][2] = fmaf(part[i][j][2], s_hi * w0, acc[i][j][2]);
        acc[i][j][3] = fmaf(part[i][j][3], s_hi * w1, acc[i][j][3]);
      }
    }
    __syncthreads();  // the tiles are rewritten next group
  }

  // Epilogue as the GEMV's: bias, bf16 rounding, residual add of the rounded product.
  dev::store_mma_tile_32x32(acc, m0 + wm, n0 + wn, bias, y, accumulate, m, n);
}

// y = bf16(p + bias), or y = bf16(y + bf16(p + bias)) when accumulating: cuBLASLt's product `p`
// (bf16) finished as the GEMV epilogue finishes its own.
__global__ void finish_kernel(const bf16* __restrict__ p, const bf16* __restrict__ bias, bf16* __restrict__ y,
                              int accumulate, int64_t m, int n) {
  dev::pdl_begin();
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= m * n) return;
  float v = dev::to_f(p[i]) + (bias != nullptr ? dev::to_f(bias[i % n]) : 0.0f);
  y[i] = accumulate ? dev::to_bf(dev::to_f(dev::to_bf(v)) + dev::to_f(y[i])) : dev::to_bf(v);
}

// w dequantized to bf16 ([n, k]), 16 codes a thread.
__global__ void dequantize_kernel(const uint8_t* __restrict__ w, const float* __restrict__ w_scale, int n, int k,
                                  bf16* __restrict__ out) {
  dev::pdl_begin();
  const int chunks = k / 16;
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= static_cast<int64_t>(n) * chunks) return;
  const int row = static_cast<int>(i / chunks), c = static_cast<int>(i % chunks);
  float f[16];
  dev::unpack16_e4m3(reinterpret_cast<const uint4*>(w)[i], f);
  const float s = w_scale[static_cast<size_t>(c / (kGroup / 16)) * n + row];
#pragma unroll
  for (int j = 0; j < 16; ++j) f[j] *= s;
  Bf16x8* o = reinterpret_cast<Bf16x8*>(out) + 2 * i;
  o[0] = dev::pack8(f);
  o[1] = dev::pack8(f + 8);
}

// A cuBLASLt plan of one shape: e4m3 x e4m3 -> bf16, VEC128 f32 scales on both operands.
struct Plan : LtPlan {
  bool supported = false;
};

using PlanKey = std::tuple<int, int64_t, int64_t, int64_t>;  // device, m, n, k
thread_local std::map<PlanKey, std::unique_ptr<Plan>> t_plans;  // per engine thread: scale pointers change per call

// Apart from gemm()'s: never freed, one per device.
Result<void*> workspace(int device) {
  static auto* w = new LtWorkspaces();
  return w->get(device);
}

Result<Plan*> plan_for(cublasLtHandle_t lt, int device, const Fp8GemmArgs& g) {
  const PlanKey key{device, g.m, g.n, g.k};
  auto it = t_plans.find(key);
  if (it != t_plans.end()) return it->second.get();
  auto p = std::make_unique<Plan>();
  KILN_RETURN_IF_ERROR(p->init(CUDA_R_8F_E4M3, CUDA_R_16BF, g.m, g.n, g.k));
  const int32_t mode = CUBLASLT_MATMUL_MATRIX_SCALE_VEC128_32F;
  KILN_RETURN_IF_ERROR(p->set(CUBLASLT_MATMUL_DESC_A_SCALE_MODE, mode));
  KILN_RETURN_IF_ERROR(p->set(CUBLASLT_MATMUL_DESC_B_SCALE_MODE, mode));
  cublasLtMatmulHeuristicResult_t res{};
  int found = 0;
  p->supported = p->heuristics(lt, &res, 1, &found) == CUBLAS_STATUS_SUCCESS && found > 0;
  if (p->supported) p->algo = res.algo;
  Plan* raw = p.get();
  t_plans.emplace(key, std::move(p));
  return raw;
}

// KILN_FP8_GEMM=e4m3: above kFp8GemvMaxM rows, quantize the activations to e4m3 (1 x 128 scales)
// and run the FP8 tensor-core GEMM (cuBLASLt's, else kiln's mma kernel) instead of the
// dequantized weight with bf16 activations. Faster, and less exact: docs/fp8.md.
bool e4m3_activations() {
  static const bool on = [] {
    const char* v = std::getenv("KILN_FP8_GEMM");
    return v != nullptr && std::strcmp(v, "e4m3") == 0;
  }();
  return on;
}

Status run_dequant(void* lt, const Fp8GemmArgs& a, Stream stream) {
  const int64_t threads = a.n * (a.k / 16);
  KILN_RETURN_IF_ERROR(launch("fp8_dequantize_kernel", dequantize_kernel, dim3(static_cast<unsigned>((threads + 255) / 256)),
                              dim3(256), 0, stream, a.w, a.w_scale, static_cast<int>(a.n), static_cast<int>(a.k),
                              static_cast<bf16*>(a.product_scratch)));
  GemmArgs g;
  g.x = a.x;
  g.w = static_cast<const uint16_t*>(a.product_scratch);
  g.bias = a.bias;
  g.y = a.y;
  g.y_f32 = a.y_f32;
  g.accumulate = a.accumulate;
  g.m = a.m;
  g.n = a.n;
  g.k = a.k;
  return gemm(lt, g, stream, GemmPath::kCublasLt);
}

// Scratch of the cuBLASLt path: codes [m, k], then (256-byte aligned) scales [groups, m].
size_t codes_bytes(const Fp8GemmArgs& a) { return (static_cast<size_t>(a.m * a.k) + 255) & ~size_t{255}; }
bool needs_finish(const Fp8GemmArgs& a) { return a.bias != nullptr || a.accumulate; }

// Quantizes the activations into the scratch (codes [m, k], then scales [groups, m]).
Status quantize_activations(const Fp8GemmArgs& a, Stream stream, uint8_t** xq, float** xs) {
  const int64_t groups = (a.k + kGroup - 1) / kGroup;
  *xq = static_cast<uint8_t*>(a.act_scratch);
  *xs = reinterpret_cast<float*>(*xq + codes_bytes(a));
  return launch("fp8_quantize_rows_kernel", quantize_rows_kernel,
                dim3(static_cast<unsigned>((groups + 3) / 4), static_cast<unsigned>(a.m)), dim3(128), 0, stream,
                reinterpret_cast<const bf16*>(a.x), static_cast<int>(a.m), static_cast<int>(a.k), *xq, *xs);
}

Status run_cublaslt(void* lt_handle, int device, const Fp8GemmArgs& a, Stream stream) {
  if (a.y_f32) return invalid_argument("fp8 GEMM: the cuBLASLt path writes bf16");
  const auto lt = static_cast<cublasLtHandle_t>(lt_handle);
  KILN_ASSIGN_OR_RETURN(Plan* p, plan_for(lt, device, a));
  if (!p->supported)
    return unimplemented(str_cat("cuBLASLt has no block-scaled FP8 algorithm for m ", a.m, " n ", a.n, " k ", a.k));
  uint8_t* xq = nullptr;
  float* xs = nullptr;
  KILN_RETURN_IF_ERROR(quantize_activations(a, stream, &xq, &xs));
  void* d = needs_finish(a) ? a.product_scratch : a.y;
  KILN_ASSIGN_OR_RETURN(void* ws, workspace(device));
  KILN_RETURN_IF_ERROR(p->set(CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, a.w_scale));
  const float* xs_const = xs;
  KILN_RETURN_IF_ERROR(p->set(CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, xs_const));
  KILN_CUBLAS_RETURN_IF_ERROR(p->matmul(lt, p->algo, a.w, xq, 0.0f, d, ws, stream));
  if (!needs_finish(a)) return Status::ok();
  const int64_t total = a.m * a.n;
  return launch("fp8_finish_kernel", finish_kernel, dim3(static_cast<unsigned>((total + 255) / 256)), dim3(256), 0,
                stream, static_cast<const bf16*>(d), reinterpret_cast<const bf16*>(a.bias), static_cast<bf16*>(a.y),
                a.accumulate ? 1 : 0, a.m, static_cast<int>(a.n));
}

// The device's compute capability, major · 10 + minor.
Result<int> capability(int device) {
  static std::atomic<int> by_device[64] = {};  // 0 unknown
  if (device < 0 || device >= 64) return 0;
  int cc = by_device[device].load();
  if (cc == 0) {
    int major = 0, minor = 0;
    KILN_CUDA_RETURN_IF_ERROR(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
    KILN_CUDA_RETURN_IF_ERROR(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device));
    cc = major * 10 + minor;
    by_device[device].store(cc);
  }
  return cc;
}

Status run_mma(int device, const Fp8GemmArgs& a, Stream stream) {
  if (a.y_f32) return invalid_argument("fp8 GEMM: the mma path writes bf16");
  KILN_ASSIGN_OR_RETURN(int cc, capability(device));
  if (cc < 89) return unimplemented("fp8 GEMM: the e4m3 mma needs compute capability 8.9 or later");
  constexpr int64_t kMax = 0x7fffffff;
  if (a.m > kMax || a.n > kMax || a.k > kMax || (a.m + kMmaM - 1) / kMmaM > 65535 ||
      reinterpret_cast<uintptr_t>(a.w) % 16 != 0 || reinterpret_cast<uintptr_t>(a.act_scratch) % 16 != 0)
    return unimplemented(str_cat("fp8 GEMM: the mma kernel does not take m ", a.m, " n ", a.n, " k ", a.k));
  uint8_t* xq = nullptr;
  float* xs = nullptr;
  KILN_RETURN_IF_ERROR(quantize_activations(a, stream, &xq, &xs));
  const dim3 grid(static_cast<unsigned>((a.n + kMmaN - 1) / kMmaN), static_cast<unsigned>((a.m + kMmaM - 1) / kMmaM));
  const uint8_t* xq_const = xq;
  const float* xs_const = xs;
  return launch("fp8_mma_kernel", fp8_mma_kernel, grid, dim3(kMmaThreads), 0, stream, xq_const, xs_const, a.w,
                a.w_scale, reinterpret_cast<const bf16*>(a.bias), static_cast<bf16*>(a.y), a.accumulate ? 1 : 0,
                static_cast<int>(a.m), static_cast<int>(a.n), static_cast<int>(a.k));
}

}  // namespace

Fp8Path fp8_choose_path(const Fp8GemmArgs& a, Fp8Path path) {
  if (path != Fp8Path::kAuto) return path;
  if (a.m <= kFp8GemvMaxM || a.y_f32) return Fp8Path::kGemv;
  return e4m3_activations() ? Fp8Path::kCublasLt : Fp8Path::kBf16Mma;
}

size_t fp8_scratch_bytes(const Fp8GemmArgs& a, Fp8Path path, size_t* product) {
  *product = 0;
  if (path == Fp8Path::kDequant) *product = static_cast<size_t>(a.n * a.k) * 2;
  if (path != Fp8Path::kCublasLt && path != Fp8Path::kMma) return 0;
  if (path == Fp8Path::kCublasLt && needs_finish(a)) *product = static_cast<size_t>(a.m * a.n) * 2;
  return codes_bytes(a) + static_cast<size_t>(((a.k + kGroup - 1) / kGroup) * a.m) * 4;
}

Status fp8_gemm(void* lt_handle, int device, const Fp8GemmArgs& a, Stream stream, Fp8Path path) {
  if (a.m == 0 || a.n == 0) return Status::ok();
  if (a.k % 16 != 0 || a.k <= 0) return invalid_argument(str_cat("fp8 GEMM: k ", a.k, " is not a positive multiple of 16"));
  if (a.accumulate && a.y_f32) return invalid_argument("fp8 GEMM: accumulate needs a bf16 y");
  switch (path) {
    case Fp8Path::kGemv: {
      // Taller products in slices of kFp8GemvMaxM rows (only an f32 output brings them here).
      for (int64_t r = 0; r < a.m; r += kFp8GemvMaxM) {
        Fp8GemmArgs s = a;
        s.m = std::min<int64_t>(kFp8GemvMaxM, a.m - r);
        s.x = a.x + r * a.k;
        s.y = static_cast<char*>(a.y) + r * a.n * (a.y_f32 ? 4 : 2);
        KILN_RETURN_IF_ERROR(launch_fp8_gemv(s, false, stream));
      }
      return Status::ok();
    }
    case Fp8Path::kCublasLt: return run_cublaslt(lt_handle, device, a, stream);
    case Fp8Path::kMma: return run_mma(device, a, stream);
    case Fp8Path::kBf16Mma: {
      KILN_ASSIGN_OR_RETURN(int cc, capability(device));
      if (cc < 80) return unimplemented("fp8 GEMM: the bf16 mma needs compute capability 8.0 or later");
      return launch_fp8_bf16_mma(a, stream);
    }
    case Fp8Path::kDequant: return run_dequant(lt_handle, a, stream);
    case Fp8Path::kAuto: break;
  }
  return invalid_argument("fp8 GEMM: choose a path first (fp8_choose_path)");
}

}  // namespace kiln::runtime::cuda
