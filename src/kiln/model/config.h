// A model's architecture and shape, read from a Hugging Face config.json.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/core/dtype.h"
#include "kiln/core/status.h"

namespace kiln::model {

// The decoder families kiln runs. All are pre-norm decoders with RMSNorm, GQA and RoPE; they differ
// in the flags of ModelConfig: biases, qk-norm, sliding windows, a mixture-of-experts MLP
// (qwen3_moe, mixtral), Gemma 3's sandwich norms, GeGLU and scaled embeddings (docs/models.md).
enum class Architecture { kLlama, kMistral, kQwen2, kQwen3, kQwen3Moe, kMixtral, kGemma3 };

// "llama", "mistral", "qwen2", "qwen3", "qwen3_moe", "mixtral", "gemma3_text"
std::string_view architecture_name(Architecture a);
// The config.json `model_type` of each, and its `architectures[0]` class name.
std::string_view architecture_hf_class(Architecture a);  // "LlamaForCausalLM", ...
bool parse_architecture(std::string_view model_type, Architecture* out);

enum class RopeScalingType { kNone, kLinear, kDynamic, kYarn, kLlama3 };

struct RopeScaling {
  RopeScalingType type = RopeScalingType::kNone;
  double factor = 1.0;
  // llama3
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  // llama3 (required), yarn and dynamic (optional): 0 when config.json does not give it. yarn
  // then uses max_position_embeddings as the original length and `factor` as given.
  int64_t original_max_position_embeddings = 0;
  // yarn
  double beta_fast = 32.0;
  double beta_slow = 1.0;
  // yarn "attention_factor"; when absent but "mscale" and "mscale_all_dim" are given, the parser
  // derives it from them as transformers does; otherwise the runtime derives it from `factor`.
  std::optional<double> attention_factor;
};

struct ModelConfig {
  Architecture architecture = Architecture::kLlama;
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_layers = 0;            // num_hidden_layers
  int64_t num_heads = 0;             // num_attention_heads
  int64_t num_kv_heads = 0;          // num_key_value_heads (defaults to num_heads)
  int64_t head_dim = 0;              // defaults to hidden_size / num_heads
  int64_t max_position_embeddings = 0;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  bool attention_bias = false;       // q/k/v projections have biases (qwen2; llama's attention_bias)
  bool attention_out_bias = false;   // o_proj has a bias too (llama's and qwen3's attention_bias; never qwen2)
  bool mlp_bias = false;             // llama's mlp_bias
  bool qk_norm = false;              // per-head RMSNorm on q and k before RoPE (qwen3)
  bool tie_word_embeddings = false;  // lm_head shares embed_tokens
  std::optional<int64_t> sliding_window;  // attention sees at most this many past tokens
  // Which layers use the window (Gemma 3's layer_types: true = "sliding_attention"); empty: all
  // layers do when sliding_window is set.
  std::vector<bool> sliding_layers;
  // Mixture of experts (qwen3_moe, mixtral): num_experts > 0. A layer is sparse unless it is in
  // mlp_only_layers or (layer + 1) % decoder_sparse_step != 0; dense layers use intermediate_size.
  int64_t num_experts = 0;              // num_experts / num_local_experts
  int64_t num_experts_per_tok = 0;      // top-k
  int64_t moe_intermediate_size = 0;    // each expert's SwiGLU width (mixtral: intermediate_size)
  bool norm_topk_prob = false;          // renormalise the top-k probabilities (always on for mixtral)
  int64_t decoder_sparse_step = 1;
  std::vector<int64_t> mlp_only_layers;
  // Gemma 3: GeGLU (gelu tanh) MLP, (1 + weight) RMSNorms, post-attention and pre/post-feedforward
  // norms, embeddings times sqrt(hidden_size); RoPE base rope_local_theta (unscaled) on sliding layers.
  bool gelu_mlp = false;
  double rope_local_theta = 10000.0;
  std::optional<double> query_pre_attn_scalar;    // attention scale = its -1/2 power (else head_dim's)
  std::optional<double> final_logit_softcapping;  // logits = cap * tanh(logits / cap)
  DType torch_dtype = DType::kBF16;  // the checkpoint's declared dtype
  std::vector<int32_t> bos_token_ids;
  std::vector<int32_t> eos_token_ids;

  int64_t q_size() const { return num_heads * head_dim; }
  bool is_moe() const { return num_experts > 0; }
  bool is_gemma() const { return architecture == Architecture::kGemma3; }
  bool layer_is_sparse(int64_t layer) const;
  // The window of layer `layer` (0: none).
  int64_t layer_window(int64_t layer) const;
  float attention_scale() const;
  int64_t kv_size() const { return num_kv_heads * head_dim; }
  // Parameters, counting a tied lm_head once.
  int64_t num_parameters() const;
};

// Parses config.json text. `source` names the file in error messages.
Result<ModelConfig> parse_model_config(std::string_view json_text, std::string_view source = "config.json");
Result<ModelConfig> load_model_config(const std::filesystem::path& model_dir);
// Writes config.json text as Hugging Face transformers would, for `kiln make-model`.
std::string model_config_to_json(const ModelConfig& config);
// Checks that every field is possible (positive sizes, heads divide, ...); names the bad field.
Status validate_model_config(const ModelConfig& config, std::string_view source = "config.json");

// generation_config.json: the model's defaults for sampling and its stop tokens.
struct GenerationConfig {
  std::vector<int32_t> eos_token_ids;
  std::optional<int32_t> bos_token_id;
  std::optional<double> temperature;
  std::optional<double> top_p;
  std::optional<int64_t> top_k;
  std::optional<double> min_p;
  std::optional<double> repetition_penalty;
  std::optional<bool> do_sample;
  std::optional<int64_t> max_new_tokens;
};

Result<GenerationConfig> parse_generation_config(std::string_view json_text,
                                                 std::string_view source = "generation_config.json");
// Missing file -> empty GenerationConfig (it is optional); a malformed one is an error.
Result<GenerationConfig> load_generation_config(const std::filesystem::path& model_dir);
std::string generation_config_to_json(const GenerationConfig& config);

}  // namespace kiln::model
