// CUDA and cuBLASLt error codes turned into Status. Host code only; included by the .cu and .cpp
// files of this folder, never by other layers.
#pragma once

#include <cublasLt.h>
#include <cuda_runtime.h>

#include "kiln/core/status.h"
#include "kiln/core/str.h"

namespace kiln::runtime::cuda {

inline Status cuda_status(cudaError_t err, const char* what) {
  if (err == cudaSuccess) return Status::ok();
  return internal_error(str_cat("CUDA error in ", what, ": ", cudaGetErrorName(err), " (",
                                cudaGetErrorString(err), ")"));
}

inline Status cublas_status(cublasStatus_t st, const char* what) {
  if (st == CUBLAS_STATUS_SUCCESS) return Status::ok();
  return internal_error(str_cat("cuBLASLt error in ", what, ": ", cublasLtGetStatusName(st), " (",
                                cublasLtGetStatusString(st), ")"));
}

// Checks the launch that just happened on this thread.
inline Status launch_status(const char* kernel) { return cuda_status(cudaGetLastError(), kernel); }

}  // namespace kiln::runtime::cuda

#define KILN_CUDA_RETURN_IF_ERROR(expr) KILN_RETURN_IF_ERROR(::kiln::runtime::cuda::cuda_status((expr), #expr))
#define KILN_CUBLAS_RETURN_IF_ERROR(expr) \
  KILN_RETURN_IF_ERROR(::kiln::runtime::cuda::cublas_status((expr), #expr))

