#include "kiln/model/config.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include <nlohmann/json.hpp>

#include "kiln/core/file.h"
#include "kiln/core/str.h"
#include "kiln/model/config_internal.h"

namespace kiln::model {
namespace {

using nlohmann::json;
using internal::Fields;

Result<json> parse_object(std::string_view text, std::string_view source) {
  json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return invalid_argument(str_cat(source, ": not valid JSON"));
  if (!j.is_object()) return invalid_argument(str_cat(source, ": must be a JSON object, got ", j.type_name()));
  return j;
}

// transformers' constructor defaults of each config class (LlamaConfig, MistralConfig, ...).
ModelConfig defaults_for(Architecture a) {
  ModelConfig c;
  c.architecture = a;
  c.num_layers = 32;
  c.num_heads = 32;
  c.hidden_size = 4096;
  c.rms_norm_eps = 1e-6;
  c.rope_theta = 10000.0;
  switch (a) {
    case Architecture::kLlama:
      c.vocab_size = 32000;
      c.intermediate_size = 11008;
      c.max_position_embeddings = 2048;
      c.bos_token_ids = {1};
      c.eos_token_ids = {2};
      break;
    case Architecture::kMistral:
      c.vocab_size = 32000;
      c.intermediate_size = 14336;
      c.num_kv_heads = 8;
      c.max_position_embeddings = 4096 * 32;
      c.sliding_window = 4096;
      c.bos_token_ids = {1};
      c.eos_token_ids = {2};
      break;
    case Architecture::kQwen2:
    case Architecture::kQwen3:
      c.vocab_size = 151936;
      c.intermediate_size = 22016;
      c.num_kv_heads = 32;
      c.max_position_embeddings = 32768;
      if (a == Architecture::kQwen3) c.head_dim = 128;
      break;
    case Architecture::kQwen3Moe:
    case Architecture::kMixtral:
    case Architecture::kGemma3:
      internal::set_arch_defaults(&c);
      break;
  }
  return c;
}

Status parse_rope_type(const Fields& f, const char* key, RopeScalingType* out) {
  std::string type;
  KILN_RETURN_IF_ERROR(f.get_string(key, &type));
  if (type == "default") *out = RopeScalingType::kNone;
  else if (type == "linear") *out = RopeScalingType::kLinear;
  else if (type == "dynamic") *out = RopeScalingType::kDynamic;
  else if (type == "yarn") *out = RopeScalingType::kYarn;
  else if (type == "llama3") *out = RopeScalingType::kLlama3;
  else {
    return Status(StatusCode::kUnimplemented,
                  f.error(key, str_cat("names rope type '", type,
                                       "', which kiln does not implement (default, linear, dynamic, yarn, llama3)"))
                      .message());
  }
  return Status::ok();
}

// rope_scaling (transformers 4.x) or rope_parameters (5.x): {"rope_type" or "type": ..., fields}.
Status parse_rope(const json& obj, const char* object_key, std::string_view source, ModelConfig* c) {
  Fields f(obj, source, str_cat(object_key, "."));
  if (!obj.is_object()) {
    return invalid_argument(str_cat(source, ": field '", object_key, "' must be an object or null, got ", obj.dump()));
  }
  RopeScaling& r = c->rope_scaling;
  r = RopeScaling{};
  if (f.present("rope_theta")) KILN_RETURN_IF_ERROR(f.get_double("rope_theta", &c->rope_theta));
  const char* type_key = f.present("rope_type") ? "rope_type" : "type";
  if (!f.present(type_key)) {
    if (starts_with(object_key, "rope_parameters")) return Status::ok();  // theta only
    return f.error("rope_type", "is missing (rope_scaling needs \"rope_type\" or \"type\")");
  }
  KILN_RETURN_IF_ERROR(parse_rope_type(f, type_key, &r.type));
  if (r.type == RopeScalingType::kNone) return Status::ok();
  if (!f.present("factor")) return f.error("factor", str_cat("is required for rope type ", f.name(type_key)));
  KILN_RETURN_IF_ERROR(f.get_double("factor", &r.factor));
  KILN_RETURN_IF_ERROR(f.get_int("original_max_position_embeddings", &r.original_max_position_embeddings));
  if (r.type == RopeScalingType::kLlama3) {
    for (const char* k : {"low_freq_factor", "high_freq_factor", "original_max_position_embeddings"}) {
      if (!f.present(k)) return f.error(k, "is required for rope type llama3");
    }
    KILN_RETURN_IF_ERROR(f.get_double("low_freq_factor", &r.low_freq_factor));
    KILN_RETURN_IF_ERROR(f.get_double("high_freq_factor", &r.high_freq_factor));
  }
  if (r.type == RopeScalingType::kYarn) {
    KILN_RETURN_IF_ERROR(f.get_double("beta_fast", &r.beta_fast));
    KILN_RETURN_IF_ERROR(f.get_double("beta_slow", &r.beta_slow));
    KILN_RETURN_IF_ERROR(f.get_optional_double("attention_factor", &r.attention_factor));
    std::optional<double> mscale, mscale_all_dim;
    KILN_RETURN_IF_ERROR(f.get_optional_double("mscale", &mscale));
    KILN_RETURN_IF_ERROR(f.get_optional_double("mscale_all_dim", &mscale_all_dim));
    if (!r.attention_factor && mscale && mscale_all_dim && *mscale != 0 && *mscale_all_dim != 0) {
      // transformers takes the factor from the context lengths when both are given.
      const double factor = r.original_max_position_embeddings > 0
                                ? static_cast<double>(c->max_position_embeddings) /
                                      static_cast<double>(r.original_max_position_embeddings)
                                : r.factor;
      auto get_mscale = [&](double m) { return factor <= 1 ? 1.0 : 0.1 * m * std::log(factor) + 1.0; };
      r.attention_factor = get_mscale(*mscale) / get_mscale(*mscale_all_dim);
    }
  }
  return Status::ok();
}

Status parse_dtype_name(const Fields& f, const char* key, DType* out) {
  if (!f.present(key)) return Status::ok();
  std::string s;
  KILN_RETURN_IF_ERROR(f.get_string(key, &s));
  if (starts_with(s, "torch.")) s = s.substr(6);
  if (s == "bfloat16") *out = DType::kBF16;
  else if (s == "float16" || s == "half") *out = DType::kF16;
  else if (s == "float32" || s == "float") *out = DType::kF32;
  else {
    return Status(StatusCode::kUnimplemented,
                  f.error(key, str_cat("is '", s, "'; kiln reads bfloat16, float16 and float32 checkpoints")).message());
  }
  return Status::ok();
}

// Qwen2/Qwen3 put the sliding window only on layers >= max_window_layers, and only when
// use_sliding_window is set. kiln has one window for all layers, so it takes the cases where the
// window covers all layers or none.
Status parse_qwen_sliding_window(const Fields& f, ModelConfig* c) {
  bool use = false;
  KILN_RETURN_IF_ERROR(f.get_bool("use_sliding_window", &use));
  c->sliding_window.reset();
  if (!use || !f.present("sliding_window")) return Status::ok();
  int64_t window = 0, max_window_layers = 28;
  KILN_RETURN_IF_ERROR(f.get_int("sliding_window", &window));
  KILN_RETURN_IF_ERROR(f.get_int("max_window_layers", &max_window_layers));
  if (max_window_layers >= c->num_layers) return Status::ok();
  if (max_window_layers > 0) {
    return Status(StatusCode::kUnimplemented,
                  f.error("max_window_layers",
                          str_cat("is ", max_window_layers, " of ", c->num_layers,
                                  " layers; kiln runs a sliding window on all layers or on none"))
                      .message());
  }
  c->sliding_window = window;
  return Status::ok();
}

}  // namespace

std::string_view architecture_name(Architecture a) {
  switch (a) {
    case Architecture::kLlama: return "llama";
    case Architecture::kMistral: return "mistral";
    case Architecture::kQwen2: return "qwen2";
    case Architecture::kQwen3: return "qwen3";
    case Architecture::kQwen3Moe: return "qwen3_moe";
    case Architecture::kMixtral: return "mixtral";
    case Architecture::kGemma3: return "gemma3_text";
  }
  return "?";
}

std::string_view architecture_hf_class(Architecture a) {
  switch (a) {
    case Architecture::kLlama: return "LlamaForCausalLM";
    case Architecture::kMistral: return "MistralForCausalLM";
    case Architecture::kQwen2: return "Qwen2ForCausalLM";
    case Architecture::kQwen3: return "Qwen3ForCausalLM";
    case Architecture::kQwen3Moe: return "Qwen3MoeForCausalLM";
    case Architecture::kMixtral: return "MixtralForCausalLM";
    case Architecture::kGemma3: return "Gemma3ForCausalLM";
  }
  return "?";
}

bool parse_architecture(std::string_view model_type, Architecture* out) {
  for (Architecture a : {Architecture::kLlama, Architecture::kMistral, Architecture::kQwen2, Architecture::kQwen3,
                         Architecture::kQwen3Moe, Architecture::kMixtral, Architecture::kGemma3}) {
    if (model_type == architecture_name(a)) {
      *out = a;
      return true;
    }
  }
  return false;
}

int64_t ModelConfig::num_parameters() const {
  const int64_t h = hidden_size, q = q_size(), kv = kv_size(), i = intermediate_size;
  int64_t layer = h * q + 2 * h * kv + q * h + (is_gemma() ? 4 : 2) * h;
  if (attention_bias) layer += q + 2 * kv;
  if (attention_out_bias) layer += h;
  if (mlp_bias) layer += 2 * i + h;
  if (qk_norm) layer += 2 * head_dim;
  int64_t total = vocab_size * h + num_layers * layer + h;
  for (int64_t l = 0; l < num_layers; ++l)
    total += layer_is_sparse(l) ? num_experts * (h + 3 * h * moe_intermediate_size) : 3 * h * i;
  if (!tie_word_embeddings) total += vocab_size * h;
  return total;
}

Result<ModelConfig> parse_model_config(std::string_view json_text, std::string_view source) {
  KILN_ASSIGN_OR_RETURN(json j, parse_object(json_text, source));
  Fields f(j, source);
  if (!f.present("model_type")) return f.error("model_type", "is missing");
  std::string model_type;
  KILN_RETURN_IF_ERROR(f.get_string("model_type", &model_type));
  Architecture arch;
  if (model_type == "gemma3") {
    // Gemma3ForConditionalGeneration: kiln serves its text model (text_config).
    if (!j.contains("text_config") || !j.at("text_config").is_object())
      return f.error("text_config", "must be an object (a gemma3 config holds its text model there)");
    json text = j.at("text_config");
    text["model_type"] = "gemma3_text";
    for (const char* key : {"tie_word_embeddings", "bos_token_id", "eos_token_id", "torch_dtype", "dtype"})
      if (j.contains(key) && !text.contains(key)) text[key] = j.at(key);
    return parse_model_config(text.dump(), str_cat(source, " (text_config)"));
  }
  if (!parse_architecture(model_type, &arch)) {
    return unimplemented(str_cat(source, ": unknown model_type '", model_type,
                                 "'; kiln runs llama, mistral, qwen2, qwen3, qwen3_moe, mixtral and gemma3_text"));
  }
  ModelConfig c = defaults_for(arch);

  KILN_RETURN_IF_ERROR(f.get_int("vocab_size", &c.vocab_size));
  KILN_RETURN_IF_ERROR(f.get_int("hidden_size", &c.hidden_size));
  KILN_RETURN_IF_ERROR(f.get_int("intermediate_size", &c.intermediate_size));
  KILN_RETURN_IF_ERROR(f.get_int("num_hidden_layers", &c.num_layers));
  KILN_RETURN_IF_ERROR(f.get_int("num_attention_heads", &c.num_heads));
  if (c.num_kv_heads == 0) c.num_kv_heads = c.num_heads;
  KILN_RETURN_IF_ERROR(f.get_int("num_key_value_heads", &c.num_kv_heads));
  KILN_RETURN_IF_ERROR(f.get_int("max_position_embeddings", &c.max_position_embeddings));
  KILN_RETURN_IF_ERROR(f.get_double("rms_norm_eps", &c.rms_norm_eps));
  KILN_RETURN_IF_ERROR(f.get_double("rope_theta", &c.rope_theta));
  KILN_RETURN_IF_ERROR(f.get_bool("tie_word_embeddings", &c.tie_word_embeddings));
  KILN_RETURN_IF_ERROR(f.get_token_ids("bos_token_id", &c.bos_token_ids));
  KILN_RETURN_IF_ERROR(f.get_token_ids("eos_token_id", &c.eos_token_ids));

  if (f.present("quantization_config")) {
    KILN_ASSIGN_OR_RETURN(c.quantization, parse_quantization_config(j.at("quantization_config").dump(), source));
  }

  if (f.present("head_dim")) {
    KILN_RETURN_IF_ERROR(f.get_int("head_dim", &c.head_dim));
  } else if ((arch != Architecture::kQwen3 && arch != Architecture::kGemma3) || j.contains("head_dim")) {
    // Qwen3Config defaults head_dim to 128 when the key is absent; the others (and an explicit
    // null) derive it from the hidden size.
    if (c.num_heads <= 0) return f.error("num_attention_heads", str_cat("must be positive, got ", c.num_heads));
    if (c.hidden_size % c.num_heads != 0) {
      return f.error("head_dim", str_cat("is missing and hidden_size ", c.hidden_size,
                                         " is not divisible by num_attention_heads ", c.num_heads));
    }
    c.head_dim = c.hidden_size / c.num_heads;
  }

  if (arch == Architecture::kGemma3) {
    KILN_RETURN_IF_ERROR(internal::parse_gemma3_activation(f, source));
  } else {
    std::string act = "silu";
    KILN_RETURN_IF_ERROR(f.get_string("hidden_act", &act));
    if (act != "silu" && act != "swish") {
      return unimplemented(str_cat(source, ": field 'hidden_act' is '", act, "'; kiln's MLP is SwiGLU (silu)"));
    }
  }
  if (f.present("dtype")) KILN_RETURN_IF_ERROR(parse_dtype_name(f, "dtype", &c.torch_dtype));
  else KILN_RETURN_IF_ERROR(parse_dtype_name(f, "torch_dtype", &c.torch_dtype));

  if (arch == Architecture::kGemma3 && f.present("rope_parameters") && j.at("rope_parameters").contains("full_attention")) {
    // transformers 5 keeps one set per layer type; the local one is read by parse_gemma3_fields.
    KILN_RETURN_IF_ERROR(parse_rope(j.at("rope_parameters").at("full_attention"), "rope_parameters.full_attention",
                                    source, &c));
  } else if (f.present("rope_parameters")) KILN_RETURN_IF_ERROR(parse_rope(j.at("rope_parameters"), "rope_parameters", source, &c));
  else if (f.present("rope_scaling")) KILN_RETURN_IF_ERROR(parse_rope(j.at("rope_scaling"), "rope_scaling", source, &c));

  switch (arch) {
    case Architecture::kLlama:
      KILN_RETURN_IF_ERROR(f.get_bool("attention_bias", &c.attention_bias));
      c.attention_out_bias = c.attention_bias;
      KILN_RETURN_IF_ERROR(f.get_bool("mlp_bias", &c.mlp_bias));
      break;
    case Architecture::kMixtral:
      KILN_RETURN_IF_ERROR(internal::parse_moe_fields(f, &c));
      [[fallthrough]];
    case Architecture::kMistral: {
      auto it = j.find("sliding_window");
      if (it != j.end()) {
        if (it->is_null()) c.sliding_window.reset();
        else {
          int64_t w = 0;
          KILN_RETURN_IF_ERROR(f.get_int("sliding_window", &w));
          c.sliding_window = w;
        }
      }
      break;
    }
    case Architecture::kQwen2:
      c.attention_bias = true;  // Qwen2Attention: q/k/v always biased, o_proj never
      KILN_RETURN_IF_ERROR(parse_qwen_sliding_window(f, &c));
      break;
    case Architecture::kQwen3Moe:
      KILN_RETURN_IF_ERROR(internal::parse_moe_fields(f, &c));
      [[fallthrough]];
    case Architecture::kQwen3:
      c.qk_norm = true;
      KILN_RETURN_IF_ERROR(f.get_bool("attention_bias", &c.attention_bias));
      c.attention_out_bias = c.attention_bias;
      KILN_RETURN_IF_ERROR(parse_qwen_sliding_window(f, &c));
      break;
    case Architecture::kGemma3:
      KILN_RETURN_IF_ERROR(internal::parse_gemma3_fields(j, f, &c));
      break;
  }
  KILN_RETURN_IF_ERROR(validate_model_config(c, source));
  return c;
}

Status validate_model_config(const ModelConfig& c, std::string_view source) {
  auto bad = [&](std::string_view field, auto value, std::string_view what) {
    return invalid_argument(str_cat(source, ": field '", field, "' is ", value, "; ", what));
  };
  // Each size stays far below what would overflow int64 products of two or three of them.
  constexpr int64_t kMaxDim = int64_t{1} << 31;
  const std::pair<std::string_view, int64_t> sizes[] = {
      {"vocab_size", c.vocab_size},
      {"hidden_size", c.hidden_size},
      {"intermediate_size", c.intermediate_size},
      {"num_hidden_layers", c.num_layers},
      {"num_attention_heads", c.num_heads},
      {"num_key_value_heads", c.num_kv_heads},
      {"head_dim", c.head_dim},
      {"max_position_embeddings", c.max_position_embeddings},
  };
  for (const auto& [field, v] : sizes) {
    if (v <= 0) return bad(field, v, "it must be positive");
    if (v > kMaxDim) return bad(field, v, str_cat("it must be at most ", kMaxDim));
  }
  if (c.num_heads % c.num_kv_heads != 0) {
    return bad("num_key_value_heads", c.num_kv_heads, str_cat("it must divide num_attention_heads (", c.num_heads, ")"));
  }
  if (c.head_dim % 2 != 0) return bad("head_dim", c.head_dim, "rotary embeddings need an even head_dim");
  const double mlp = std::max(static_cast<double>(c.intermediate_size) * 3,
                              static_cast<double>(c.num_experts) * static_cast<double>(c.moe_intermediate_size) * 3);
  const double params = static_cast<double>(c.vocab_size) * static_cast<double>(c.hidden_size) * 2 +
                        static_cast<double>(c.num_layers) * static_cast<double>(c.hidden_size) *
                            (static_cast<double>(c.q_size() * 2 + c.kv_size() * 2) + mlp);
  if (!(params < 1e15)) return bad("num_hidden_layers", c.num_layers, "the model's shapes add up to over 1e15 parameters");
  if (!(c.rms_norm_eps > 0) || !std::isfinite(c.rms_norm_eps)) return bad("rms_norm_eps", c.rms_norm_eps, "it must be positive");
  if (!(c.rope_theta > 0) || !std::isfinite(c.rope_theta)) return bad("rope_theta", c.rope_theta, "it must be positive");
  if (c.sliding_window && *c.sliding_window <= 0) return bad("sliding_window", *c.sliding_window, "it must be positive");
  const RopeScaling& r = c.rope_scaling;
  if (r.type != RopeScalingType::kNone) {
    if (!(r.factor > 0) || !std::isfinite(r.factor)) return bad("rope_scaling.factor", r.factor, "it must be positive");
    if (r.original_max_position_embeddings < 0 ||
        (r.type == RopeScalingType::kLlama3 && r.original_max_position_embeddings == 0)) {
      return bad("rope_scaling.original_max_position_embeddings", r.original_max_position_embeddings,
                 "it must be positive");
    }
  }
  if (r.type == RopeScalingType::kLlama3) {
    if (!(r.low_freq_factor > 0)) return bad("rope_scaling.low_freq_factor", r.low_freq_factor, "it must be positive");
    if (!(r.high_freq_factor > r.low_freq_factor)) {
      return bad("rope_scaling.high_freq_factor", r.high_freq_factor,
                 str_cat("it must exceed low_freq_factor (", r.low_freq_factor, ")"));
    }
  }
  if (r.type == RopeScalingType::kYarn) {
    if (!(r.beta_slow > 0)) return bad("rope_scaling.beta_slow", r.beta_slow, "it must be positive");
    if (!(r.beta_fast > r.beta_slow)) {
      return bad("rope_scaling.beta_fast", r.beta_fast, str_cat("it must exceed beta_slow (", r.beta_slow, ")"));
    }
    if (r.attention_factor && !(*r.attention_factor > 0)) {
      return bad("rope_scaling.attention_factor", *r.attention_factor, "it must be positive");
    }
  }
  if (c.qk_norm && c.architecture != Architecture::kQwen3 && c.architecture != Architecture::kQwen3Moe &&
      !c.is_gemma())
    return bad("qk_norm", "true", "only qwen3, qwen3_moe and gemma3 have q/k norms");
  return internal::validate_arch_fields(c, source);
}

Result<ModelConfig> load_model_config(const std::filesystem::path& model_dir) {
  const auto path = model_dir / "config.json";
  KILN_ASSIGN_OR_RETURN(std::string text, read_file(path));
  return parse_model_config(text, path.string());
}

namespace {

json token_ids_json(const std::vector<int32_t>& ids) {
  if (ids.empty()) return nullptr;
  if (ids.size() == 1) return ids[0];
  return ids;
}

std::string_view torch_dtype_name(DType t) {
  switch (t) {
    case DType::kF16: return "float16";
    case DType::kF32: return "float32";
    default: return "bfloat16";
  }
}

json rope_scaling_json(const RopeScaling& r) {
  json o = json::object();
  switch (r.type) {
    case RopeScalingType::kNone: return nullptr;
    case RopeScalingType::kLinear: o["rope_type"] = "linear"; break;
    case RopeScalingType::kDynamic: o["rope_type"] = "dynamic"; break;
    case RopeScalingType::kYarn: o["rope_type"] = "yarn"; break;
    case RopeScalingType::kLlama3: o["rope_type"] = "llama3"; break;
  }
  o["factor"] = r.factor;
  if (r.original_max_position_embeddings > 0) o["original_max_position_embeddings"] = r.original_max_position_embeddings;
  if (r.type == RopeScalingType::kLlama3) {
    o["low_freq_factor"] = r.low_freq_factor;
    o["high_freq_factor"] = r.high_freq_factor;
  }
  if (r.type == RopeScalingType::kYarn) {
    o["beta_fast"] = r.beta_fast;
    o["beta_slow"] = r.beta_slow;
    if (r.attention_factor) o["attention_factor"] = *r.attention_factor;
  }
  return o;
}

}  // namespace

std::string model_config_to_json(const ModelConfig& c) {
  json j = json::object();
  j["architectures"] = json::array({std::string(architecture_hf_class(c.architecture))});
  j["model_type"] = std::string(architecture_name(c.architecture));
  j["attention_dropout"] = 0.0;
  j["bos_token_id"] = token_ids_json(c.bos_token_ids);
  j["eos_token_id"] = token_ids_json(c.eos_token_ids);
  j["head_dim"] = c.head_dim;
  if (c.is_gemma()) j["hidden_activation"] = "gelu_pytorch_tanh";
  else j["hidden_act"] = "silu";
  j["hidden_size"] = c.hidden_size;
  j["initializer_range"] = 0.02;
  j["intermediate_size"] = c.intermediate_size;
  j["max_position_embeddings"] = c.max_position_embeddings;
  j["num_attention_heads"] = c.num_heads;
  j["num_hidden_layers"] = c.num_layers;
  j["num_key_value_heads"] = c.num_kv_heads;
  j["rms_norm_eps"] = c.rms_norm_eps;
  j["rope_theta"] = c.rope_theta;
  j["tie_word_embeddings"] = c.tie_word_embeddings;
  j["torch_dtype"] = std::string(torch_dtype_name(c.torch_dtype));
  j["use_cache"] = true;
  j["vocab_size"] = c.vocab_size;
  if ((c.architecture != Architecture::kMistral && c.architecture != Architecture::kMixtral) ||
      c.rope_scaling.type != RopeScalingType::kNone) {
    j["rope_scaling"] = rope_scaling_json(c.rope_scaling);
  }
  switch (c.architecture) {
    case Architecture::kLlama:
      j["attention_bias"] = c.attention_bias;
      j["mlp_bias"] = c.mlp_bias;
      j["pretraining_tp"] = 1;
      break;
    case Architecture::kMixtral:
    case Architecture::kMistral:
      j["sliding_window"] = c.sliding_window ? json(*c.sliding_window) : json(nullptr);
      break;
    case Architecture::kGemma3:
      break;
    case Architecture::kQwen3Moe:
    case Architecture::kQwen3:
      j["attention_bias"] = c.attention_bias;
      [[fallthrough]];
    case Architecture::kQwen2:
      j["use_sliding_window"] = c.sliding_window.has_value();
      j["sliding_window"] = c.sliding_window ? json(*c.sliding_window) : json(nullptr);
      j["max_window_layers"] = c.sliding_window ? 0 : c.num_layers;
      break;
  }
  internal::arch_fields_to_json(c, &j);
  if (const std::string q = quantization_config_to_json(c.quantization); !q.empty()) {
    j["quantization_config"] = json::parse(q);
  }
  return j.dump(2) + "\n";
}

Result<GenerationConfig> parse_generation_config(std::string_view json_text, std::string_view source) {
  KILN_ASSIGN_OR_RETURN(json j, parse_object(json_text, source));
  Fields f(j, source);
  GenerationConfig g;
  KILN_RETURN_IF_ERROR(f.get_token_ids("eos_token_id", &g.eos_token_ids));
  std::vector<int32_t> bos;
  KILN_RETURN_IF_ERROR(f.get_token_ids("bos_token_id", &bos));
  if (bos.size() > 1) return f.error("bos_token_id", "must be a single token id");
  if (!bos.empty()) g.bos_token_id = bos[0];
  auto read_double = [&](const char* key, std::optional<double>* out) { return f.get_optional_double(key, out); };
  auto read_int = [&](const char* key, std::optional<int64_t>* out) -> Status {
    if (!f.present(key)) return Status::ok();
    int64_t v = 0;
    KILN_RETURN_IF_ERROR(f.get_int(key, &v));
    *out = v;
    return Status::ok();
  };
  KILN_RETURN_IF_ERROR(read_double("temperature", &g.temperature));
  KILN_RETURN_IF_ERROR(read_double("top_p", &g.top_p));
  KILN_RETURN_IF_ERROR(read_int("top_k", &g.top_k));
  KILN_RETURN_IF_ERROR(read_double("min_p", &g.min_p));
  KILN_RETURN_IF_ERROR(read_double("repetition_penalty", &g.repetition_penalty));
  KILN_RETURN_IF_ERROR(read_int("max_new_tokens", &g.max_new_tokens));
  if (f.present("do_sample")) {
    bool b = false;
    KILN_RETURN_IF_ERROR(f.get_bool("do_sample", &b));
    g.do_sample = b;
  }
  if (g.temperature && !(*g.temperature >= 0)) return f.error("temperature", str_cat("is ", *g.temperature, "; it must be >= 0"));
  if (g.top_p && !(*g.top_p > 0 && *g.top_p <= 1)) return f.error("top_p", str_cat("is ", *g.top_p, "; it must be in (0, 1]"));
  if (g.top_k && *g.top_k < 0) return f.error("top_k", str_cat("is ", *g.top_k, "; it must be >= 0"));
  if (g.min_p && !(*g.min_p >= 0 && *g.min_p <= 1)) return f.error("min_p", str_cat("is ", *g.min_p, "; it must be in [0, 1]"));
  if (g.repetition_penalty && !(*g.repetition_penalty > 0)) {
    return f.error("repetition_penalty", str_cat("is ", *g.repetition_penalty, "; it must be positive"));
  }
  if (g.max_new_tokens && *g.max_new_tokens <= 0) {
    return f.error("max_new_tokens", str_cat("is ", *g.max_new_tokens, "; it must be positive"));
  }
  return g;
}

Result<GenerationConfig> load_generation_config(const std::filesystem::path& model_dir) {
  const auto path = model_dir / "generation_config.json";
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return GenerationConfig{};
  KILN_ASSIGN_OR_RETURN(std::string text, read_file(path));
  return parse_generation_config(text, path.string());
}

std::string generation_config_to_json(const GenerationConfig& g) {
  json j = json::object();
  if (g.bos_token_id) j["bos_token_id"] = *g.bos_token_id;
  if (!g.eos_token_ids.empty()) j["eos_token_id"] = token_ids_json(g.eos_token_ids);
  if (g.temperature) j["temperature"] = *g.temperature;
  if (g.top_p) j["top_p"] = *g.top_p;
  if (g.top_k) j["top_k"] = *g.top_k;
  if (g.min_p) j["min_p"] = *g.min_p;
  if (g.repetition_penalty) j["repetition_penalty"] = *g.repetition_penalty;
  if (g.do_sample) j["do_sample"] = *g.do_sample;
  if (g.max_new_tokens) j["max_new_tokens"] = *g.max_new_tokens;
  return j.dump(2) + "\n";
}

}  // namespace kiln::model
