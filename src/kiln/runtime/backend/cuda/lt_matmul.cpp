#include "kiln/runtime/backend/cuda/lt_matmul.h"

#include <utility>

#include "kiln/runtime/backend/cuda/cuda_status.h"

namespace kiln::runtime::cuda {

LtPlan::~LtPlan() {
  if (desc != nullptr) cublasLtMatmulDescDestroy(desc);
  if (a != nullptr) cublasLtMatrixLayoutDestroy(a);
  if (b != nullptr) cublasLtMatrixLayoutDestroy(b);
  if (d != nullptr) cublasLtMatrixLayoutDestroy(d);
}

Status LtPlan::init(cudaDataType_t in, cudaDataType_t out, int64_t m, int64_t n, int64_t k) {
  KILN_CUBLAS_RETURN_IF_ERROR(cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
  KILN_RETURN_IF_ERROR(set(CUBLASLT_MATMUL_DESC_TRANSA, ta));
  KILN_RETURN_IF_ERROR(set(CUBLASLT_MATMUL_DESC_TRANSB, tb));
  KILN_CUBLAS_RETURN_IF_ERROR(cublasLtMatrixLayoutCreate(&a, in, k, n, k));
  KILN_CUBLAS_RETURN_IF_ERROR(cublasLtMatrixLayoutCreate(&b, in, k, m, k));
  KILN_CUBLAS_RETURN_IF_ERROR(cublasLtMatrixLayoutCreate(&d, out, n, m, n));
  return Status::ok();
}

Status LtPlan::set_raw(cublasLtMatmulDescAttributes_t attr, const void* value, size_t size) {
  return cublas_status(cublasLtMatmulDescSetAttribute(desc, attr, value, size), "cublasLtMatmulDescSetAttribute");
}

cublasStatus_t LtPlan::heuristics(cublasLtHandle_t lt, cublasLtMatmulHeuristicResult_t* results, int max_results,
                                  int* found) const {
  *found = 0;
  cublasLtMatmulPreference_t pref = nullptr;
  cublasStatus_t st = cublasLtMatmulPreferenceCreate(&pref);
  if (st != CUBLAS_STATUS_SUCCESS) return st;
  const size_t ws = kLtWorkspaceBytes;
  st = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws));
  // A is w, B is x, C and D are y (matmul below).
  for (const auto& [attr, align] : {std::pair{CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, align_w},
                                   std::pair{CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, align_x},
                                   std::pair{CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, align_y},
                                   std::pair{CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, align_y}}) {
    if (st == CUBLAS_STATUS_SUCCESS) st = cublasLtMatmulPreferenceSetAttribute(pref, attr, &align, sizeof(align));
  }
  if (st == CUBLAS_STATUS_SUCCESS) {
    st = cublasLtMatmulAlgoGetHeuristic(lt, desc, a, b, d, d, pref, max_results, results, found);
  }
  cublasLtMatmulPreferenceDestroy(pref);
  return st;
}

cublasStatus_t LtPlan::matmul(cublasLtHandle_t lt, const cublasLtMatmulAlgo_t& chosen, const void* w, const void* x,
                              float beta, void* y, void* workspace, cudaStream_t stream) const {
  const float alpha = 1.0f;
  return cublasLtMatmul(lt, desc, &alpha, w, a, x, b, &beta, y, d, y, d, &chosen, workspace, kLtWorkspaceBytes, stream);
}

uint32_t lt_alignment(const void* p) {
  const auto a = reinterpret_cast<uintptr_t>(p);
  uint32_t al = 256;
  while (al > 2 && (a & (al - 1)) != 0) al >>= 1;
  return al;
}

Result<void*> LtWorkspaces::get(int device) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = by_device_.find(device);
  if (it != by_device_.end()) return it->second;
  void* p = nullptr;
  KILN_CUDA_RETURN_IF_ERROR(cudaMalloc(&p, kLtWorkspaceBytes));
  by_device_[device] = p;
  return p;
}

}  // namespace kiln::runtime::cuda
