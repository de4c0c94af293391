#include "kiln/runtime/backend/cuda/fp8_gemm.h"

#include <cuda_fp8.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <tuple>

#include "kiln/runtime/backend/cuda/cuda_util.cuh"
#include "kiln/runtime/backend/cuda/gemm.h"
#include "kiln/runtime/backend/cuda/lt_matmul.h"

namespace kiln::runtime::cuda {
namespace {

using dev::bf16;
using dev::Bf16x8;

constexpr int kGroup = 128;        // columns per scale
constexpr int kGemvWarps = 8;      // rows per block: one warp a row
constexpr int kGemvUnroll = 4;     // 16-byte weight loads in flight per lane

// 16 e4m3 codes (one 16-byte load) to f32, through the hardware's paired conversion.
__device__ __forceinline__ void decode16(const uint4& q, float* out) {
  const uint32_t words[4] = {q.x, q.y, q.z, q.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const auto pair = static_cast<__nv_fp8x2_storage_t>((words[i] >> (16 * h)) & 0xffffu);
      const __half2 v = __half2(__nv_cvt_fp8x2_to_halfraw2(pair, __NV_E4M3));
      const float2 f = __half22float2(v);
      out[4 * i + 2 * h] = f.x;
      out[4 * i + 2 * h + 1] = f.y;
    }
  }
}

// One warp per output row: the row's codes stream through once (16 bytes a lane, kGemvUnroll
// loads in flight, evict-first), each 16-code chunk meets the M activation rows (bf16, L1/L2
// resident) and its group's scale. f32 accumulation; the epilogue rounds as gemm() does.
template <int M>
__global__ void __launch_bounds__(kGemvWarps * 32)
    fp8_gemv_kernel(const bf16* __restrict__ x, const uint8_t* __restrict__ w, const float* __restrict__ w_scale,
                    const bf16* __restrict__ bias, void* __restrict__ y, int y_f32, int accumulate, int n, int k) {
  dev::pdl_begin();
  const int lane = threadIdx.x & 31;
  const int row = blockIdx.x * kGemvWarps + (threadIdx.x >> 5);
  if (row >= n) return;
  const int chunks = k / 16;
  const uint4* wr = reinterpret_cast<const uint4*>(w + static_cast<size_t>(row) * k);
  float acc[M];
#pragma unroll
  for (int m = 0; m < M; ++m) acc[m] = 0.0f;
  for (int base = lane; base < chunks; base += 32 * kGemvUnroll) {
    uint4 q[kGemvUnroll];
#pragma unroll
    for (int u = 0; u < kGemvUnroll; ++u) {
      const int c = base + u * 32;
      q[u] = c < chunks ? __ldcs(wr + c) : make_uint4(0, 0, 0, 0);
    }
#pragma unroll
    for (int u = 0; u < kGemvUnroll; ++u) {
      const int c = base + u * 32;
      if (c >= chunks) break;
      float wf[16];
      decode16(q[u], wf);
      const float s = __ldg(w_scale + static_cast<size_t>(c / (kGroup / 16)) * n + row);
#pragma unroll
      for (int m = 0; m < M; ++m) {
        const Bf16x8* xr = reinterpret_cast<const Bf16x8*>(x + static_cast<size_t>(m) * k) + 2 * c;
        float xf[16];
        dev::unpack8(xr[0], xf);
        dev::unpack8(xr[1], xf + 8);
        float d = 0.0f;
#pragma unroll
        for (int i = 0; i < 16; ++i) d = fmaf(wf[i], xf[i], d);
        acc[m] = fmaf(s, d, acc[m]);
      }
    }
  }
#pragma unroll
  for (int m = 0; m < M; ++m) acc[m] = dev::warp_sum(acc[m]);
  if (lane != 0) return;
  const float b = bias != nullptr ? dev::to_f(bias[row]) : 0.0f;
#pragma unroll
  for (int m = 0; m < M; ++m) {
    const size_t at = static_cast<size_t>(m) * n + row;
    const float v = acc[m] + b;
    if (y_f32) {
      static_cast<float*>(y)[at] = v;
    } else if (accumulate) {
      bf16* yb = static_cast<bf16*>(y);
      yb[at] = dev::to_bf(dev::to_f(dev::to_bf(v)) + dev::to_f(yb[at]));
    } else {
      static_cast<bf16*>(y)[at] = dev::to_bf(v);
    }
  }
}

template <int M>
Status launch_gemv_m(const Fp8GemmArgs& a, Stream stream) {
  const dim3 grid(static_cast<unsigned>((a.n + kGemvWarps - 1) / kGemvWarps));
  return launch("fp8_gemv_kernel", fp8_gemv_kernel<M>, grid, dim3(kGemvWarps * 32), 0, stream,
                reinterpret_cast<const bf16*>(a.x), a.w, a.w_scale, reinterpret_cast<const bf16*>(a.bias), a.y,
                a.y_f32 ? 1 : 0, a.accumulate ? 1 : 0, static_cast<int>(a.n), static_cast<int>(a.k));
}

Status launch_gemv(const Fp8GemmArgs& a, Stream stream) {
  switch (a.m) {
    case 1: return launch_gemv_m<1>(a, stream);
    case 2: return launch_gemv_m<2>(a, stream);
    case 3: return launch_gemv_m<3>(a, stream);
    case 4: return launch_gemv_m<4>(a, stream);
    case 5: return launch_gemv_m<5>(a, stream);
    case 6: return launch_gemv_m<6>(a, stream);
    case 7: return launch_gemv_m<7>(a, stream);
    case 8: return launch_gemv_m<8>(a, stream);
    default: return invalid_argument(str_cat("fp8 GEMV: ", a.m, " rows, at most ", kFp8GemvMaxM));
  }
}

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
  decode16(reinterpret_cast<const uint4*>(w)[i], f);
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

bool dequant_forced() {
  static const bool forced = [] {
    const char* v = std::getenv("KILN_FP8_GEMM");
    return v != nullptr && std::strcmp(v, "dequant") == 0;
  }();
  return forced;
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

Status run_cublaslt(void* lt_handle, int device, const Fp8GemmArgs& a, Stream stream) {
  if (a.y_f32) return invalid_argument("fp8 GEMM: the cuBLASLt path writes bf16");
  const auto lt = static_cast<cublasLtHandle_t>(lt_handle);
  KILN_ASSIGN_OR_RETURN(Plan* p, plan_for(lt, device, a));
  if (!p->supported)
    return unimplemented(str_cat("cuBLASLt has no block-scaled FP8 algorithm for m ", a.m, " n ", a.n, " k ", a.k));
  const int64_t groups = (a.k + kGroup - 1) / kGroup;
  auto* xq = static_cast<uint8_t*>(a.act_scratch);
  auto* xs = reinterpret_cast<float*>(xq + codes_bytes(a));
  KILN_RETURN_IF_ERROR(launch("fp8_quantize_rows_kernel", quantize_rows_kernel,
                              dim3(static_cast<unsigned>((groups + 3) / 4), static_cast<unsigned>(a.m)), dim3(128), 0,
                              stream, reinterpret_cast<const bf16*>(a.x), static_cast<int>(a.m), static_cast<int>(a.k),
                              xq, xs));
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

}  // namespace

Fp8Path fp8_choose_path(const Fp8GemmArgs& a, Fp8Path path) {
  if (path != Fp8Path::kAuto) return path;
  if (a.m <= kFp8GemvMaxM || a.y_f32) return Fp8Path::kGemv;
  return dequant_forced() ? Fp8Path::kDequant : Fp8Path::kCublasLt;
}

size_t fp8_scratch_bytes(const Fp8GemmArgs& a, Fp8Path path, size_t* product) {
  *product = 0;
  if (path == Fp8Path::kDequant) *product = static_cast<size_t>(a.n * a.k) * 2;
  if (path != Fp8Path::kCublasLt) return 0;
  if (needs_finish(a)) *product = static_cast<size_t>(a.m * a.n) * 2;
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
        KILN_RETURN_IF_ERROR(launch_gemv(s, stream));
      }
      return Status::ok();
    }
    case Fp8Path::kCublasLt: return run_cublaslt(lt_handle, device, a, stream);
    case Fp8Path::kDequant: return run_dequant(lt_handle, a, stream);
    case Fp8Path::kAuto: break;
  }
  return invalid_argument("fp8 GEMM: choose a path first (fp8_choose_path)");
}

}  // namespace kiln::runtime::cuda
