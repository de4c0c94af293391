// The CPU backend's GEMM: out[M, N] = x[M, K] @ W[N, K]^T + bias, batch invariant.
//
// Every output element is one sequential chain of fused multiply-adds over k = 0 .. K-1 starting
// from zero, then + bias. The chain is the same whatever M, the row block an element falls into,
// the K blocking, the thread count or the instruction set (AVX-512, AVX2 or scalar std::fma all
// round each FMA exactly once), so a row's result never depends on the other rows of the batch.
//
// W is packed at load into column panels of kGemmPanel outputs: panel p holds, for each k, the
// weights of outputs p*kGemmPanel .. p*kGemmPanel + kGemmPanel - 1 contiguously (zero padded), so
// the kernel streams one panel linearly and broadcasts x.
#pragma once

#include <cstdint>

#include "kiln/runtime/backend/cpu/gemm_tiles_cpu.h"
#include "kiln/runtime/backend/cpu/isa_cpu.h"
#include "kiln/runtime/device_context.h"

namespace kiln::runtime::cpu {

// Floats the packed form of an [n, k] matrix takes.
int64_t packed_size(int64_t n, int64_t k);
// w: [n, k] row-major f32 -> packed: packed_size(n, k) floats.
void pack_weight(const float* w, int64_t n, int64_t k, float* packed);

// x: [m, k] row-major; packed from pack_weight; bias: [n] or null; out: [m, n] row-major.
// `isa` selects the kernel (tests compare them); results are identical for every isa.
void gemm_packed(const DeviceContext& ctx, const float* x, int64_t m, int64_t k, const float* packed, int64_t n,
                 const float* bias, float* out, CpuIsa isa);

}  // namespace kiln::runtime::cpu
