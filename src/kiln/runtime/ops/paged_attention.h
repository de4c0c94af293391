// Causal attention of a step's new tokens over the paged KV cache, with GQA, variable lengths per
// sequence and an optional sliding window.
//
// Sequence s has new tokens query_start[s] .. query_start[s+1]) at positions
// kv_len[s] - n_s .. kv_len[s] - 1; the token at position p attends to every cached position
// j <= p of its sequence (and only j > p - sliding_window when a window is set). Keys are visited
// in a fixed order per query row, so a row's result does not depend on the rest of the batch.
#pragma once

#include <cstdint>

#include "kiln/runtime/device_context.h"
#include "kiln/runtime/tensor.h"

namespace kiln::runtime::ops {

struct AttentionParams {
  int64_t num_heads = 0;      // H
  int64_t num_kv_heads = 0;   // KV; H % KV == 0, query head h reads kv head h / (H / KV)
  int64_t head_dim = 0;       // D
  float scale = 1.0f;         // usually 1 / sqrt(D)
  int64_t sliding_window = 0; // 0 = none
  // Upper bounds over the step's sequences, from the plan (host values, so a CUDA graph can be
  // captured per shape): the longest query span and the longest kv_len.
  int64_t max_query_len = 0;
  int64_t max_kv_len = 0;
};

// qkv: [n, (H + 2 KV) * D]; q is read from its first H * D columns (after qkv_rope_cache).
// kv_cache: [num_blocks, 2, block_size, KV, D].
// query_start: [S + 1] I32; kv_len: [S] I32; block_start: [S + 1] I32 into block_ids: [B] I32
// (the block table of sequence s is block_ids[block_start[s] .. block_start[s+1]), in order).
// out: [n, H * D].
Status paged_attention(const DeviceContext& ctx, const Tensor& qkv, const Tensor& kv_cache,
                       const Tensor& query_start, const Tensor& kv_len, const Tensor& block_start,
                       const Tensor& block_ids, const AttentionParams& params, const Tensor& out);

}  // namespace kiln::runtime::ops
