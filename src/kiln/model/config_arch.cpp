// config.json fields of the mixture-of-experts families (Qwen3MoeConfig, MixtralConfig) and of
// Gemma3TextConfig, with transformers' defaults.
#include <algorithm>
#include <cmath>

#include "kiln/model/config.h"
#include "kiln/model/config_internal.h"

namespace kiln::model {

bool ModelConfig::layer_is_sparse(int64_t layer) const {
  if (num_experts <= 0 || decoder_sparse_step <= 0) return false;
  if (std::find(mlp_only_layers.begin(), mlp_only_layers.end(), layer) != mlp_only_layers.end()) return false;
  return (layer + 1) % decoder_sparse_step == 0;
}

int64_t ModelConfig::layer_window(int64_t layer) const {
  if (!sliding_window) return 0;
  if (!sliding_layers.empty() && (layer < 0 || layer >= static_cast<int64_t>(sliding_layers.size()) ||
                                  !sliding_layers[static_cast<size_t>(layer)]))
    return 0;
  return *sliding_window;
}

float ModelConfig::attention_scale() const {
  const double d = query_pre_attn_scalar ? *query_pre_attn_scalar : static_cast<double>(head_dim);
  return static_cast<float>(1.0 / std::sqrt(d));
}

namespace internal {
namespace {

// Gemma 3's default pattern: every `pattern`-th layer (counting from 1) is global.
std::vector<bool> sliding_pattern(int64_t layers, int64_t pattern) {
  std::vector<bool> out(static_cast<size_t>(std::max<int64_t>(layers, 0)));
  for (int64_t i = 0; i < layers; ++i) out[static_cast<size_t>(i)] = pattern <= 0 || (i + 1) % pattern != 0;
  return out;
}

}  // namespace

void set_arch_defaults(ModelConfig* c) {
  switch (c->architecture) {
    case Architecture::kQwen3Moe:  // Qwen3MoeConfig
      c->vocab_size = 151936;
      c->hidden_size = 2048;
      c->intermediate_size = 6144;
      c->num_layers = 24;
      c->num_heads = 32;
      c->num_kv_heads = 4;
      c->max_position_embeddings = 32768;
      c->num_experts = 128;
      c->num_experts_per_tok = 8;
      c->moe_intermediate_size = 768;
      c->norm_topk_prob = false;
      break;
    case Architecture::kMixtral:  // MixtralConfig
      c->vocab_size = 32000;
      c->intermediate_size = 14336;
      c->num_kv_heads = 8;
      c->max_position_embeddings = 4096 * 32;
      c->rms_norm_eps = 1e-5;
      c->rope_theta = 1e6;
      c->num_experts = 8;
      c->num_experts_per_tok = 2;
      c->norm_topk_prob = true;  // MixtralSparseMoeBlock always renormalises its top-k
      c->bos_token_ids = {1};
      c->eos_token_ids = {2};
      break;
    case Architecture::kGemma3:  // Gemma3TextConfig
      c->vocab_size = 262208;
      c->hidden_size = 2304;
      c->intermediate_size = 9216;
      c->num_layers = 26;
      c->num_heads = 8;
      c->num_kv_heads = 4;
      c->head_dim = 256;
      c->max_position_embeddings = 131072;
      c->rope_theta = 1e6;
      c->rope_local_theta = 10000.0;
      c->query_pre_attn_scalar = 256;
      c->sliding_window = 4096;
      c->tie_word_embeddings = true;
      c->qk_norm = true;
      c->gelu_mlp = true;
      c->bos_token_ids = {2};
      c->eos_token_ids = {1};
      break;
    default:
      break;
  }
}

Status parse_moe_fields(const Fields& f, ModelConfig* c) {
  if (c->architecture == Architecture::kMixtral) {
    KILN_RETURN_IF_ERROR(f.get_int("num_local_experts", &c->num_experts));
    KILN_RETURN_IF_ERROR(f.get_int("num_experts_per_tok", &c->num_experts_per_tok));
    c->moe_intermediate_size = c->intermediate_size;  // every Mixtral layer is sparse
    return Status::ok();
  }
  KILN_RETURN_IF_ERROR(f.get_int("num_experts", &c->num_experts));
  KILN_RETURN_IF_ERROR(f.get_int("num_experts_per_tok", &c->num_experts_per_tok));
  KILN_RETURN_IF_ERROR(f.get_int("moe_intermediate_size", &c->moe_intermediate_size));
  KILN_RETURN_IF_ERROR(f.get_bool("norm_topk_prob", &c->norm_topk_prob));
  KILN_RETURN_IF_ERROR(f.get_int("decoder_sparse_step", &c->decoder_sparse_step));
  if (f.present("mlp_only_layers")) {
    const json& v = f.value("mlp_only_layers");
    if (!v.is_array()) return f.error("mlp_only_layers", str_cat("must be a list of layer indices, got ", v.dump()));
    c->mlp_only_layers.clear();
    for (const json& x : v) {
      if (!x.is_number_integer())
        return f.error("mlp_only_layers", str_cat("must be a list of layer indices, got ", v.dump()));
      c->mlp_only_layers.push_back(x.get<int64_t>());
    }
  }
  return Status::ok();
}

Status parse_gemma3_activation(const Fields& f, std::string_view source) {
  std::string act = "gelu_pytorch_tanh";
  KILN_RETURN_IF_ERROR(f.get_string(f.present("hidden_activation") ? "hidden_activation" : "hidden_act", &act));
  if (act != "gelu_pytorch_tanh")
    return unimplemented(str_cat(source, ": field 'hidden_activation' is '", act,
                                 "'; kiln's Gemma 3 MLP is GeGLU with the tanh GELU (gelu_pytorch_tanh)"));
  return Status::ok();
}

Status parse_gemma3_fields(const json& j, const Fields& f, ModelConfig* c) {
  c->qk_norm = true;
  c->gelu_mlp = true;
  KILN_RETURN_IF_ERROR(f.get_bool("attention_bias", &c->attention_bias));
  c->attention_out_bias = c->attention_bias;
  KILN_RETURN_IF_ERROR(f.get_optional_double("query_pre_attn_scalar", &c->query_pre_attn_scalar));
  KILN_RETURN_IF_ERROR(f.get_optional_double("final_logit_softcapping", &c->final_logit_softcapping));
  if (f.present("attn_logit_softcapping"))
    return Status(StatusCode::kUnimplemented,
                  f.error("attn_logit_softcapping", "is set; kiln's attention has no logit soft-capping (Gemma 3 "
                                                    "sets it to null)")
                      .message());
  KILN_RETURN_IF_ERROR(f.get_double("rope_local_base_freq", &c->rope_local_theta));
  if (j.contains("rope_parameters") && j.at("rope_parameters").is_object() &&
      j.at("rope_parameters").contains("sliding_attention")) {
    const json& local = j.at("rope_parameters").at("sliding_attention");
    const Fields lf(local, "config.json", "rope_parameters.sliding_attention.");
    std::string type = "default";
    KILN_RETURN_IF_ERROR(lf.get_string(lf.present("rope_type") ? "rope_type" : "type", &type));
    if (type != "default")
      return Status(StatusCode::kUnimplemented,
                    lf.error("rope_type", str_cat("is '", type, "'; kiln's local RoPE is unscaled")).message());
    KILN_RETURN_IF_ERROR(lf.get_double("rope_theta", &c->rope_local_theta));
  }
  if (j.contains("sliding_window")) {
    if (j.at("sliding_window").is_null()) c->sliding_window.reset();
    else {
      int64_t w = 0;
      KILN_RETURN_IF_ERROR(f.get_int("sliding_window", &w));
      c->sliding_window = w;
    }
  }
  if (f.present("layer_types")) {
    const json& v = f.value("layer_types");
    if (!v.is_array()) return f.error("layer_types", str_cat("must be a list, got ", v.dump()));
    c->sliding_layers.clear();
    for (const json& t : v) {
      if (t == "sliding_attention") c->sliding_layers.push_back(true);
      else if (t == "full_attention") c->sliding_layers.push_back(false);
      else return f.error("layer_types", str_cat("holds ", t.dump(), "; expected \"sliding_attention\" or \"full_attention\""));
    }
  } else {
    int64_t pattern = 6;
    KILN_RETURN_IF_ERROR(f.get_int("sliding_window_pattern", &pattern));
    if (pattern <= 0) return f.error("sliding_window_pattern", str_cat("is ", pattern, "; it must be positive"));
    c->sliding_layers = sliding_pattern(c->num_layers, pattern);
  }
  return Status::ok();
}

Status validate_arch_fields(const ModelConfig& c, std::string_view source) {
  auto bad = [&](std::string_view field, auto value, std::string_view what) {
    return invalid_argument(str_cat(source, ": field '", field, "' is ", value, "; ", what));
  };
  const bool moe_family = c.architecture == Architecture::kQwen3Moe || c.architecture == Architecture::kMixtral;
  if (moe_family) {
    // 1 << 14 experts keeps the router's [tokens, experts] logits small; real models have <= 512.
    if (c.num_experts <= 0 || c.num_experts > (1 << 14))
      return bad("num_experts", c.num_experts, "it must be in [1, 16384]");
    if (c.num_experts_per_tok <= 0 || c.num_experts_per_tok > c.num_experts)
      return bad("num_experts_per_tok", c.num_experts_per_tok, str_cat("it must be in [1, num_experts = ", c.num_experts, "]"));
    if (c.moe_intermediate_size <= 0 || c.moe_intermediate_size > (int64_t{1} << 31))
      return bad("moe_intermediate_size", c.moe_intermediate_size, "it must be positive");
    if (c.decoder_sparse_step <= 0) return bad("decoder_sparse_step", c.decoder_sparse_step, "it must be positive");
    for (int64_t l : c.mlp_only_layers)
      if (l < 0 || l >= c.num_layers) return bad("mlp_only_layers", l, str_cat("a layer index must be in [0, ", c.num_layers, ")"));
  } else if (c.num_experts != 0) {
    return bad("num_experts", c.num_experts, "only qwen3_moe and mixtral have experts");
  }
  if (!c.sliding_layers.empty() && static_cast<int64_t>(c.sliding_layers.size()) != c.num_layers)
    return bad("layer_types", str_cat(c.sliding_layers.size(), " entries"), str_cat("it needs one per layer (", c.num_layers, ")"));
  if (c.query_pre_attn_scalar && !(*c.query_pre_attn_scalar > 0 && std::isfinite(*c.query_pre_attn_scalar)))
    return bad("query_pre_attn_scalar", *c.query_pre_attn_scalar, "it must be positive");
  if (c.final_logit_softcapping && !(*c.final_logit_softcapping > 0 && std::isfinite(*c.final_logit_softcapping)))
    return bad("final_logit_softcapping", *c.final_logit_softcapping, "it must be positive (or null)");
  if (!(c.rope_local_theta > 0) || !std::isfinite(c.rope_local_theta))
    return bad("rope_local_base_freq", c.rope_local_theta, "it must be positive");
  if (c.gelu_mlp != c.is_gemma()) return bad("hidden_activation", c.gelu_mlp ? "gelu" : "silu", "only gemma3 uses GeGLU");
  return Status::ok();
}

void arch_fields_to_json(const ModelConfig& c, json* out) {
  json& j = *out;
  switch (c.architecture) {
    case Architecture::kQwen3Moe:
      j["num_experts"] = c.num_experts;
      j["num_experts_per_tok"] = c.num_experts_per_tok;
      j["moe_intermediate_size"] = c.moe_intermediate_size;
      j["norm_topk_prob"] = c.norm_topk_prob;
      j["decoder_sparse_step"] = c.decoder_sparse_step;
      j["mlp_only_layers"] = c.mlp_only_layers;
      j["output_router_logits"] = false;
      j["router_aux_loss_coef"] = 0.001;
      break;
    case Architecture::kMixtral:
      j["num_local_experts"] = c.num_experts;
      j["num_experts_per_tok"] = c.num_experts_per_tok;
      j["output_router_logits"] = false;
      j["router_aux_loss_coef"] = 0.02;
      j["router_jitter_noise"] = 0.0;
      break;
    case Architecture::kGemma3: {
      j["attention_bias"] = c.attention_bias;
      // transformers' Gemma3TextConfig declares an int: a whole value is written as one.
      if (!c.query_pre_attn_scalar) {
        j["query_pre_attn_scalar"] = nullptr;
      } else if (const double q = *c.query_pre_attn_scalar; q == std::floor(q) && q < 1e15) {
        j["query_pre_attn_scalar"] = static_cast<int64_t>(q);
      } else {
        j["query_pre_attn_scalar"] = q;
      }
      j["sliding_window"] = c.sliding_window ? json(*c.sliding_window) : json(nullptr);
      json types = json::array();
      for (bool s : c.sliding_layers) types.push_back(s ? "sliding_attention" : "full_attention");
      j["layer_types"] = types;
      // Older transformers read the pattern instead of layer_types: write it when one describes them.
      for (int64_t p = 1; p <= c.num_layers + 1; ++p) {
        if (sliding_pattern(c.num_layers, p) == c.sliding_layers) {
          j["sliding_window_pattern"] = p;
          break;
        }
      }
      j["rope_local_base_freq"] = c.rope_local_theta;
      j["final_logit_softcapping"] = c.final_logit_softcapping ? json(*c.final_logit_softcapping) : json(nullptr);
      j["attn_logit_softcapping"] = nullptr;
      j["pad_token_id"] = 0;
      break;
    }
    default:
      break;
  }
}

}  // namespace internal
}  // namespace kiln::model
