// Model shapes for `kiln make-model`. The real ones carry the values of the published config.json
// files; the tiny ones are small enough for unit tests yet keep each family's features.
#include "kiln/core/str.h"
#include "kiln/model/make_model.h"

namespace kiln::model {
namespace {

struct Shape {
  int64_t vocab, hidden, intermediate, layers, heads, kv_heads, head_dim, max_pos;
  double eps, theta;
  bool tied;
};

ModelConfig make(Architecture a, const Shape& s) {
  ModelConfig c;
  c.architecture = a;
  c.vocab_size = s.vocab;
  c.hidden_size = s.hidden;
  c.intermediate_size = s.intermediate;
  c.num_layers = s.layers;
  c.num_heads = s.heads;
  c.num_kv_heads = s.kv_heads;
  c.head_dim = s.head_dim;
  c.max_position_embeddings = s.max_pos;
  c.rms_norm_eps = s.eps;
  c.rope_theta = s.theta;
  c.tie_word_embeddings = s.tied;
  c.attention_bias = a == Architecture::kQwen2;
  c.qk_norm = a == Architecture::kQwen3;
  c.torch_dtype = DType::kBF16;
  return c;
}

RopeScaling llama3_scaling(double factor) {
  RopeScaling r;
  r.type = RopeScalingType::kLlama3;
  r.factor = factor;
  r.low_freq_factor = 1.0;
  r.high_freq_factor = 4.0;
  r.original_max_position_embeddings = 8192;
  return r;
}

ModelConfig moe(Architecture a, const Shape& s, int64_t experts, int64_t top_k, int64_t expert_width, bool norm_topk) {
  ModelConfig c = make(a, s);
  c.qk_norm = a == Architecture::kQwen3Moe;
  c.num_experts = experts;
  c.num_experts_per_tok = top_k;
  c.moe_intermediate_size = expert_width;
  c.norm_topk_prob = norm_topk;
  return c;
}

// Gemma 3: `pattern` - 1 sliding layers of `window` tokens before each global one.
ModelConfig gemma3(const Shape& s, int64_t window, int64_t pattern, double query_pre_attn_scalar) {
  ModelConfig c = make(Architecture::kGemma3, s);
  c.qk_norm = true;
  c.gelu_mlp = true;
  c.rope_local_theta = 10000.0;
  c.query_pre_attn_scalar = query_pre_attn_scalar;
  c.sliding_window = window;
  for (int64_t i = 0; i < s.layers; ++i) c.sliding_layers.push_back((i + 1) % pattern != 0);
  return c;
}

std::vector<Preset> moe_and_gemma_presets() {
  std::vector<Preset> p;
  p.push_back({"qwen3-30b-a3b", "Qwen3-30B-A3B shapes (128 experts, top-8, normalised routing, q/k norms)", "qwen3",
               moe(Architecture::kQwen3Moe, {151936, 2048, 6144, 48, 32, 4, 128, 40960, 1e-6, 1000000.0, false}, 128, 8,
                   768, true)});
  p.push_back({"mixtral-8x7b", "Mixtral 8x7B v0.1 shapes (8 experts, top-2)", "llama2",
               moe(Architecture::kMixtral, {32000, 4096, 14336, 32, 32, 8, 128, 32768, 1e-5, 1000000.0, false}, 8, 2,
                   14336, true)});
  // The Gemma 3 tokenizer kiln ships has 262145 ids (the image token is 262144): the 1B's vocabulary
  // of 262144 rows is padded to the 4B's 262208 so that every id embeds.
  p.push_back({"gemma3-1b", "Gemma 3 1B shapes (5 local layers of 512 tokens per global one, tied embeddings; "
               "vocabulary 262208 as the 4B's)",
               "gemma3", gemma3({262208, 1152, 6912, 26, 4, 1, 256, 32768, 1e-6, 1000000.0, true}, 512, 6, 256)});
  {
    ModelConfig c = gemma3({262208, 2560, 10240, 34, 8, 4, 256, 131072, 1e-6, 1000000.0, true}, 1024, 6, 256);
    c.rope_scaling.type = RopeScalingType::kLinear;
    c.rope_scaling.factor = 8.0;
    p.push_back({"gemma3-4b", "Gemma 3 4B text model shapes (window 1024, linear RoPE scaling 8 on global layers)",
                 "gemma3", c});
  }
  // Layer 1 is dense (mlp_only_layers) and the top-k is not renormalised: the branches the real
  // shape does not take (mixtral's fixture covers the renormalised routing).
  {
    ModelConfig c = moe(Architecture::kQwen3Moe, {151936, 64, 128, 3, 4, 2, 16, 40960, 1e-6, 1000000.0, false}, 8, 3,
                        32, false);
    c.mlp_only_layers = {1};
    p.push_back({"tiny-qwen3-moe", "3-layer qwen3_moe for tests (8 experts, top-3, layer 1 dense)", "qwen3", c});
  }
  p.push_back({"tiny-mixtral", "2-layer mixtral for tests (4 experts, top-2)", "llama2",
               moe(Architecture::kMixtral, {32000, 64, 96, 2, 4, 2, 16, 32768, 1e-5, 1000000.0, false}, 4, 2, 96,
                   true)});
  {
    // A window of 5 and a query scalar unlike head_dim, so that a 12-token prompt tells them apart;
    // logit soft-capping (null in the real Gemma 3 configs) is on to test it.
    ModelConfig c = gemma3({262208, 64, 128, 3, 4, 2, 16, 32768, 1e-6, 1000000.0, true}, 5, 3, 24);
    c.rope_scaling.type = RopeScalingType::kLinear;
    c.rope_scaling.factor = 8.0;
    c.final_logit_softcapping = 2.0;
    p.push_back({"tiny-gemma3", "3-layer gemma3 for tests (2 local layers of 5 tokens, then a global one)", "gemma3",
                 c});
  }
  return p;
}

std::vector<Preset> build() {
  std::vector<Preset> p;
  {
    ModelConfig c = make(Architecture::kLlama, {128256, 2048, 8192, 16, 32, 8, 64, 131072, 1e-5, 500000.0, true});
    c.rope_scaling = llama3_scaling(32.0);
    p.push_back({"llama-3.2-1b", "Llama 3.2 1B shapes (tied embeddings, llama3 rope scaling)", "llama3", c});
  }
  {
    ModelConfig c = make(Architecture::kLlama, {128256, 4096, 14336, 32, 32, 8, 128, 131072, 1e-5, 500000.0, false});
    c.rope_scaling = llama3_scaling(8.0);
    p.push_back({"llama-3.1-8b", "Llama 3.1 8B shapes (llama3 rope scaling)", "llama3", c});
  }
  p.push_back({"qwen3-0.6b", "Qwen3 0.6B shapes (q/k norms, head_dim 128, tied embeddings)", "qwen3",
               make(Architecture::kQwen3, {151936, 1024, 3072, 28, 16, 8, 128, 40960, 1e-6, 1000000.0, true})});
  p.push_back({"qwen2.5-1.5b", "Qwen2.5 1.5B shapes (q/k/v biases, tied embeddings)", "qwen3",
               make(Architecture::kQwen2, {151936, 1536, 8960, 28, 12, 2, 128, 131072, 1e-6, 1000000.0, true})});
  {
    ModelConfig c = make(Architecture::kMistral, {32000, 4096, 14336, 32, 32, 8, 128, 32768, 1e-5, 10000.0, false});
    c.sliding_window = 4096;
    p.push_back({"mistral-7b", "Mistral 7B v0.1 shapes (sliding window 4096)", "llama2", c});
  }
  {
    ModelConfig c = make(Architecture::kLlama, {128256, 64, 128, 2, 4, 2, 16, 131072, 1e-5, 500000.0, false});
    c.rope_scaling = llama3_scaling(8.0);
    p.push_back({"tiny-llama", "2-layer llama for tests (llama3 rope scaling, separate lm_head)", "llama3", c});
  }
  {
    ModelConfig c = make(Architecture::kMistral, {32000, 64, 128, 2, 4, 2, 16, 32768, 1e-5, 10000.0, false});
    c.sliding_window = 32;
    p.push_back({"tiny-mistral", "2-layer mistral for tests (sliding window 32)", "llama2", c});
  }
  p.push_back({"tiny-qwen2", "2-layer qwen2 for tests (q/k/v biases, tied embeddings)", "qwen3",
               make(Architecture::kQwen2, {151936, 64, 128, 2, 4, 2, 16, 32768, 1e-6, 1000000.0, true})});
  p.push_back({"tiny-qwen3", "2-layer qwen3 for tests (q/k norms, tied embeddings)", "qwen3",
               make(Architecture::kQwen3, {151936, 64, 128, 2, 4, 2, 16, 40960, 1e-6, 1000000.0, true})});
  {
    // Qwen3-Embedding and Qwen3-Reranker are Qwen3 decoders; only their files differ.
    const ModelConfig c = make(Architecture::kQwen3, {151936, 64, 128, 2, 4, 2, 16, 40960, 1e-6, 1000000.0, true});
    p.push_back({"tiny-qwen3-embedding", "2-layer Qwen3-Embedding shape for tests (sentence-transformers files, "
                 "last-token pooling, normalised)", "qwen3", c, ModelKind::kEmbed});
    p.push_back({"tiny-qwen3-reranker", "2-layer Qwen3-Reranker shape for tests (yes/no logits of the last token)",
                 "qwen3", c, ModelKind::kRerank});
  }
  for (const Preset& x : moe_and_gemma_presets()) p.push_back(x);
  p.push_back({"bench-100m", "~100M-parameter llama for benchmarks (llama2 tokenizer, tied embeddings)", "llama2",
               make(Architecture::kLlama, {32000, 768, 2048, 12, 12, 4, 64, 4096, 1e-5, 10000.0, true})});
  return p;
}

}  // namespace

const std::vector<Preset>& presets() {
  static const std::vector<Preset> kPresets = build();
  return kPresets;
}

Result<ModelConfig> preset_config(std::string_view name) {
  std::string names;
  for (const Preset& p : presets()) {
    if (p.name == name) return p.config;
    names += str_cat(names.empty() ? "" : ", ", p.name);
  }
  return not_found(str_cat("unknown preset '", name, "'; presets: ", names));
}

}  // namespace kiln::model
