// The fused one-token decoder: the embedding and every decoder layer of a llama-family model for a
// step of one token as one cooperative kernel, its phases separated by grid-wide barriers instead
// of kernel boundaries (batch-1 decode is bound by the fixed cost of each kernel, not by bandwidth).
// Each warp requests its first weights of the next phase before it waits at a barrier, so the
// memory pipe stays full across phases. Plain C++ header: no CUDA header.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kiln/core/status.h"
#include "kiln/runtime/backend/cuda/device.h"

namespace kiln::runtime::cuda {

// One layer's weights (bf16; biases and q/k norms may be null) and its KV cache
// ([num_blocks, 2, block_size, KV, D] bf16).
struct FusedLayer {
  const uint16_t* input_norm = nullptr;
  const uint16_t* post_norm = nullptr;
  const uint16_t* q_norm = nullptr;
  const uint16_t* k_norm = nullptr;
  const uint16_t* qkv_w = nullptr;
  const uint16_t* qkv_b = nullptr;
  const uint16_t* o_w = nullptr;
  const uint16_t* o_b = nullptr;
  const uint16_t* gate_up_w = nullptr;
  const uint16_t* gate_up_b = nullptr;
  const uint16_t* down_w = nullptr;
  const uint16_t* down_b = nullptr;
  uint16_t* kv_cache = nullptr;
};

struct FusedShape {
  int hidden = 0, heads = 0, kv_heads = 0, head_dim = 0, inter = 0, block_size = 16;
  float eps = 1e-6f, scale = 1.0f;
  int64_t sliding_window = 0;  // 0 = none
  int64_t vocab = 0, max_positions = 0;
};

struct FusedDecodeArgs {
  FusedShape shape;
  const FusedLayer* layers = nullptr;  // device array
  int num_layers = 0;
  // The step's one token: its id, position, cache slot (negative: not written), key count
  // (position + 1 at decode) and the sequence's block table.
  const int32_t* token = nullptr;
  const int32_t* position = nullptr;
  const int32_t* slot = nullptr;
  const int32_t* kv_len = nullptr;
  const int32_t* block_ids = nullptr;
  const uint16_t* embedding = nullptr;  // [vocab, hidden]
  const float* rope_table = nullptr;    // [max_positions, head_dim]
  // Activations (bf16): residual [hidden] (the output), qkv [(H + 2 KV) D], attn [H D],
  // gate_up [2 inter]; scratch: partials (fused_partial_floats) and counters (fused_counter_count,
  // zero before the first launch; every launch leaves them zero).
  uint16_t* residual = nullptr;
  uint16_t* qkv = nullptr;
  uint16_t* attn = nullptr;
  uint16_t* gate_up = nullptr;
  float* partials = nullptr;
  unsigned* counters = nullptr;
  // Optional: per barrier, the first and last block's arrival and the release (globaltimer ns;
  // 3 * fused_barrier_count slots, set to {max, 0, 0} before the launch).
  unsigned long long* trace = nullptr;
  unsigned long long* waits = nullptr;  // optional: per phase, the ns block 0.. waited for weights
  int stages = 0;
  int keys_per_warp = 4;  // set by launch_fused_decode: the weight ring's stages
};

// Grid barriers per launch: one after the embedding, five per layer but the last.
inline int fused_barrier_count(int num_layers) { return 5 * num_layers; }

// Whether the kernel takes this shape on `device` (head_dim, group size, shared memory), and why not.
Status fused_decode_fits(const FusedShape& shape, int device);
int64_t fused_partial_floats(const FusedShape& shape, int device);
int64_t fused_counter_count(const FusedShape& shape);
Status launch_fused_decode(const FusedDecodeArgs& args, int device, Stream stream);

}  // namespace kiln::runtime::cuda
