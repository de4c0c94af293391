#include "kiln/model/weights_layout.h"

#include <gtest/gtest.h>

#include <map>
#include <set>

namespace kiln::model {
namespace {

std::map<std::string, std::vector<int64_t>> by_name(const ModelConfig& c) {
  std::map<std::string, std::vector<int64_t>> m;
  for (const auto& t : expected_tensors(c)) EXPECT_TRUE(m.emplace(t.name, t.shape).second) << "duplicate " << t.name;
  return m;
}

int64_t total(const ModelConfig& c) {
  int64_t n = 0;
  for (const auto& t : expected_tensors(c)) {
    int64_t e = 1;
    for (int64_t d : t.shape) e *= d;
    n += e;
  }
  return n;
}

ModelConfig qwen25_1_5b() {
  auto c = parse_model_config(R"({"model_type": "qwen2", "hidden_size": 1536, "intermediate_size": 8960,
      "num_attention_heads": 12, "num_hidden_layers": 28, "num_key_value_heads": 2, "tie_word_embeddings": true,
      "vocab_size": 151936})");
  EXPECT_TRUE(c.is_ok());
  return *c;
}

TEST(WeightsLayout, Qwen2HasQkvBiasesButNoOutputBias) {
  ModelConfig c = qwen25_1_5b();
  auto m = by_name(c);
  EXPECT_EQ(m.at("model.embed_tokens.weight"), (std::vector<int64_t>{151936, 1536}));
  EXPECT_EQ(m.at("model.layers.0.self_attn.q_proj.weight"), (std::vector<int64_t>{1536, 1536}));
  EXPECT_EQ(m.at("model.layers.0.self_attn.q_proj.bias"), (std::vector<int64_t>{1536}));
  EXPECT_EQ(m.at("model.layers.27.self_attn.k_proj.weight"), (std::vector<int64_t>{256, 1536}));
  EXPECT_EQ(m.at("model.layers.27.self_attn.k_proj.bias"), (std::vector<int64_t>{256}));
  EXPECT_EQ(m.at("model.layers.27.self_attn.v_proj.bias"), (std::vector<int64_t>{256}));
  EXPECT_FALSE(m.count("model.layers.0.self_attn.o_proj.bias"));
  EXPECT_EQ(m.at("model.layers.3.mlp.down_proj.weight"), (std::vector<int64_t>{1536, 8960}));
  EXPECT_EQ(m.at("model.layers.3.mlp.gate_proj.weight"), (std::vector<int64_t>{8960, 1536}));
  EXPECT_EQ(m.at("model.layers.3.post_attention_layernorm.weight"), (std::vector<int64_t>{1536}));
  EXPECT_EQ(m.at("model.norm.weight"), (std::vector<int64_t>{1536}));
  EXPECT_FALSE(m.count("lm_head.weight"));  // tied
  EXPECT_FALSE(m.count("model.layers.28.input_layernorm.weight"));
  EXPECT_EQ(total(c), c.num_parameters());
  EXPECT_EQ(total(c), 1543714304);
}

TEST(WeightsLayout, Qwen3HasQkNorms) {
  auto c = parse_model_config(R"({"model_type": "qwen3", "hidden_size": 1024, "intermediate_size": 3072,
      "num_attention_heads": 16, "num_hidden_layers": 28, "num_key_value_heads": 8, "head_dim": 128,
      "tie_word_embeddings": true, "vocab_size": 151936})");
  ASSERT_TRUE(c.is_ok());
  auto m = by_name(*c);
  EXPECT_EQ(m.at("model.layers.5.self_attn.q_norm.weight"), (std::vector<int64_t>{128}));
  EXPECT_EQ(m.at("model.layers.5.self_attn.k_norm.weight"), (std::vector<int64_t>{128}));
  EXPECT_EQ(m.at("model.layers.5.self_attn.q_proj.weight"), (std::vector<int64_t>{2048, 1024}));
  EXPECT_EQ(m.at("model.layers.5.self_attn.o_proj.weight"), (std::vector<int64_t>{1024, 2048}));
  EXPECT_FALSE(m.count("model.layers.5.self_attn.q_proj.bias"));
  EXPECT_EQ(total(*c), 596049920);
}

TEST(WeightsLayout, LlamaBiasesAndUntiedHead) {
  auto c = parse_model_config(R"({"model_type": "llama", "hidden_size": 64, "intermediate_size": 128,
      "num_attention_heads": 4, "num_hidden_layers": 2, "num_key_value_heads": 2, "vocab_size": 100,
      "attention_bias": true, "mlp_bias": true})");
  ASSERT_TRUE(c.is_ok());
  auto m = by_name(*c);
  EXPECT_EQ(m.at("lm_head.weight"), (std::vector<int64_t>{100, 64}));
  EXPECT_EQ(m.at("model.layers.1.self_attn.o_proj.bias"), (std::vector<int64_t>{64}));
  EXPECT_EQ(m.at("model.layers.1.mlp.gate_proj.bias"), (std::vector<int64_t>{128}));
  EXPECT_EQ(m.at("model.layers.1.mlp.down_proj.bias"), (std::vector<int64_t>{64}));
  EXPECT_FALSE(m.count("model.layers.1.self_attn.q_norm.weight"));
  EXPECT_EQ(total(*c), c->num_parameters());
  // 2 embeddings + 2 * (4 linear + 4 attention biases + 3 mlp + 3 mlp biases + 2 norms) + final norm
  EXPECT_EQ(m.size(), 2u + 2 * 16 + 1);
  std::set<TensorRole> roles;
  for (const auto& t : expected_tensors(*c)) {
    if (t.name.find("norm") != std::string::npos) {
      EXPECT_EQ(t.role, TensorRole::kNorm) << t.name;
    }
    if (t.name.find(".bias") != std::string::npos) {
      EXPECT_EQ(t.role, TensorRole::kBias) << t.name;
    }
    roles.insert(t.role);
  }
  EXPECT_EQ(roles.size(), 4u);
  EXPECT_EQ(layer_tensor_name(7, layer_tensor::kDownProj), "model.layers.7.mlp.down_proj.weight");
}

}  // namespace
}  // namespace kiln::model
