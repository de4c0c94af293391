// The whole decoder stack of a llama-family model (embedding and every layer) for a step of
// exactly one token, as one kernel where the backend has one (CUDA: a cooperative kernel whose
// phases are separated by grid-wide barriers, backend/cuda/decoder_fused.h). Batch-1 decode is
// bound by the fixed cost of each kernel, seven per layer when the ops run one by one. The result
// is the one-by-one ops' result up to the order of attention's sums: the projections and norms are
// bitwise the same. Backends without it (the CPU) run the ops one by one.
#pragma once

#include <memory>
#include <vector>

#include "kiln/core/status.h"
#include "kiln/runtime/device_context.h"
#include "kiln/runtime/kv_cache.h"
#include "kiln/runtime/ops/linear.h"
#include "kiln/runtime/tensor.h"

namespace kiln::runtime::ops {

struct FusedDecoderLayer {
  Tensor input_norm, post_attention_norm;  // [hidden]
  Tensor q_norm, k_norm;                   // [head_dim] or empty
  const LinearWeight* qkv = nullptr;
  const LinearWeight* o = nullptr;
  const LinearWeight* gate_up = nullptr;  // [gate; up]
  const LinearWeight* down = nullptr;
};

struct FusedDecoderDesc {
  int64_t hidden = 0, intermediate = 0, num_heads = 0, num_kv_heads = 0, head_dim = 0;
  float eps = 1e-6f, scale = 1.0f;
  int64_t sliding_window = 0;
  Tensor embedding;   // [vocab, hidden]
  Tensor rope_table;  // [max_positions, head_dim] F32
  std::vector<FusedDecoderLayer> layers;
};

// The step's one token (each [1] I32 but block_ids, the sequence's table) and the activations
// (rows of the model's workspace: residual [1, hidden] receives the output).
struct FusedDecoderIo {
  Tensor token_ids, positions, slot_mapping, kv_len, block_ids;
  Tensor residual, qkv, attn, gate_up;
};

class FusedDecoder {
 public:
  virtual ~FusedDecoder() = default;
  // The fused decoder of ctx's device for `desc`, or why there is none (no such kernel on this
  // device or in this build, a shape it does not take, KILN_CUDA_FUSED_DECODE=0).
  static Result<std::unique_ptr<FusedDecoder>> create(const DeviceContext& ctx, const FusedDecoderDesc& desc);
  virtual Status run(const DeviceContext& ctx, const FusedDecoderIo& io, const KvCache& cache) = 0;
};

}  // namespace kiln::runtime::ops
