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
#include "kiln/model/fp8_format.h"

namespace kiln::model {

// The decoder families kiln runs. All four are pre-norm decoders with RMSNorm, GQA, RoPE and a
// SwiGLU MLP; they differ only in the flags of ModelConfig (bias, qk-norm, sliding window).
enum class Architecture { kLlama, kMistral, kQwen2, kQwen3 };

std::string_view architecture_name(Architecture a);  // "llama", "mistral", "qwen2", "qwen3"
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
  DType torch_dtype = DType::kBF16;  // the checkpoint's declared dtype
  std::vector<int32_t> bos_token_ids;
  std::vector<int32_t> eos_token_ids;
  QuantizationConfig quantization;  // config.json's quantization_config (FP8 checkpoints)

  int64_t q_size() const { return num_heads * head_dim; }
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
