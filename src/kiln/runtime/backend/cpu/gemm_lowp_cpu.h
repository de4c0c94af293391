// The low-precision CPU GEMMs: out[M, N] = x[M, K] @ W[N, K]^T + bias with x, bias and out in f32
// and W in bf16 or q8 (docs/cpu-dtypes.md). Like the f32 GEMM (gemm_cpu.h) they stream column
// panels of kGemmPanel outputs and are batch invariant: a row's result never depends on the other
// rows. Unlike it, the instruction set changes the bits (dot-product instructions round
// differently), so tests compare them with a tolerance.
#pragma once

#include <cstdint>
#include <span>

#include "kiln/runtime/backend/cpu/isa_cpu.h"
#include "kiln/runtime/device_context.h"
#include "kiln/runtime/weights.h"

namespace kiln::runtime::cpu {

// ---- bf16 ----
// Panel p holds, for each pair of k (2q, 2q+1) and each of its kGemmPanel outputs j, the two bf16
// weights side by side: the operands of one vdpbf16ps lane. K is padded to even with a zero.
int64_t bf16_packed_size(int64_t n, int64_t k);  // uint16 elements
// Packs the parts stacked along rows ([sum rows, k], F32/F16/BF16: bf16 is copied, the others
// rounded to nearest even) into `packed`, panels spread over ctx's threads.
void pack_bf16(const DeviceContext& ctx, std::span<const HostMatrix> parts, int64_t k, uint16_t* packed);
// x rounded to bf16, products of bf16 pairs summed in f32. `isa`: kAvx512Bf16 (vdpbf16ps), or
// kAvx512 / kAvx2 / kScalar, which widen the bf16 to f32 and use FMAs (the same products, exact
// in f32, and the same order, so they differ from vdpbf16ps only in its rounding of each pair).
void gemm_bf16(const DeviceContext& ctx, const float* x, int64_t m, int64_t k, const uint16_t* packed, int64_t n,
               const float* bias, float* out, DotIsa isa);

// ---- q8 ----
// W[n, k] = scale[n, b] * code[n, k] for blocks b of kQ8Block k: code in [-127, 127], scale f16
// (Q8_0's block). Stored as code + 128 (u8, the unsigned operand of vpdpbusd); panel p, block b:
// kQ8Block / 4 groups of [kGemmPanel outputs][4 consecutive k] (one vpdpbusd lane each), and the
// scales as [panel][block][kGemmPanel] f16. K is padded to whole blocks with zero codes.
inline constexpr int64_t kQ8Block = 32;
int64_t q8_blocks(int64_t k);                   // blocks per row
int64_t q8_codes_size(int64_t n, int64_t k);   // bytes
int64_t q8_scales_size(int64_t n, int64_t k);  // f16 elements
// Quantizes the parts (as pack_bf16's) per block: scale = max |w| / 127 rounded to f16, code =
// round(w / scale).
void pack_q8(const DeviceContext& ctx, std::span<const HostMatrix> parts, int64_t k, uint8_t* codes,
             uint16_t* scales);
// x is quantized the same way per block (f32 scale, int8 codes) as the product needs it; each
// block's integer dot product is exact and is added as fma(float(dot), w_scale * x_scale, acc),
// so every `isa` gives the same bits. kAvx512Vnni and up use vpdpbusd; kAvx512 (with AVX-512BW)
// and kAvx2 widen codes and x to int16 for vpmaddwd; kScalar is plain C++.
void gemm_q8(const DeviceContext& ctx, const float* x, int64_t m, int64_t k, const uint8_t* codes,
             const uint16_t* scales, int64_t n, const float* bias, float* out, DotIsa isa);

}  // namespace kiln::runtime::cpu
