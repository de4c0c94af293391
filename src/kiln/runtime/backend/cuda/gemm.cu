#include "kiln/runtime/backend/cuda/gemm.h"

#include <map>
#include <memory>
#include <tuple>
#include <type_traits>

#include "kiln/runtime/backend/cuda/cuda_util.cuh"
#include "kiln/runtime/backend/cuda/lt_matmul.h"
#include "kiln/runtime/backend/cuda/warp_row_dot.cuh"

namespace kiln::runtime::cuda {
namespace {

using dev::bf16;
using dev::Bf16x8;

constexpr int kSmallMWarps = 8;

// What the small-m kernel does with its products.
enum Epilogue : int {
  kStore = 0,    // y = x w^T + bias
  kSwiGlu = 1,   // y = silu(gate) * up of a fused [gate; up] product
  kAddInto = 2,  // y += x w^T + bias, y bf16 (the residual stream)
};

// The RMSNorm prologue: the M rows of x ([M, kv] 8-wide vectors) normalised by w into `out`
// (shared memory), bf16; w_first is w[threadIdx.x], loaded by the caller. The sum of squares is
// split over threads and reduced exactly as rms_norm_kernel splits and reduces it with its
// norm_threads(k) threads (here emulated by the block's threads), so the normalised rows are
// bitwise those of ops::rms_norm.
template <int M>
__device__ void rms_norm_rows(const Bf16x8* __restrict__ x, const Bf16x8* __restrict__ w, Bf16x8 w_first, int64_t kv,
                              float eps, Bf16x8* out, float* red) {
  const int tid = threadIdx.x, lane = tid & 31;
  int threads = 32;  // norm_threads(k)
  while (threads < kv && threads < 1024) threads *= 2;
#pragma unroll
  for (int m = 0; m < M; ++m) {
    for (int vt = tid; vt < threads; vt += blockDim.x) {
      float ss = 0.0f;
      for (int64_t i = vt; i < kv; i += threads) {
        float v[8];
        dev::unpack8(x[m * kv + i], v);
#pragma unroll
        for (int j = 0; j < 8; ++j) ss += v[j] * v[j];
      }
      ss = dev::warp_sum(ss);
      if (lane == 0) red[vt >> 5] = ss;
    }
    __syncthreads();
    const float ss = dev::warp_sum(lane < threads / 32 ? red[lane] : 0.0f);
    const float rs = rsqrtf(ss / static_cast<float>(8 * kv) + eps);
    for (int64_t i = tid; i < kv; i += blockDim.x) {
      float v[8], g[8];
      dev::unpack8(x[m * kv + i], v);
      dev::unpack8(i == tid ? w_first : w[i], g);
#pragma unroll
      for (int j = 0; j < 8; ++j) v[j] = v[j] * rs * g[j];
      out[m * kv + i] = dev::pack8(v);
    }
    __syncthreads();  // `out` is complete and `red` free for the next row
  }
}

// One warp per output column: the warp streams w[col, :] once (dev::WarpRowDot: 16-byte loads, 8 in
// flight per lane) against the M rows of x, which stay in L1/L2. The weights never depend on the
// previous kernel, so the first 8 loads of each lane are issued before waiting for it
// (dev::pdl_begin): under programmatic launch the stream of weights starts while the previous
// kernel still runs.
//
// With kNorm the block first normalises x (rms_norm_rows) into shared memory and multiplies that:
// a pre-norm projection without the normalised rows in global memory or a kernel of their own.
// With kSwiGlu, w is a fused [gate; up] matrix of 2 * I rows and the kernel writes the SwiGLU
// activation y[m, j] = silu(gate) * up of I columns: a block computes the gate and up columns of
// kSmallMWarps / 2 outputs and combines them through shared memory, rounding each to bf16 first,
// exactly as the separate GEMM and swiglu kernels would. With kAddInto each product is rounded to
// bf16 and then added into y, as a separate bf16 add of the product would.
template <int M, typename Y, int kEpi, bool kNorm>
__global__ void __launch_bounds__(32 * kSmallMWarps) small_m_kernel(const bf16* __restrict__ x,
                                                                     const bf16* __restrict__ w,
                                                                     const bf16* __restrict__ bias, Y* y, int64_t n,
                                                                     int64_t k, const bf16* __restrict__ norm_w,
                                                                     float eps) {
  constexpr int kHalf = kSmallMWarps / 2;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  int64_t col = static_cast<int64_t>(blockIdx.x) * kSmallMWarps + warp;
  bool live = col < n;
  if constexpr (kEpi == kSwiGlu) {
    const int64_t j = static_cast<int64_t>(blockIdx.x) * kHalf + warp % kHalf;
    live = j < n / 2;
    col = warp < kHalf ? j : n / 2 + j;
  }
  const int64_t kv = k / 8;
  const auto* wv = reinterpret_cast<const Bf16x8*>(w + (live ? col : 0) * k);
  const Bf16x8* xv = reinterpret_cast<const Bf16x8*>(x);
  dev::WarpRowDot<M> dot;
  if (live) dot.prefetch(wv, kv);
  const int tid = threadIdx.x;
  Bf16x8 norm_first{};  // this thread's first vector of the norm weight, also loaded before the wait
  if constexpr (kNorm) {
    if (tid < kv) norm_first = reinterpret_cast<const Bf16x8*>(norm_w)[tid];
  }
  dev::pdl_begin();
  if constexpr (kNorm) {
    extern __shared__ __align__(16) unsigned char smem_raw[];
    __shared__ float red[32];
    auto* xs = reinterpret_cast<Bf16x8*>(smem_raw);
    rms_norm_rows<M>(xv, reinterpret_cast<const Bf16x8*>(norm_w), norm_first, kv, eps, xs, red);
    xv = xs;
  }
  float acc[M];
#pragma unroll
  for (int m = 0; m < M; ++m) acc[m] = 0.0f;
  if (live) {
    dot.accumulate(wv, dev::ContiguousRows{xv, kv}, kv, M, acc);
#pragma unroll
    for (int m = 0; m < M; ++m) acc[m] = dev::warp_sum(acc[m]);
  }
  const float b = live && bias != nullptr ? dev::to_f(bias[col]) : 0.0f;
  if constexpr (kEpi == kSwiGlu) {
    __shared__ float part[kSmallMWarps][M];
    if (lane == 0 && live) {
#pragma unroll
      for (int m = 0; m < M; ++m) part[warp][m] = dev::to_f(dev::to_bf(acc[m] + b));
    }
    __syncthreads();
    if (threadIdx.x < kHalf * M) {
      const int h = threadIdx.x % kHalf, m = threadIdx.x / kHalf;
      const int64_t j = static_cast<int64_t>(blockIdx.x) * kHalf + h;
      if (j < n / 2) y[m * (n / 2) + j] = dev::to_bf(dev::silu(part[h][m]) * part[kHalf + h][m]);
    }
  } else if (lane == 0 && live) {
#pragma unroll
    for (int m = 0; m < M; ++m) {
      if constexpr (std::is_same_v<Y, float>) {
        y[m * n + col] = acc[m] + b;
      } else if constexpr (kEpi == kAddInto) {
        y[m * n + col] = dev::to_bf(dev::to_f(y[m * n + col]) + dev::to_f(dev::to_bf(acc[m] + b)));
      } else {
        y[m * n + col] = dev::to_bf(acc[m] + b);
      }
    }
  }
}

int64_t small_m_grid(const GemmArgs& a, bool swiglu) {
  const int64_t outputs_per_block = swiglu ? kSmallMWarps / 2 : kSmallMWarps;
  const int64_t outputs = swiglu ? a.n / 2 : a.n;
  return (outputs + outputs_per_block - 1) / outputs_per_block;
}

template <int M, typename Y, int kEpi, bool kNorm>
Status launch_small_m_variant(const GemmArgs& a, Stream stream) {
  const unsigned grid = static_cast<unsigned>(small_m_grid(a, kEpi == kSwiGlu));
  const size_t smem = kNorm ? static_cast<size_t>(M * a.k) * sizeof(bf16) : 0;
  return launch("small_m_kernel", small_m_kernel<M, Y, kEpi, kNorm>, dim3(grid), dim3(32 * kSmallMWarps), smem, stream,
                reinterpret_cast<const bf16*>(a.x), reinterpret_cast<const bf16*>(a.w),
                reinterpret_cast<const bf16*>(a.bias), static_cast<Y*>(a.y), a.n, a.k,
                reinterpret_cast<const bf16*>(a.norm_weight), a.norm_eps);
}

template <int M, bool kNorm>
Status launch_small_m_fixed(const GemmArgs& a, bool swiglu, Stream stream) {
  if (swiglu) return launch_small_m_variant<M, bf16, kSwiGlu, kNorm>(a, stream);
  if constexpr (kNorm) {
    return launch_small_m_variant<M, bf16, kStore, true>(a, stream);
  } else {
    if (a.accumulate) return launch_small_m_variant<M, bf16, kAddInto, false>(a, stream);
    if (a.y_f32) return launch_small_m_variant<M, float, kStore, false>(a, stream);
    return launch_small_m_variant<M, bf16, kStore, false>(a, stream);
  }
}

Status launch_small_m(const GemmArgs& a, bool swiglu, Stream stream) {
  if (a.norm_weight != nullptr) {
    switch (a.m) {
      case 1: return launch_small_m_fixed<1, true>(a, swiglu, stream);
      case 2: return launch_small_m_fixed<2, true>(a, swiglu, stream);
      default: return invalid_argument(str_cat("gemm: the norm prologue takes 1 to ", kSmallMAuto, " rows, not ", a.m));
    }
  }
  switch (a.m) {
    case 1: return launch_small_m_fixed<1, false>(a, swiglu, stream);
    case 2: return launch_small_m_fixed<2, false>(a, swiglu, stream);
    case 3: return launch_small_m_fixed<3, false>(a, swiglu, stream);
    case 4: return launch_small_m_fixed<4, false>(a, swiglu, stream);
    case 5: return launch_small_m_fixed<5, false>(a, swiglu, stream);
    case 6: return launch_small_m_fixed<6, false>(a, swiglu, stream);
    case 7: return launch_small_m_fixed<7, false>(a, swiglu, stream);
    case 8: return launch_small_m_fixed<8, false>(a, swiglu, stream);
    default: return invalid_argument(str_cat("gemm: the small-m kernel takes 1 to ", kSmallMMax, " rows, not ", a.m));
  }
}

// y[r, c] += bias[c] for f32 outputs, whose bias epilogue cuBLASLt may not offer with a bf16 bias.
__global__ void add_bias_f32_kernel(float* __restrict__ y, const bf16* __restrict__ bias, int64_t m, int64_t n) {
  dev::pdl_begin();
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < m * n) y[i] += dev::to_f(bias[i % n]);
}

// ---- cuBLASLt ----

// device, m, n, k, y_f32, bias, and the alignments of w, x and y (LtPlan::align_*)
using PlanKey = std::tuple<int, int64_t, int64_t, int64_t, bool, bool, uint32_t, uint32_t, uint32_t>;

// Per engine thread: a plan's descriptor is modified (bias pointer) on every call.
thread_local std::map<PlanKey, std::unique_ptr<LtPlan>> t_plans;

Result<void*> workspace(int device) {
  static auto* w = new LtWorkspaces();  // never freed: one per device for the life of the process
  return w->get(device);
}

// Decode batches (a graph bucket: a power of two rows) are bound by streaming the weights, where
// the heuristic's first choice is often not the fastest (an H100, Llama-3.1-8B down projection
// at 128 rows: 54 us first, 46 us best of eight). Their plans time the heuristic's candidates
// once, each run from a cold L2 (a 64 MiB write between runs) on the call's own operands into a
// scratch output; other shapes (prefill, compute-bound) take the first choice.
constexpr int kCandidates = 8;
constexpr size_t kFlushBytes = 64u << 20;
bool tuned_m(int64_t m) { return m > kSmallMAuto && m <= 512 && (m & (m - 1)) == 0; }

int fastest_candidate(cublasLtHandle_t lt, const LtPlan& p, const GemmArgs& g, const cublasLtMatmulHeuristicResult_t* res,
                      int found, Stream stream) {
  const auto s = static_cast<cudaStream_t>(stream);
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
  if (found < 2 || cudaStreamIsCapturing(s, &capture) != cudaSuccess || capture != cudaStreamCaptureStatusNone) {
    return 0;  // timing cannot run inside a capture
  }
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess) return 0;
  const Result<void*> ws = workspace(device);
  void* scratch = nullptr;  // the flush target, and the output of the timed runs
  const size_t out_bytes = static_cast<size_t>(g.m * g.n) * (g.y_f32 ? 4 : 2);
  if (!ws.is_ok() || cudaStreamSynchronize(s) != cudaSuccess ||
      cudaMalloc(&scratch, std::max(kFlushBytes, out_bytes)) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  cudaEvent_t start = nullptr, stop = nullptr;
  int best = 0;
  float best_ms = 0.0f;
  if (cudaEventCreate(&start) == cudaSuccess && cudaEventCreate(&stop) == cudaSuccess) {
    constexpr int kRuns = 4;
    for (int i = 0; i < found; ++i) {
      const auto run = [&] {
        return p.matmul(lt, res[i].algo, g.w, g.x, 0.0f, scratch, *ws, s) == CUBLAS_STATUS_SUCCESS;
      };
      if (!run()) continue;
      float total = 0.0f;
      bool ok = true;
      for (int r = 0; r < kRuns && ok; ++r) {
        float ms = 0.0f;
        ok = cudaMemsetAsync(scratch, r, kFlushBytes, s) == cudaSuccess && cudaEventRecord(start, s) == cudaSuccess &&
             run() && cudaEventRecord(stop, s) == cudaSuccess && cudaEventSynchronize(stop) == cudaSuccess &&
             cudaEventElapsedTime(&ms, start, stop) == cudaSuccess;
        total += ms;
      }
      if (ok && (best_ms == 0.0f || total < best_ms)) {
        best = i;
        best_ms = total;
      }
    }
  }
  if (start != nullptr) cudaEventDestroy(start);
  if (stop != nullptr) cudaEventDestroy(stop);
  cudaStreamSynchronize(s);
  cudaFree(scratch);
  cudaGetLastError();
  return best;
}

Result<LtPlan*> plan_for(cublasLtHandle_t lt, int device, const GemmArgs& g, Stream stream) {
  const uint32_t align_w = lt_alignment(g.w), align_x = lt_alignment(g.x), align_y = lt_alignment(g.y);
  const PlanKey key{device, g.m, g.n, g.k, g.y_f32, g.bias != nullptr, align_w, align_x, align_y};
  auto it = t_plans.find(key);
  if (it != t_plans.end()) return it->second.get();
  auto p = std::make_unique<LtPlan>();
  KILN_RETURN_IF_ERROR(p->init(CUDA_R_16BF, g.y_f32 ? CUDA_R_32F : CUDA_R_16BF, g.m, g.n, g.k));
  if (g.bias != nullptr) {
    KILN_RETURN_IF_ERROR(p->set(CUBLASLT_MATMUL_DESC_EPILOGUE, CUBLASLT_EPILOGUE_BIAS));
    KILN_RETURN_IF_ERROR(p->set(CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, CUDA_R_16BF));
    KILN_RETURN_IF_ERROR(p->set(CUBLASLT_MATMUL_DESC_BIAS_POINTER, g.bias));
  }
  p->align_w = align_w;
  p->align_x = align_x;
  p->align_y = align_y;
  cublasLtMatmulHeuristicResult_t results[kCandidates] = {};
  int found = 0;
  KILN_CUBLAS_RETURN_IF_ERROR(p->heuristics(lt, results, kCandidates, &found));
  if (found == 0) {
    return internal_error(str_cat("cuBLASLt has no algorithm for a bf16 GEMM of m=", g.m, " n=", g.n, " k=", g.k));
  }
  p->algo = results[0].algo;
  if (tuned_m(g.m)) p->algo = results[fastest_candidate(lt, *p, g, results, found, stream)].algo;
  LtPlan* raw = p.get();
  t_plans.emplace(key, std::move(p));
  return raw;
}

Status run_cublaslt(cublasLtHandle_t lt, const GemmArgs& g, Stream stream) {
  int device = 0;
  KILN_CUDA_RETURN_IF_ERROR(cudaGetDevice(&device));
  KILN_ASSIGN_OR_RETURN(void* ws, workspace(device));
  KILN_ASSIGN_OR_RETURN(LtPlan* p, plan_for(lt, device, g, stream));
  if (g.bias != nullptr) KILN_RETURN_IF_ERROR(p->set(CUBLASLT_MATMUL_DESC_BIAS_POINTER, g.bias));
  KILN_CUBLAS_RETURN_IF_ERROR(p->matmul(lt, p->algo, g.w, g.x, g.accumulate ? 1.0f : 0.0f, g.y, ws, stream));
  return Status::ok();
}

}  // namespace

bool small_m_fits(const GemmArgs& g) {
  const auto aligned16 = [](const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; };
  return g.m >= 1 && g.m <= kSmallMMax && g.k % 8 == 0 && aligned16(g.x) && aligned16(g.w) &&
         (g.norm_weight == nullptr || (g.m <= kSmallMAuto && !g.y_f32 && !g.accumulate && aligned16(g.norm_weight) &&
                                       g.m * g.k * 2 <= kNormSmemBytes));
}

bool small_m_norm_pays(const GemmArgs& g, bool swiglu, int sm_count) {
  constexpr int64_t kBlocksPerSm = 2048 / (32 * kSmallMWarps);  // threads an SM holds / the block's
  constexpr int64_t kMaxWaves = 2;
  return small_m_grid(g, swiglu) <= kMaxWaves * kBlocksPerSm * sm_count;
}

Status gemm_swiglu_small_m(const GemmArgs& g, Stream stream) {
  if (!small_m_fits(g) || g.n % 2 != 0 || g.y_f32 || g.accumulate) {
    return invalid_argument(str_cat("gemm_swiglu: the small-m kernel cannot take m=", g.m, " n=", g.n, " k=", g.k,
                                    " (m <= ", kSmallMMax, ", even n, k % 8 == 0, bf16 out, 16-byte aligned; with a "
                                    "norm m <= ", kSmallMAuto, ")"));
  }
  return launch_small_m(g, true, stream);
}

Status gemm(void* lt_handle, const GemmArgs& g, Stream stream, GemmPath path) {
  if (g.m < 0 || g.n <= 0 || g.k <= 0) {
    return invalid_argument(str_cat("gemm: bad shape m=", g.m, " n=", g.n, " k=", g.k));
  }
  if (g.accumulate && g.y_f32) return invalid_argument("gemm: accumulates into bf16 only");
  if (g.m == 0) return Status::ok();
  const bool small_ok = small_m_fits(g);
  if ((path == GemmPath::kSmallM || g.norm_weight != nullptr) && !small_ok) {
    return invalid_argument(str_cat("gemm: the small-m kernel cannot take m=", g.m, " k=", g.k,
                                    " (m <= ", kSmallMMax, ", k % 8 == 0, 16-byte aligned; with a norm m <= ",
                                    kSmallMAuto, " and bf16 out)"));
  }
  if (path == GemmPath::kSmallM || g.norm_weight != nullptr ||
      (path == GemmPath::kAuto && small_ok && g.m <= kSmallMAuto)) {
    return launch_small_m(g, false, stream);
  }
  if (g.y_f32 && g.bias != nullptr) {
    GemmArgs plain = g;
    plain.bias = nullptr;
    KILN_RETURN_IF_ERROR(run_cublaslt(static_cast<cublasLtHandle_t>(lt_handle), plain, stream));
    const int64_t total = g.m * g.n;
    return launch("add_bias_f32_kernel", add_bias_f32_kernel, dim3(static_cast<unsigned>((total + 255) / 256)), dim3(256),
                  0, stream, static_cast<float*>(g.y), reinterpret_cast<const bf16*>(g.bias), g.m, g.n);
  }
  return run_cublaslt(static_cast<cublasLtHandle_t>(lt_handle), g, stream);
}

}  // namespace kiln::runtime::cuda
