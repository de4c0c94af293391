// The decoder of every architecture kiln runs: llama, mistral, qwen2 and qwen3, the
// mixture-of-experts qwen3_moe and mixtral, and gemma3. One pre-norm decoder; the members differ
// in flags of model::ModelConfig (attention bias, qk-norm, sliding windows per layer, tied
// embeddings), which select weights at load and parameters of the ops, and in two blocks: a
// sparse MLP (MoeBlock) in place of the dense one, and Gemma 3's layer (normalised attention and
// MLP outputs, GeGLU, (1 + weight) norms, scaled embeddings, a second RoPE table for its local
// layers, soft-capped logits). Never branches inside kernels.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "kiln/core/status.h"
#include "kiln/model/checkpoint.h"
#include "kiln/model/config.h"
#include "kiln/runtime/buffer.h"
#include "kiln/runtime/kv_cache.h"
#include "kiln/runtime/models/moe_block.h"
#include "kiln/runtime/ops/linear.h"

namespace kiln::runtime::models {

// A step's inputs, as tensors on the model's device (see StepPlan for their meaning).
struct ForwardInputs {
  Tensor token_ids;     // [n] I32
  Tensor positions;     // [n] I32
  Tensor slot_mapping;  // [n] I32: block * block_size + position % block_size
  Tensor query_start;   // [S + 1] I32
  Tensor kv_len;        // [S] I32
  Tensor block_start;   // [S + 1] I32
  Tensor block_ids;     // [B] I32
  Tensor logit_rows;    // [m] I32: the token rows whose logits are wanted
  Tensor hidden_rows;   // [h] I32: the token rows whose final hidden states are wanted; may be empty
  int64_t max_query_len = 0;
  int64_t max_kv_len = 0;
  // StepPlan::abandon: asked before each layer and before the output head; when it answers
  // true, forward() stops and returns step_abandoned().
  const std::function<bool()>* abandon = nullptr;
};

// What forward() returns when ForwardInputs::abandon stopped it.
Status step_abandoned();
bool is_step_abandoned(const Status& status);

class LlamaModel {
 public:
  // Reads every weight of `config`'s architecture from `checkpoint` (widened or narrowed to the
  // device's compute dtype); q/k/v and gate/up are concatenated. `max_positions` sizes the RoPE table.
  static Result<std::unique_ptr<LlamaModel>> load(const DeviceContext& ctx, const model::ModelConfig& config,
                                                  const model::Checkpoint& checkpoint, int64_t max_positions);

  // Runs the decoder over the step's tokens, writing their K/V into `cache`, the logits of
  // `in.logit_rows` into `logits` [m, vocab] (F32) and the final hidden states (after the last
  // norm) of `in.hidden_rows` into `hidden` [h, hidden] (compute dtype).
  Status forward(const DeviceContext& ctx, const ForwardInputs& in, const KvCache& cache, const Tensor& logits,
                 const Tensor& hidden = Tensor());

  // Allocates the activations of a step of `tokens` tokens and `rows` logit rows now, so that
  // the workspace is real from the load on (steps up to that size allocate nothing).
  Status reserve_workspace(const DeviceContext& ctx, int64_t tokens, int64_t rows) {
    return ensure_workspace(ctx, tokens, rows);
  }

  // What load() and reserve_workspace() allocate, for the memory plan (runtime/memory_plan.h).
  static int64_t planned_weights_bytes(const model::ModelConfig& config, Device device, WeightDType dtype,
                                       int64_t max_positions);
  static int64_t planned_workspace_bytes(const model::ModelConfig& config, Device device, int64_t tokens,
                                         int64_t rows);

  const model::ModelConfig& config() const { return config_; }
  int64_t weights_bytes() const { return weights_bytes_; }  // the RoPE table included
  int64_t workspace_bytes() const;
  int64_t max_positions() const { return rope_.tensor().dim(0); }
  // Whether forward() waits for the device mid-step to read a result on the host (MoE layers whose
  // experts run one by one off the CPU), which a CUDA graph cannot hold.
  bool syncs_mid_step() const;

 private:
  struct Layer {
    Buffer input_norm, post_attention_norm;  // [hidden]
    Buffer q_norm, k_norm;                   // [head_dim] (qk-norm) or empty
    Buffer pre_ff_norm, post_ff_norm;        // [hidden] (gemma) or empty
    ops::LinearWeight qkv, o, gate_up, down;  // gate_up and down empty in a sparse layer
    std::unique_ptr<MoeBlock> moe;           // a sparse layer's MLP
  };
  Status ensure_workspace(const DeviceContext& ctx, int64_t n, int64_t m);
  const Tensor& embedding_table() const { return embed_.empty() ? lm_head_.weight.tensor() : embed_.tensor(); }

  model::ModelConfig config_;
  bool has_lm_head_ = true;  // false: an embedding checkpoint without an output head
  Buffer embed_;       // [vocab, hidden]; empty when it is lm_head_'s weight (tied, CUDA)
  Buffer final_norm_;  // [hidden]
  ops::LinearWeight lm_head_;
  std::vector<Layer> layers_;
  Buffer rope_;        // [max_positions, head_dim] F32
  Buffer rope_local_;  // gemma's sliding layers: [max_positions, head_dim] F32, or empty
  int64_t weights_bytes_ = 0;

  // Activations, grown to the largest step seen so far.
  int64_t ws_tokens_ = 0, ws_rows_ = 0;
  Buffer residual_, normed_, qkv_, attn_, delta_, gate_up_, act_, selected_;
  MoeWorkspace moe_ws_;
};

}  // namespace kiln::runtime::models
