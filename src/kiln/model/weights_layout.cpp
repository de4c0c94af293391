#include "kiln/model/weights_layout.h"

#include "kiln/core/str.h"

namespace kiln::model {

std::string layer_prefix(int64_t layer) { return str_cat("model.layers.", layer, "."); }

std::string layer_tensor_name(int64_t layer, std::string_view suffix) { return str_cat(layer_prefix(layer), suffix); }

MoeTensorNames moe_tensor_names(const ModelConfig& c) {
  MoeTensorNames n;
  if (c.architecture == Architecture::kMixtral) {
    n.prefix = "block_sparse_moe.";
    n.gate = "w1.weight";
    n.up = "w3.weight";
    n.down = "w2.weight";
  } else {
    n.prefix = "mlp.";
    n.gate = "gate_proj.weight";
    n.up = "up_proj.weight";
    n.down = "down_proj.weight";
  }
  n.router = n.prefix + "gate.weight";
  return n;
}

std::string MoeTensorNames::expert_prefix(int64_t layer, int64_t expert) const {
  return str_cat(layer_prefix(layer), prefix, "experts.", expert, ".");
}

std::vector<ExpectedTensor> expected_layer_tensors(const ModelConfig& c, int64_t layer) {
  namespace lt = layer_tensor;
  const int64_t h = c.hidden_size, q = c.q_size(), kv = c.kv_size(), inter = c.intermediate_size;
  std::vector<ExpectedTensor> out;
  auto add = [&](std::string_view suffix, std::vector<int64_t> shape, TensorRole role) {
    out.push_back({layer_tensor_name(layer, suffix), std::move(shape), role});
  };
  add(lt::kQProj, {q, h}, TensorRole::kLinearWeight);
  if (c.attention_bias) add(lt::kQBias, {q}, TensorRole::kBias);
  add(lt::kKProj, {kv, h}, TensorRole::kLinearWeight);
  if (c.attention_bias) add(lt::kKBias, {kv}, TensorRole::kBias);
  add(lt::kVProj, {kv, h}, TensorRole::kLinearWeight);
  if (c.attention_bias) add(lt::kVBias, {kv}, TensorRole::kBias);
  add(lt::kOProj, {h, q}, TensorRole::kLinearWeight);
  if (c.attention_out_bias) add(lt::kOBias, {h}, TensorRole::kBias);
  if (c.qk_norm) {
    add(lt::kQNorm, {c.head_dim}, TensorRole::kNorm);
    add(lt::kKNorm, {c.head_dim}, TensorRole::kNorm);
  }
  if (c.layer_is_sparse(layer)) {
    const MoeTensorNames n = moe_tensor_names(c);
    const int64_t mi = c.moe_intermediate_size;
    add(n.router, {c.num_experts, h}, TensorRole::kLinearWeight);
    for (int64_t e = 0; e < c.num_experts; ++e) {
      const std::string p = n.expert_prefix(layer, e);
      out.push_back({p + n.gate, {mi, h}, TensorRole::kLinearWeight});
      out.push_back({p + n.up, {mi, h}, TensorRole::kLinearWeight});
      out.push_back({p + n.down, {h, mi}, TensorRole::kLinearWeight});
    }
  } else {
    add(lt::kGateProj, {inter, h}, TensorRole::kLinearWeight);
    if (c.mlp_bias) add(lt::kGateBias, {inter}, TensorRole::kBias);
    add(lt::kUpProj, {inter, h}, TensorRole::kLinearWeight);
    if (c.mlp_bias) add(lt::kUpBias, {inter}, TensorRole::kBias);
    add(lt::kDownProj, {h, inter}, TensorRole::kLinearWeight);
    if (c.mlp_bias) add(lt::kDownBias, {h}, TensorRole::kBias);
  }
  add(lt::kInputNorm, {h}, TensorRole::kNorm);
  add(lt::kPostAttentionNorm, {h}, TensorRole::kNorm);
  if (c.is_gemma()) {
    add(lt::kPreFeedforwardNorm, {h}, TensorRole::kNorm);
    add(lt::kPostFeedforwardNorm, {h}, TensorRole::kNorm);
  }
  return out;
}

std::vector<ExpectedTensor> expected_tensors(const ModelConfig& c) {
  std::vector<ExpectedTensor> out;
  out.push_back({std::string(kEmbedTokensName), {c.vocab_size, c.hidden_size}, TensorRole::kEmbedding});
  for (int64_t i = 0; i < c.num_layers; ++i) {
    auto layer = expected_layer_tensors(c, i);
    out.insert(out.end(), std::make_move_iterator(layer.begin()), std::make_move_iterator(layer.end()));
  }
  out.push_back({std::string(kFinalNormName), {c.hidden_size}, TensorRole::kNorm});
  if (!c.tie_word_embeddings) out.push_back({std::string(kLmHeadName), {c.vocab_size, c.hidden_size}, TensorRole::kLinearWeight});
  return out;
}

}  // namespace kiln::model
