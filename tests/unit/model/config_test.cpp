#include "kiln/model/config.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>

#include "kiln/core/file.h"
#include "kiln/core/str.h"

namespace kiln::model {
namespace {

// The config.json files of the published checkpoints, as Hugging Face serves them.
constexpr const char* kLlama32_1B = R"({
  "architectures": ["LlamaForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
  "bos_token_id": 128000, "eos_token_id": 128001, "head_dim": 64, "hidden_act": "silu",
  "hidden_size": 2048, "initializer_range": 0.02, "intermediate_size": 8192,
  "max_position_embeddings": 131072, "mlp_bias": false, "model_type": "llama",
  "num_attention_heads": 32, "num_hidden_layers": 16, "num_key_value_heads": 8, "pretraining_tp": 1,
  "rms_norm_eps": 1e-05,
  "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                   "original_max_position_embeddings": 8192, "rope_type": "llama3"},
  "rope_theta": 500000.0, "tie_word_embeddings": true, "torch_dtype": "bfloat16",
  "transformers_version": "4.45.0.dev0", "use_cache": true, "vocab_size": 128256})";

constexpr const char* kMistral7B = R"({
  "architectures": ["MistralForCausalLM"], "bos_token_id": 1, "eos_token_id": 2, "hidden_act": "silu",
  "hidden_size": 4096, "initializer_range": 0.02, "intermediate_size": 14336,
  "max_position_embeddings": 32768, "model_type": "mistral", "num_attention_heads": 32,
  "num_hidden_layers": 32, "num_key_value_heads": 8, "rms_norm_eps": 1e-05, "rope_theta": 10000.0,
  "sliding_window": 4096, "tie_word_embeddings": false, "torch_dtype": "bfloat16",
  "transformers_version": "4.34.0.dev0", "use_cache": true, "vocab_size": 32000})";

constexpr const char* kQwen25_15B = R"({
  "architectures": ["Qwen2ForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 151643,
  "eos_token_id": 151643, "hidden_act": "silu", "hidden_size": 1536, "initializer_range": 0.02,
  "intermediate_size": 8960, "max_position_embeddings": 131072, "max_window_layers": 28,
  "model_type": "qwen2", "num_attention_heads": 12, "num_hidden_layers": 28, "num_key_value_heads": 2,
  "rms_norm_eps": 1e-06, "rope_theta": 1000000.0, "sliding_window": 131072, "tie_word_embeddings": true,
  "torch_dtype": "bfloat16", "transformers_version": "4.40.1", "use_cache": true,
  "use_sliding_window": false, "vocab_size": 151936})";

constexpr const char* kQwen3_06B = R"({
  "architectures": ["Qwen3ForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
  "bos_token_id": 151643, "eos_token_id": 151645, "head_dim": 128, "hidden_act": "silu",
  "hidden_size": 1024, "initializer_range": 0.02, "intermediate_size": 3072,
  "max_position_embeddings": 40960, "max_window_layers": 28, "model_type": "qwen3",
  "num_attention_heads": 16, "num_hidden_layers": 28, "num_key_value_heads": 8, "rms_norm_eps": 1e-06,
  "rope_scaling": null, "rope_theta": 1000000, "sliding_window": null, "tie_word_embeddings": true,
  "torch_dtype": "bfloat16", "transformers_version": "4.51.0", "use_cache": true,
  "use_sliding_window": false, "vocab_size": 151936})";

ModelConfig parse_ok(std::string_view text) {
  auto r = parse_model_config(text, "test/config.json");
  EXPECT_TRUE(r.is_ok()) << r.status().to_string();
  return r.is_ok() ? *r : ModelConfig{};
}

void expect_error(std::string_view text, StatusCode code, std::initializer_list<std::string_view> parts) {
  auto r = parse_model_config(text, "test/config.json");
  ASSERT_FALSE(r.is_ok()) << text;
  EXPECT_EQ(r.status().code(), code) << r.status().to_string();
  EXPECT_NE(r.status().message().find("test/config.json"), std::string::npos) << r.status().message();
  for (auto p : parts) EXPECT_NE(r.status().message().find(p), std::string::npos) << r.status().message() << " lacks " << p;
}

TEST(ModelConfig, Llama32_1B) {
  ModelConfig c = parse_ok(kLlama32_1B);
  EXPECT_EQ(c.architecture, Architecture::kLlama);
  EXPECT_EQ(c.vocab_size, 128256);
  EXPECT_EQ(c.hidden_size, 2048);
  EXPECT_EQ(c.intermediate_size, 8192);
  EXPECT_EQ(c.num_layers, 16);
  EXPECT_EQ(c.num_heads, 32);
  EXPECT_EQ(c.num_kv_heads, 8);
  EXPECT_EQ(c.head_dim, 64);
  EXPECT_EQ(c.max_position_embeddings, 131072);
  EXPECT_DOUBLE_EQ(c.rms_norm_eps, 1e-5);
  EXPECT_DOUBLE_EQ(c.rope_theta, 500000.0);
  EXPECT_EQ(c.rope_scaling.type, RopeScalingType::kLlama3);
  EXPECT_DOUBLE_EQ(c.rope_scaling.factor, 32.0);
  EXPECT_DOUBLE_EQ(c.rope_scaling.low_freq_factor, 1.0);
  EXPECT_DOUBLE_EQ(c.rope_scaling.high_freq_factor, 4.0);
  EXPECT_EQ(c.rope_scaling.original_max_position_embeddings, 8192);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_FALSE(c.attention_bias);
  EXPECT_FALSE(c.qk_norm);
  EXPECT_FALSE(c.sliding_window.has_value());
  EXPECT_EQ(c.torch_dtype, DType::kBF16);
  EXPECT_EQ(c.bos_token_ids, std::vector<int32_t>{128000});
  EXPECT_EQ(c.eos_token_ids, std::vector<int32_t>{128001});
  EXPECT_EQ(c.num_parameters(), 1235814400);  // the published count of Llama-3.2-1B
}

TEST(ModelConfig, LlamaDefaultsAreTransformers) {
  ModelConfig c = parse_ok(R"({"model_type": "llama"})");
  EXPECT_EQ(c.vocab_size, 32000);
  EXPECT_EQ(c.hidden_size, 4096);
  EXPECT_EQ(c.intermediate_size, 11008);
  EXPECT_EQ(c.num_layers, 32);
  EXPECT_EQ(c.num_heads, 32);
  EXPECT_EQ(c.num_kv_heads, 32);  // defaults to num_attention_heads
  EXPECT_EQ(c.head_dim, 128);     // hidden_size / num_attention_heads
  EXPECT_EQ(c.max_position_embeddings, 2048);
  EXPECT_DOUBLE_EQ(c.rms_norm_eps, 1e-6);
  EXPECT_DOUBLE_EQ(c.rope_theta, 10000.0);
  EXPECT_EQ(c.rope_scaling.type, RopeScalingType::kNone);
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_EQ(c.bos_token_ids, std::vector<int32_t>{1});
  EXPECT_EQ(c.eos_token_ids, std::vector<int32_t>{2});

  ModelConfig d = parse_ok(R"({"model_type": "llama", "hidden_size": 768, "num_attention_heads": 12,
                               "attention_bias": true, "mlp_bias": true, "eos_token_id": [128001, 128008, 128009],
                               "bos_token_id": null, "dtype": "float32"})");
  EXPECT_EQ(d.num_kv_heads, 12);
  EXPECT_EQ(d.head_dim, 64);
  EXPECT_TRUE(d.attention_bias);
  EXPECT_TRUE(d.attention_out_bias);  // LlamaAttention biases o_proj with the same flag
  EXPECT_TRUE(d.mlp_bias);
  EXPECT_EQ(d.eos_token_ids, (std::vector<int32_t>{128001, 128008, 128009}));
  EXPECT_TRUE(d.bos_token_ids.empty());
  EXPECT_EQ(d.torch_dtype, DType::kF32);
}

TEST(ModelConfig, Mistral7B) {
  ModelConfig c = parse_ok(kMistral7B);
  EXPECT_EQ(c.architecture, Architecture::kMistral);
  EXPECT_EQ(c.num_kv_heads, 8);
  EXPECT_EQ(c.head_dim, 128);
  ASSERT_TRUE(c.sliding_window.has_value());
  EXPECT_EQ(*c.sliding_window, 4096);
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_EQ(c.num_parameters(), 7241732096);  // the published count of Mistral-7B-v0.1

  ModelConfig d = parse_ok(R"({"model_type": "mistral"})");
  EXPECT_EQ(d.num_kv_heads, 8);
  EXPECT_EQ(d.intermediate_size, 14336);
  EXPECT_EQ(d.max_position_embeddings, 131072);
  EXPECT_EQ(d.sliding_window, std::optional<int64_t>(4096));

  ModelConfig v03 = parse_ok(R"({"model_type": "mistral", "sliding_window": null, "rope_theta": 1000000.0})");
  EXPECT_FALSE(v03.sliding_window.has_value());
  EXPECT_DOUBLE_EQ(v03.rope_theta, 1e6);
}

TEST(ModelConfig, Qwen25_1_5B) {
  ModelConfig c = parse_ok(kQwen25_15B);
  EXPECT_EQ(c.architecture, Architecture::kQwen2);
  EXPECT_TRUE(c.attention_bias);
  EXPECT_FALSE(c.attention_out_bias);
  EXPECT_FALSE(c.qk_norm);
  EXPECT_EQ(c.head_dim, 128);
  EXPECT_FALSE(c.sliding_window.has_value());  // use_sliding_window is false
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_EQ(c.num_parameters(), 1543714304);  // the published count of Qwen2.5-1.5B

  ModelConfig d = parse_ok(R"({"model_type": "qwen2", "num_attention_heads": 64})");
  EXPECT_EQ(d.vocab_size, 151936);
  EXPECT_EQ(d.num_kv_heads, 32);  // Qwen2Config's default is 32, not num_attention_heads
  EXPECT_EQ(d.head_dim, 64);
  EXPECT_TRUE(d.bos_token_ids.empty());
  EXPECT_TRUE(d.eos_token_ids.empty());
}

TEST(ModelConfig, Qwen3_0_6B) {
  ModelConfig c = parse_ok(kQwen3_06B);
  EXPECT_EQ(c.architecture, Architecture::kQwen3);
  EXPECT_TRUE(c.qk_norm);
  EXPECT_FALSE(c.attention_bias);
  EXPECT_EQ(c.head_dim, 128);  // not hidden_size / heads (64)
  EXPECT_DOUBLE_EQ(c.rope_theta, 1e6);
  EXPECT_EQ(c.rope_scaling.type, RopeScalingType::kNone);
  EXPECT_EQ(c.num_parameters(), 596049920);  // the published count of Qwen3-0.6B

  ModelConfig d = parse_ok(R"({"model_type": "qwen3", "hidden_size": 1024, "num_attention_heads": 16,
                               "num_key_value_heads": 8})");
  EXPECT_EQ(d.head_dim, 128);  // Qwen3Config's default
  ModelConfig e = parse_ok(R"({"model_type": "qwen3", "hidden_size": 1024, "num_attention_heads": 16,
                               "num_key_value_heads": 8, "head_dim": null})");
  EXPECT_EQ(e.head_dim, 64);
}

TEST(ModelConfig, QwenSlidingWindowOnAllOrNoLayers) {
  ModelConfig all = parse_ok(R"({"model_type": "qwen2", "num_hidden_layers": 4, "use_sliding_window": true,
                                 "sliding_window": 1024, "max_window_layers": 0})");
  EXPECT_EQ(all.sliding_window, std::optional<int64_t>(1024));
  ModelConfig none = parse_ok(R"({"model_type": "qwen2", "num_hidden_layers": 4, "use_sliding_window": true,
                                  "sliding_window": 1024, "max_window_layers": 4})");
  EXPECT_FALSE(none.sliding_window.has_value());
  expect_error(R"({"model_type": "qwen3", "num_hidden_layers": 4, "use_sliding_window": true,
                   "sliding_window": 1024, "max_window_layers": 2})",
               StatusCode::kUnimplemented, {"max_window_layers"});
}

TEST(ModelConfig, RopeScalingTypes) {
  ModelConfig lin = parse_ok(R"({"model_type": "llama", "rope_scaling": {"type": "linear", "factor": 2.0}})");
  EXPECT_EQ(lin.rope_scaling.type, RopeScalingType::kLinear);
  EXPECT_DOUBLE_EQ(lin.rope_scaling.factor, 2.0);

  ModelConfig dyn = parse_ok(R"({"model_type": "llama", "max_position_embeddings": 4096,
                                 "rope_scaling": {"rope_type": "dynamic", "factor": 4}})");
  EXPECT_EQ(dyn.rope_scaling.type, RopeScalingType::kDynamic);
  EXPECT_DOUBLE_EQ(dyn.rope_scaling.factor, 4.0);
  EXPECT_EQ(dyn.rope_scaling.original_max_position_embeddings, 0);  // not given

  ModelConfig yarn = parse_ok(R"({"model_type": "qwen3", "max_position_embeddings": 131072,
      "rope_scaling": {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768}})");
  EXPECT_EQ(yarn.rope_scaling.type, RopeScalingType::kYarn);
  EXPECT_DOUBLE_EQ(yarn.rope_scaling.factor, 4.0);
  EXPECT_EQ(yarn.rope_scaling.original_max_position_embeddings, 32768);
  EXPECT_DOUBLE_EQ(yarn.rope_scaling.beta_fast, 32.0);
  EXPECT_DOUBLE_EQ(yarn.rope_scaling.beta_slow, 1.0);
  EXPECT_FALSE(yarn.rope_scaling.attention_factor.has_value());

  ModelConfig yarn2 = parse_ok(R"({"model_type": "llama", "max_position_embeddings": 8192,
      "rope_scaling": {"type": "yarn", "factor": 8.0, "beta_fast": 16, "beta_slow": 2, "attention_factor": 1.25}})");
  EXPECT_DOUBLE_EQ(yarn2.rope_scaling.beta_fast, 16.0);
  EXPECT_DOUBLE_EQ(yarn2.rope_scaling.beta_slow, 2.0);
  EXPECT_EQ(yarn2.rope_scaling.attention_factor, std::optional<double>(1.25));
  EXPECT_EQ(yarn2.rope_scaling.original_max_position_embeddings, 0);  // not given: factor stays 8

  // DeepSeek-style mscale: attention_factor = (0.1 * 1 * ln 40 + 1) / (0.1 * 0.5 * ln 40 + 1).
  ModelConfig yarn3 = parse_ok(R"({"model_type": "llama",
      "rope_scaling": {"type": "yarn", "factor": 40, "mscale": 1.0, "mscale_all_dim": 0.5}})");
  ASSERT_TRUE(yarn3.rope_scaling.attention_factor.has_value());
  EXPECT_NEAR(*yarn3.rope_scaling.attention_factor, 1.36888 / 1.18444, 1e-4);
  // With both context lengths given, transformers' factor is their ratio (163840 / 4096 = 40).
  ModelConfig yarn4 = parse_ok(R"({"model_type": "llama", "max_position_embeddings": 163840,
      "rope_scaling": {"type": "yarn", "factor": 2, "original_max_position_embeddings": 4096,
                       "mscale": 1.0, "mscale_all_dim": 0.5}})");
  ASSERT_TRUE(yarn4.rope_scaling.attention_factor.has_value());
  EXPECT_NEAR(*yarn4.rope_scaling.attention_factor, 1.36888 / 1.18444, 1e-4);

  ModelConfig deflt = parse_ok(R"({"model_type": "llama", "rope_scaling": {"rope_type": "default"}})");
  EXPECT_EQ(deflt.rope_scaling.type, RopeScalingType::kNone);

  // transformers 5 folds rope_theta into rope_parameters.
  ModelConfig v5 = parse_ok(R"({"model_type": "llama", "rope_parameters": {"rope_type": "linear",
                                "rope_theta": 250000.0, "factor": 2.0}})");
  EXPECT_DOUBLE_EQ(v5.rope_theta, 250000.0);
  EXPECT_EQ(v5.rope_scaling.type, RopeScalingType::kLinear);

  expect_error(R"({"model_type": "llama", "rope_scaling": {"rope_type": "longrope", "factor": 2.0}})",
               StatusCode::kUnimplemented, {"rope_scaling.rope_type", "longrope"});
  expect_error(R"({"model_type": "llama", "rope_scaling": {"rope_type": "llama3", "factor": 8.0,
                   "low_freq_factor": 1.0, "original_max_position_embeddings": 8192}})",
               StatusCode::kInvalidArgument, {"rope_scaling.high_freq_factor", "required"});
  expect_error(R"({"model_type": "llama", "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 4.0,
                   "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}})",
               StatusCode::kInvalidArgument, {"rope_scaling.high_freq_factor"});
  expect_error(R"({"model_type": "llama", "rope_scaling": {"type": "linear"}})", StatusCode::kInvalidArgument,
               {"rope_scaling.factor"});
  expect_error(R"({"model_type": "llama", "rope_scaling": {"type": "linear", "factor": 0}})",
               StatusCode::kInvalidArgument, {"rope_scaling.factor"});
  expect_error(R"({"model_type": "llama", "rope_scaling": {"factor": 2.0}})", StatusCode::kInvalidArgument,
               {"rope_scaling.rope_type"});
  expect_error(R"({"model_type": "llama", "rope_scaling": [1]})", StatusCode::kInvalidArgument, {"rope_scaling"});
}

TEST(ModelConfig, UnknownArchitecture) {
  expect_error(R"({"model_type": "gpt2", "n_embd": 768})", StatusCode::kUnimplemented, {"gpt2", "model_type"});
  expect_error(R"({"hidden_size": 768})", StatusCode::kInvalidArgument, {"model_type", "missing"});
}

TEST(ModelConfig, ImpossibleValues) {
  expect_error(R"({"model_type": "llama", "hidden_size": 0, "head_dim": 64})", StatusCode::kInvalidArgument,
               {"'hidden_size'", "positive"});
  expect_error(R"({"model_type": "llama", "vocab_size": -5})", StatusCode::kInvalidArgument, {"'vocab_size'", "-5"});
  expect_error(R"({"model_type": "llama", "num_hidden_layers": 0})", StatusCode::kInvalidArgument,
               {"'num_hidden_layers'"});
  expect_error(R"({"model_type": "llama", "intermediate_size": -1})", StatusCode::kInvalidArgument,
               {"'intermediate_size'"});
  expect_error(R"({"model_type": "llama", "num_attention_heads": 0})", StatusCode::kInvalidArgument,
               {"'num_attention_heads'"});
  expect_error(R"({"model_type": "llama", "num_attention_heads": 32, "num_key_value_heads": 6})",
               StatusCode::kInvalidArgument, {"'num_key_value_heads'", "divide"});
  expect_error(R"({"model_type": "llama", "hidden_size": 1000, "num_attention_heads": 24})",
               StatusCode::kInvalidArgument, {"'head_dim'", "not divisible"});
  expect_error(R"({"model_type": "llama", "rms_norm_eps": 0})", StatusCode::kInvalidArgument, {"'rms_norm_eps'"});
  expect_error(R"({"model_type": "llama", "rms_norm_eps": -1e-5})", StatusCode::kInvalidArgument, {"'rms_norm_eps'"});
  expect_error(R"({"model_type": "llama", "rope_theta": 0})", StatusCode::kInvalidArgument, {"'rope_theta'"});
  expect_error(R"({"model_type": "llama", "max_position_embeddings": 0})", StatusCode::kInvalidArgument,
               {"'max_position_embeddings'"});
  expect_error(R"({"model_type": "mistral", "sliding_window": 0})", StatusCode::kInvalidArgument, {"'sliding_window'"});
  expect_error(R"({"model_type": "llama", "head_dim": 63, "hidden_size": 2016})", StatusCode::kInvalidArgument,
               {"'head_dim'", "even"});
  expect_error(R"({"model_type": "llama", "vocab_size": 1e12, "hidden_size": 1e9, "num_attention_heads": 1, "head_dim": 2})",
               StatusCode::kInvalidArgument, {"'vocab_size'"});
  expect_error(R"({"model_type": "llama", "hidden_size": "4096"})", StatusCode::kInvalidArgument,
               {"'hidden_size'", "integer"});
  expect_error(R"({"model_type": "llama", "hidden_size": 4096.5})", StatusCode::kInvalidArgument, {"'hidden_size'"});
  expect_error(R"({"model_type": "llama", "tie_word_embeddings": 1})", StatusCode::kInvalidArgument,
               {"'tie_word_embeddings'"});
  expect_error(R"({"model_type": "llama", "eos_token_id": [2, -1]})", StatusCode::kInvalidArgument, {"'eos_token_id'"});
  expect_error(R"({"model_type": "llama", "hidden_act": "gelu"})", StatusCode::kUnimplemented, {"'hidden_act'", "gelu"});
  expect_error(R"({"model_type": "llama", "torch_dtype": "float8_e4m3fn"})", StatusCode::kUnimplemented,
               {"'torch_dtype'"});
  expect_error(R"({"model_type": "llama", )", StatusCode::kInvalidArgument, {"not valid JSON"});
  expect_error(R"([1, 2])", StatusCode::kInvalidArgument, {"object"});
}

TEST(ModelConfig, SerializeRoundTripsEveryArchitecture) {
  for (const char* text : {kLlama32_1B, kMistral7B, kQwen25_15B, kQwen3_06B}) {
    ModelConfig c = parse_ok(text);
    std::string out = model_config_to_json(c);
    ModelConfig back = parse_ok(out);
    EXPECT_EQ(back.architecture, c.architecture);
    EXPECT_EQ(back.vocab_size, c.vocab_size);
    EXPECT_EQ(back.hidden_size, c.hidden_size);
    EXPECT_EQ(back.intermediate_size, c.intermediate_size);
    EXPECT_EQ(back.num_layers, c.num_layers);
    EXPECT_EQ(back.num_heads, c.num_heads);
    EXPECT_EQ(back.num_kv_heads, c.num_kv_heads);
    EXPECT_EQ(back.head_dim, c.head_dim);
    EXPECT_EQ(back.max_position_embeddings, c.max_position_embeddings);
    EXPECT_DOUBLE_EQ(back.rms_norm_eps, c.rms_norm_eps);
    EXPECT_DOUBLE_EQ(back.rope_theta, c.rope_theta);
    EXPECT_EQ(back.rope_scaling.type, c.rope_scaling.type);
    EXPECT_DOUBLE_EQ(back.rope_scaling.factor, c.rope_scaling.factor);
    EXPECT_EQ(back.rope_scaling.original_max_position_embeddings, c.rope_scaling.original_max_position_embeddings);
    EXPECT_EQ(back.attention_bias, c.attention_bias);
    EXPECT_EQ(back.attention_out_bias, c.attention_out_bias);
    EXPECT_EQ(back.qk_norm, c.qk_norm);
    EXPECT_EQ(back.tie_word_embeddings, c.tie_word_embeddings);
    EXPECT_EQ(back.sliding_window, c.sliding_window);
    EXPECT_EQ(back.torch_dtype, c.torch_dtype);
    EXPECT_EQ(back.bos_token_ids, c.bos_token_ids);
    EXPECT_EQ(back.eos_token_ids, c.eos_token_ids);
    EXPECT_NE(out.find(str_cat("\"architectures\": [\n    \"", architecture_hf_class(c.architecture), "\"")),
              std::string::npos)
        << out;
  }
  ModelConfig qwen2 = parse_ok(kQwen25_15B);
  qwen2.sliding_window = 2048;
  ModelConfig back = parse_ok(model_config_to_json(qwen2));
  EXPECT_EQ(back.sliding_window, std::optional<int64_t>(2048));
}

TEST(GenerationConfig, ParsesAndValidates) {
  auto g = parse_generation_config(R"({"bos_token_id": 128000, "do_sample": true, "eos_token_id": [128001, 128008, 128009],
                                       "temperature": 0.6, "top_p": 0.9, "top_k": 20, "min_p": 0.0,
                                       "repetition_penalty": 1.05, "max_new_tokens": 256,
                                       "transformers_version": "4.45.0.dev0"})");
  ASSERT_TRUE(g.is_ok()) << g.status().to_string();
  EXPECT_EQ(g->bos_token_id, std::optional<int32_t>(128000));
  EXPECT_EQ(g->eos_token_ids, (std::vector<int32_t>{128001, 128008, 128009}));
  EXPECT_EQ(g->do_sample, std::optional<bool>(true));
  EXPECT_EQ(g->temperature, std::optional<double>(0.6));
  EXPECT_EQ(g->top_p, std::optional<double>(0.9));
  EXPECT_EQ(g->top_k, std::optional<int64_t>(20));
  EXPECT_EQ(g->min_p, std::optional<double>(0.0));
  EXPECT_EQ(g->repetition_penalty, std::optional<double>(1.05));
  EXPECT_EQ(g->max_new_tokens, std::optional<int64_t>(256));

  auto round = parse_generation_config(generation_config_to_json(*g));
  ASSERT_TRUE(round.is_ok());
  EXPECT_EQ(round->eos_token_ids, g->eos_token_ids);
  EXPECT_EQ(round->temperature, g->temperature);
  EXPECT_EQ(round->top_k, g->top_k);

  auto single = parse_generation_config(R"({"eos_token_id": 2, "temperature": null})");
  ASSERT_TRUE(single.is_ok());
  EXPECT_EQ(single->eos_token_ids, std::vector<int32_t>{2});
  EXPECT_FALSE(single->temperature.has_value());
  EXPECT_FALSE(single->bos_token_id.has_value());

  for (const char* bad : {R"({"top_p": 0})", R"({"top_p": 1.5})", R"({"temperature": -1})", R"({"top_k": -2})",
                          R"({"min_p": 2})", R"({"repetition_penalty": 0})", R"({"max_new_tokens": 0})",
                          R"({"do_sample": "yes"})", R"({"eos_token_id": "x"})"}) {
    auto r = parse_generation_config(bad, "g.json");
    ASSERT_FALSE(r.is_ok()) << bad;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    std::string field = std::string(bad).substr(2, std::string(bad).find('"', 2) - 2);
    EXPECT_NE(r.status().message().find("'" + field + "'"), std::string::npos) << r.status().message();
    EXPECT_NE(r.status().message().find("g.json"), std::string::npos);
  }
}

TEST(GenerationConfig, LoadIsOptional) {
  auto dir = std::filesystem::temp_directory_path() / ("kiln_gen_cfg_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto empty = load_generation_config(dir);
  ASSERT_TRUE(empty.is_ok());
  EXPECT_TRUE(empty->eos_token_ids.empty());
  ASSERT_TRUE(write_file_atomic(dir / "generation_config.json", "{\"eos_token_id\": [1, 2]").is_ok());
  auto broken = load_generation_config(dir);
  ASSERT_FALSE(broken.is_ok());
  EXPECT_NE(broken.status().message().find("generation_config.json"), std::string::npos);
  ASSERT_TRUE(write_file_atomic(dir / "config.json", kMistral7B).is_ok());
  auto cfg = load_model_config(dir);
  ASSERT_TRUE(cfg.is_ok());
  EXPECT_EQ(cfg->architecture, Architecture::kMistral);
  auto missing = load_model_config(dir / "nope");
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace kiln::model
