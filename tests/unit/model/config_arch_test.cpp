// config.json of the mixture-of-experts and Gemma 3 families: the published files parse to the
// right shapes, omitted fields take transformers' defaults, the presets round-trip, and bad values
// are refused with the field's name.
#include <gtest/gtest.h>

#include "kiln/model/config.h"
#include "kiln/model/make_model.h"
#include "kiln/model/weights_layout.h"

namespace kiln::model {
namespace {

// Qwen/Qwen3-30B-A3B's config.json (the fields that matter).
constexpr const char* kQwen3Moe = R"({
  "architectures": ["Qwen3MoeForCausalLM"], "model_type": "qwen3_moe", "attention_bias": false,
  "decoder_sparse_step": 1, "head_dim": 128, "hidden_act": "silu", "hidden_size": 2048,
  "intermediate_size": 6144, "max_position_embeddings": 40960, "max_window_layers": 48,
  "mlp_only_layers": [], "moe_intermediate_size": 768, "norm_topk_prob": true,
  "num_attention_heads": 32, "num_experts": 128, "num_experts_per_tok": 8, "num_hidden_layers": 48,
  "num_key_value_heads": 4, "rms_norm_eps": 1e-06, "rope_scaling": null, "rope_theta": 1000000.0,
  "sliding_window": null, "tie_word_embeddings": false, "torch_dtype": "bfloat16",
  "use_sliding_window": false, "vocab_size": 151936})";

// mistralai/Mixtral-8x7B-v0.1's config.json.
constexpr const char* kMixtral = R"({
  "architectures": ["MixtralForCausalLM"], "model_type": "mixtral", "bos_token_id": 1, "eos_token_id": 2,
  "hidden_act": "silu", "hidden_size": 4096, "intermediate_size": 14336, "max_position_embeddings": 32768,
  "num_attention_heads": 32, "num_experts_per_tok": 2, "num_hidden_layers": 32, "num_key_value_heads": 8,
  "num_local_experts": 8, "rms_norm_eps": 1e-05, "rope_theta": 1000000.0, "sliding_window": null,
  "tie_word_embeddings": false, "torch_dtype": "bfloat16", "vocab_size": 32000})";

// google/gemma-3-1b-it's config.json (sliding_window_pattern, no layer_types).
constexpr const char* kGemma1b = R"({
  "architectures": ["Gemma3ForCausalLM"], "model_type": "gemma3_text", "attention_bias": false,
  "attn_logit_softcapping": null, "bos_token_id": 2, "eos_token_id": [1, 106],
  "final_logit_softcapping": null, "head_dim": 256, "hidden_activation": "gelu_pytorch_tanh",
  "hidden_size": 1152, "intermediate_size": 6912, "max_position_embeddings": 32768,
  "num_attention_heads": 4, "num_hidden_layers": 26, "num_key_value_heads": 1, "pad_token_id": 0,
  "query_pre_attn_scalar": 256, "rms_norm_eps": 1e-06, "rope_local_base_freq": 10000,
  "rope_scaling": null, "rope_theta": 1000000, "sliding_window": 512, "sliding_window_pattern": 6,
  "torch_dtype": "bfloat16", "vocab_size": 262144})";

// google/gemma-3-4b-it's config.json: a Gemma3ForConditionalGeneration whose text_config leaves
// most fields at Gemma3TextConfig's defaults.
constexpr const char* kGemma4b = R"({
  "architectures": ["Gemma3ForConditionalGeneration"], "model_type": "gemma3",
  "boi_token_index": 255999, "eoi_token_index": 256000, "eos_token_id": [1, 106],
  "image_token_index": 262144, "mm_tokens_per_image": 256,
  "text_config": {"hidden_size": 2560, "intermediate_size": 10240, "model_type": "gemma3_text",
                  "num_hidden_layers": 34, "rope_scaling": {"factor": 8.0, "rope_type": "linear"},
                  "sliding_window": 1024},
  "torch_dtype": "bfloat16", "vision_config": {"model_type": "siglip_vision_model"}})";

TEST(ConfigArch, Qwen3MoeFromThePublishedConfig) {
  auto c = parse_model_config(kQwen3Moe);
  ASSERT_TRUE(c.is_ok()) << c.status().to_string();
  EXPECT_EQ(c->architecture, Architecture::kQwen3Moe);
  EXPECT_TRUE(c->qk_norm);
  EXPECT_EQ(c->num_experts, 128);
  EXPECT_EQ(c->num_experts_per_tok, 8);
  EXPECT_EQ(c->moe_intermediate_size, 768);
  EXPECT_TRUE(c->norm_topk_prob);
  for (int64_t l = 0; l < 48; ++l) EXPECT_TRUE(c->layer_is_sparse(l));
  EXPECT_EQ(c->num_parameters(), 30532122624);  // Qwen3-30B-A3B: 30.5B
  auto preset = preset_config("qwen3-30b-a3b");
  ASSERT_TRUE(preset.is_ok());
  EXPECT_EQ(preset->num_parameters(), c->num_parameters());
}

TEST(ConfigArch, Qwen3MoeDenseLayers) {
  std::string text = kQwen3Moe;
  text.replace(text.find("\"mlp_only_layers\": []"), 21, "\"mlp_only_layers\": [0, 5]");
  text.replace(text.find("\"decoder_sparse_step\": 1"), 24, "\"decoder_sparse_step\": 2");
  auto c = parse_model_config(text);
  ASSERT_TRUE(c.is_ok()) << c.status().to_string();
  EXPECT_FALSE(c->layer_is_sparse(0));
  EXPECT_TRUE(c->layer_is_sparse(1));
  EXPECT_FALSE(c->layer_is_sparse(2));
  EXPECT_FALSE(c->layer_is_sparse(5));
  EXPECT_TRUE(c->layer_is_sparse(7));
  // A dense layer has the dense MLP's tensors, a sparse one the router and experts'.
  const auto dense = expected_layer_tensors(*c, 0), sparse = expected_layer_tensors(*c, 1);
  EXPECT_EQ(dense.back().name, "model.layers.0.post_attention_layernorm.weight");
  EXPECT_EQ(sparse.size(), dense.size() - 3 + 1 + 3 * 128);
  text.replace(text.find("[0, 5]"), 6, "[0, 48]");
  auto bad = parse_model_config(text);
  EXPECT_FALSE(bad.is_ok());
  EXPECT_NE(bad.status().message().find("mlp_only_layers"), std::string::npos);
}

TEST(ConfigArch, MixtralFromThePublishedConfig) {
  auto c = parse_model_config(kMixtral);
  ASSERT_TRUE(c.is_ok()) << c.status().to_string();
  EXPECT_EQ(c->architecture, Architecture::kMixtral);
  EXPECT_EQ(c->num_experts, 8);
  EXPECT_EQ(c->num_experts_per_tok, 2);
  EXPECT_EQ(c->moe_intermediate_size, 14336);
  EXPECT_TRUE(c->norm_topk_prob);
  EXPECT_FALSE(c->sliding_window.has_value());
  EXPECT_EQ(c->head_dim, 128);
  EXPECT_EQ(c->num_parameters(), 46702792704);  // Mixtral 8x7B: 46.7B
  const auto names = moe_tensor_names(*c);
  EXPECT_EQ(names.expert_prefix(3, 7) + names.gate, "model.layers.3.block_sparse_moe.experts.7.w1.weight");
  std::string text = kMixtral;
  text.replace(text.find("\"num_experts_per_tok\": 2"), 24, "\"num_experts_per_tok\": 9");
  auto bad = parse_model_config(text);
  EXPECT_FALSE(bad.is_ok());
  EXPECT_NE(bad.status().message().find("num_experts_per_tok"), std::string::npos);
}

TEST(ConfigArch, Gemma3TextFromThePublishedConfig) {
  auto c = parse_model_config(kGemma1b);
  ASSERT_TRUE(c.is_ok()) << c.status().to_string();
  EXPECT_EQ(c->architecture, Architecture::kGemma3);
  EXPECT_TRUE(c->qk_norm);
  EXPECT_TRUE(c->gelu_mlp);
  EXPECT_TRUE(c->tie_word_embeddings);
  EXPECT_FLOAT_EQ(c->attention_scale(), 1.0f / 16.0f);
  ASSERT_EQ(c->sliding_layers.size(), 26u);
  for (int64_t l = 0; l < 26; ++l) EXPECT_EQ(c->layer_window(l), (l + 1) % 6 == 0 ? 0 : 512) << l;
  EXPECT_EQ(c->rope_local_theta, 10000.0);
  EXPECT_EQ(c->rope_theta, 1e6);
  EXPECT_EQ(c->num_parameters(), 999885952);  // gemma-3-1b
  // transformers 5 writes layer_types and per-layer-type RoPE parameters.
  std::string v5 = kGemma1b;
  v5.replace(v5.find("\"sliding_window_pattern\": 6"), 27,
             R"("layer_types": ["sliding_attention", "full_attention"], "num_hidden_layers": 2,
                "rope_parameters": {"full_attention": {"rope_type": "linear", "factor": 4.0, "rope_theta": 500000.0},
                                    "sliding_attention": {"rope_type": "default", "rope_theta": 20000.0}})");
  v5.replace(v5.find("\"num_hidden_layers\": 26"), 23, "\"num_key_value_heads\": 1");
  auto c5 = parse_model_config(v5);
  ASSERT_TRUE(c5.is_ok()) << c5.status().to_string();
  EXPECT_EQ(c5->layer_window(0), 512);
  EXPECT_EQ(c5->layer_window(1), 0);
  EXPECT_EQ(c5->rope_theta, 500000.0);
  EXPECT_EQ(c5->rope_scaling.type, RopeScalingType::kLinear);
  EXPECT_EQ(c5->rope_local_theta, 20000.0);
  std::string gelu = kGemma1b;
  gelu.replace(gelu.find("gelu_pytorch_tanh"), 17, "gelu");
  EXPECT_EQ(parse_model_config(gelu).status().code(), StatusCode::kUnimplemented);
}

TEST(ConfigArch, Gemma3ConditionalGenerationServesItsTextModel) {
  auto c = parse_model_config(kGemma4b);
  ASSERT_TRUE(c.is_ok()) << c.status().to_string();
  EXPECT_EQ(c->architecture, Architecture::kGemma3);
  EXPECT_EQ(c->vocab_size, 262208);
  EXPECT_EQ(c->num_heads, 8);
  EXPECT_EQ(c->num_kv_heads, 4);
  EXPECT_EQ(c->head_dim, 256);
  EXPECT_EQ(c->rope_scaling.type, RopeScalingType::kLinear);
  EXPECT_EQ(c->rope_scaling.factor, 8.0);
  EXPECT_EQ(c->layer_window(4), 1024);
  EXPECT_EQ(c->layer_window(5), 0);
  EXPECT_EQ(c->eos_token_ids, (std::vector<int32_t>{1, 106}));
  auto preset = preset_config("gemma3-4b");
  ASSERT_TRUE(preset.is_ok());
  EXPECT_EQ(preset->num_parameters(), c->num_parameters());
}

TEST(ConfigArch, NewPresetsRoundTrip) {
  for (const char* name : {"qwen3-30b-a3b", "mixtral-8x7b", "gemma3-1b", "gemma3-4b", "tiny-qwen3-moe", "tiny-mixtral",
                           "tiny-gemma3"}) {
    SCOPED_TRACE(name);
    auto c = preset_config(name);
    ASSERT_TRUE(c.is_ok());
    ASSERT_TRUE(validate_model_config(*c).is_ok()) << validate_model_config(*c).to_string();
    auto back = parse_model_config(model_config_to_json(*c));
    ASSERT_TRUE(back.is_ok()) << back.status().to_string();
    EXPECT_EQ(back->architecture, c->architecture);
    EXPECT_EQ(back->num_parameters(), c->num_parameters());
    EXPECT_EQ(back->num_experts, c->num_experts);
    EXPECT_EQ(back->num_experts_per_tok, c->num_experts_per_tok);
    EXPECT_EQ(back->norm_topk_prob, c->norm_topk_prob);
    EXPECT_EQ(back->mlp_only_layers, c->mlp_only_layers);
    EXPECT_EQ(back->sliding_layers, c->sliding_layers);
    EXPECT_EQ(back->sliding_window, c->sliding_window);
    EXPECT_EQ(back->query_pre_attn_scalar, c->query_pre_attn_scalar);
    EXPECT_EQ(back->final_logit_softcapping, c->final_logit_softcapping);
    EXPECT_EQ(back->rope_scaling.type, c->rope_scaling.type);
    EXPECT_EQ(back->rope_local_theta, c->rope_local_theta);
    EXPECT_EQ(back->qk_norm, c->qk_norm);
  }
}

}  // namespace
}  // namespace kiln::model
