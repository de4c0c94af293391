// cuBLASLt's heuristic candidates for the large-batch decode GEMMs (DISABLED_: run with
// --gtest_also_run_disabled_tests): each candidate timed with the weights rotating over copies
// larger than L2, so that the figures are those of a decode step streaming its weights from HBM.
// Prints, per shape and batch, the heuristic's first choice and the fastest candidate.
#include <cublasLt.h>
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <tuple>
#include <vector>

namespace {

#define LT_OK(x) ASSERT_EQ((x), CUBLAS_STATUS_SUCCESS) << #x
#define CU_OK(x) ASSERT_EQ((x), cudaSuccess) << #x

TEST(CudaBench, DISABLED_GemmAlgorithms) {
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) GTEST_SKIP() << "no CUDA device";
  cublasLtHandle_t lt = nullptr;
  LT_OK(cublasLtCreate(&lt));
  cudaStream_t stream = nullptr;
  CU_OK(cudaStreamCreate(&stream));
  const size_t ws_bytes = 32u << 20;
  void* ws = nullptr;
  CU_OK(cudaMalloc(&ws, ws_bytes));
  const std::vector<std::tuple<const char*, int64_t, int64_t>> shapes = {
      {"8b qkv", 6144, 4096}, {"8b o", 4096, 4096},       {"8b gate_up", 28672, 4096},
      {"8b down", 4096, 14336}, {"1b gate_up", 16384, 2048}, {"1b qkv", 3072, 2048}};
  for (auto [name, n, k] : shapes) {
    const size_t wbytes = static_cast<size_t>(n * k * 2);
    const int copies = static_cast<int>(std::max<size_t>(2, (size_t{512} << 20) / wbytes));
    void *w = nullptr, *x = nullptr, *y = nullptr;
    CU_OK(cudaMalloc(&w, wbytes * static_cast<size_t>(copies)));
    CU_OK(cudaMalloc(&x, static_cast<size_t>(256 * k * 2)));
    CU_OK(cudaMalloc(&y, static_cast<size_t>(256 * n * 2)));
    CU_OK(cudaMemset(w, 0x3c, wbytes * static_cast<size_t>(copies)));
    CU_OK(cudaMemset(x, 0x3c, static_cast<size_t>(256 * k * 2)));
    for (int64_t m : {64, 128, 256}) {
      cublasLtMatmulDesc_t desc = nullptr;
      LT_OK(cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
      const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
      LT_OK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)));
      LT_OK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)));
      cublasLtMatrixLayout_t la = nullptr, lb = nullptr, ld = nullptr;
      LT_OK(cublasLtMatrixLayoutCreate(&la, CUDA_R_16BF, k, n, k));
      LT_OK(cublasLtMatrixLayoutCreate(&lb, CUDA_R_16BF, k, m, k));
      LT_OK(cublasLtMatrixLayoutCreate(&ld, CUDA_R_16BF, n, m, n));
      cublasLtMatmulPreference_t pref = nullptr;
      LT_OK(cublasLtMatmulPreferenceCreate(&pref));
      LT_OK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws_bytes,
                                                 sizeof(ws_bytes)));
      cublasLtMatmulHeuristicResult_t res[16] = {};
      int found = 0;
      LT_OK(cublasLtMatmulAlgoGetHeuristic(lt, desc, la, lb, ld, ld, pref, 16, res, &found));
      std::printf("[algos] %-11s m=%3lld:", name, static_cast<long long>(m));
      double first = 0, best = 1e30;
      int best_i = -1;
      for (int i = 0; i < found; ++i) {
        const float alpha = 1.0f, beta = 0.0f;
        const auto run = [&](int r) {
          const void* wr = static_cast<const char*>(w) + wbytes * static_cast<size_t>(r % copies);
          return cublasLtMatmul(lt, desc, &alpha, wr, la, x, lb, &beta, y, ld, y, ld, &res[i].algo, ws, ws_bytes, stream);
        };
        if (run(0) != CUBLAS_STATUS_SUCCESS) continue;
        const int reps = 30;
        CU_OK(cudaStreamSynchronize(stream));
        const auto t0 = std::chrono::steady_clock::now();
        for (int r = 1; r <= reps; ++r) LT_OK(run(r));
        CU_OK(cudaStreamSynchronize(stream));
        const double us = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / reps * 1e6;
        if (i == 0) first = us;
        if (us < best) {
          best = us;
          best_i = i;
        }
        std::printf(" %.1f", us);
      }
      std::printf(" | first %.1fus %.0fGB/s, best #%d %.1fus %.0fGB/s\n", first, wbytes / first / 1e3, best_i, best,
                  wbytes / best / 1e3);
      cublasLtMatmulPreferenceDestroy(pref);
      cublasLtMatrixLayoutDestroy(la);
      cublasLtMatrixLayoutDestroy(lb);
      cublasLtMatrixLayoutDestroy(ld);
      cublasLtMatmulDescDestroy(desc);
    }
    cudaFree(w);
    cudaFree(x);
    cudaFree(y);
  }
  cudaFree(ws);
  cudaStreamDestroy(stream);
  cublasLtDestroy(lt);
}

}  // namespace
