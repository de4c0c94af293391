// CUDA kernel of ops::linear (same contract; arguments are checked by runtime/ops/linear.cpp):
// bf16 x and weight, f32 accumulation, bf16 or f32 out.
#pragma once

#include "kiln/runtime/ops/linear.h"

namespace kiln::runtime::cuda {
Status linear(const DeviceContext& ctx, const Tensor& x, const ops::LinearWeight& w, const Tensor& out);

// Whether ops::norm_linear runs as one kernel on these operands (decode batch sizes: the small-m
// GEMM normalises x in its prologue), and that kernel.
bool norm_linear_fused(const DeviceContext& ctx, const Tensor& x, const ops::PreNorm& norm, const ops::LinearWeight& w,
                       const Tensor& out);
Status norm_linear(const DeviceContext& ctx, const Tensor& x, const ops::PreNorm& norm, const ops::LinearWeight& w,
                   const Tensor& out);

// ops::linear_add: residual (bf16) += x · wᵀ (+ bias) in the GEMM's epilogue.
Status linear_add(const DeviceContext& ctx, const Tensor& x, const ops::LinearWeight& w, const Tensor& residual);
}  // namespace kiln::runtime::cuda
