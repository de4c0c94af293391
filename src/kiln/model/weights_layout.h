// The tensors of a Hugging Face checkpoint for a ModelConfig: names and shapes, as transformers'
// LlamaForCausalLM / MistralForCausalLM / Qwen2ForCausalLM / Qwen3ForCausalLM / Qwen3MoeForCausalLM /
// MixtralForCausalLM / Gemma3ForCausalLM state dicts hold them. `kiln make-model` writes exactly these; the runtime loader reads exactly these.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/model/config.h"

namespace kiln::model {

// What a tensor is, which decides how make-model initialises it.
enum class TensorRole { kEmbedding, kLinearWeight, kBias, kNorm };

struct ExpectedTensor {
  std::string name;
  std::vector<int64_t> shape;  // row-major; linear weights are [out_features, in_features]
  TensorRole role = TensorRole::kLinearWeight;
};

// Names of the tensors outside the layers.
inline constexpr std::string_view kEmbedTokensName = "model.embed_tokens.weight";  // [vocab, hidden]
inline constexpr std::string_view kFinalNormName = "model.norm.weight";            // [hidden]
inline constexpr std::string_view kLmHeadName = "lm_head.weight";  // [vocab, hidden]; absent when tied

// Suffixes of the tensors inside layer i, after layer_prefix(i).
namespace layer_tensor {
inline constexpr std::string_view kQProj = "self_attn.q_proj.weight";    // [heads * head_dim, hidden]
inline constexpr std::string_view kKProj = "self_attn.k_proj.weight";    // [kv_heads * head_dim, hidden]
inline constexpr std::string_view kVProj = "self_attn.v_proj.weight";    // [kv_heads * head_dim, hidden]
inline constexpr std::string_view kOProj = "self_attn.o_proj.weight";    // [hidden, heads * head_dim]
inline constexpr std::string_view kQBias = "self_attn.q_proj.bias";      // [heads * head_dim]   attention_bias
inline constexpr std::string_view kKBias = "self_attn.k_proj.bias";      // [kv_heads * head_dim]
inline constexpr std::string_view kVBias = "self_attn.v_proj.bias";      // [kv_heads * head_dim]
inline constexpr std::string_view kOBias = "self_attn.o_proj.bias";      // [hidden]  attention_out_bias
inline constexpr std::string_view kQNorm = "self_attn.q_norm.weight";    // [head_dim]  qk_norm
inline constexpr std::string_view kKNorm = "self_attn.k_norm.weight";    // [head_dim]  qk_norm
inline constexpr std::string_view kGateProj = "mlp.gate_proj.weight";    // [intermediate, hidden]
inline constexpr std::string_view kUpProj = "mlp.up_proj.weight";        // [intermediate, hidden]
inline constexpr std::string_view kDownProj = "mlp.down_proj.weight";    // [hidden, intermediate]
inline constexpr std::string_view kGateBias = "mlp.gate_proj.bias";      // [intermediate]  mlp_bias
inline constexpr std::string_view kUpBias = "mlp.up_proj.bias";          // [intermediate]  mlp_bias
inline constexpr std::string_view kDownBias = "mlp.down_proj.bias";      // [hidden]        mlp_bias
inline constexpr std::string_view kInputNorm = "input_layernorm.weight";               // [hidden]
inline constexpr std::string_view kPostAttentionNorm = "post_attention_layernorm.weight";  // [hidden]
// Gemma 3's norms around the MLP (its post_attention_layernorm normalises the attention output).
inline constexpr std::string_view kPreFeedforwardNorm = "pre_feedforward_layernorm.weight";    // [hidden]
inline constexpr std::string_view kPostFeedforwardNorm = "post_feedforward_layernorm.weight";  // [hidden]
}  // namespace layer_tensor

// The sparse MLP of a mixture-of-experts layer, as the published checkpoints name it (transformers
// 5 fuses the experts in memory but reads these names).
struct MoeTensorNames {
  std::string router;                          // [num_experts, hidden]
  std::string gate, up, down;                  // expert e's: prefix(e) + name
  std::string expert_prefix(int64_t layer, int64_t expert) const;
  std::string prefix;                          // "mlp." or "block_sparse_moe."
};
// qwen3_moe: mlp.gate, mlp.experts.{e}.{gate,up,down}_proj; mixtral: block_sparse_moe.gate,
// block_sparse_moe.experts.{e}.{w1,w3,w2}.
MoeTensorNames moe_tensor_names(const ModelConfig& config);

// "model.layers.{layer}."
std::string layer_prefix(int64_t layer);
// "model.layers.{layer}.{suffix}"
std::string layer_tensor_name(int64_t layer, std::string_view suffix);

// The tensors of layer `layer`, in state-dict order.
std::vector<ExpectedTensor> expected_layer_tensors(const ModelConfig& config, int64_t layer);
// Every tensor of the checkpoint, in state-dict order: embed_tokens, the layers, norm, lm_head.
std::vector<ExpectedTensor> expected_tensors(const ModelConfig& config);

}  // namespace kiln::model
