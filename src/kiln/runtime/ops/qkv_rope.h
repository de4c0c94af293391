// Post-processing of the fused QKV projection, one pass per token:
//   1. optional per-head RMSNorm of q and k (qwen3's q_norm / k_norm, weight [head_dim]),
//   2. RoPE on q and k (Hugging Face "rotate half" convention, cos/sin from a rope_table),
//   3. k and v written into the paged KV cache at the token's slot.
// q is left, rotated, in place in qkv for paged_attention; k is rotated in place too.
#pragma once

#include <cstdint>

#include "kiln/runtime/device_context.h"
#include "kiln/runtime/tensor.h"

namespace kiln::runtime::ops {

struct QkvParams {
  int64_t num_heads = 0;     // H
  int64_t num_kv_heads = 0;  // KV
  int64_t head_dim = 0;      // D
  float qk_norm_eps = 1e-6f;
};

// qkv: [n, (H + 2 KV) * D], columns q | k | v, in compute dtype.
// positions: [n] I32, each in [0, rope_table rows); slot_mapping: [n] I32, each in
// [0, num_blocks * block_size).
// q_norm, k_norm: [D] or both absent. rope_table: [max_positions, D] F32 (rope.h).
// kv_cache: [num_blocks, 2, block_size, KV, D] (kv_cache.h).
// Out-of-range positions or slots are an error on CPU; on CUDA they must be validated beforehand.
Status qkv_rope_cache(const DeviceContext& ctx, const Tensor& qkv, const Tensor& positions,
                      const Tensor& slot_mapping, const Tensor& q_norm, const Tensor& k_norm,
                      const Tensor& rope_table, const QkvParams& params, const Tensor& kv_cache);

}  // namespace kiln::runtime::ops
