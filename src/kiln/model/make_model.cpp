#include "kiln/model/make_model.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <numbers>
#include <regex>

#include "kiln/core/file.h"
#include "kiln/core/str.h"
#include "kiln/core/thread_pool.h"
#include "kiln/model/checkpoint.h"
#include "kiln/model/task_files.h"
#include "kiln/model/tokenizer_files.h"
#include "kiln/model/weights_layout.h"

namespace kiln::model {
namespace {

namespace fs = std::filesystem;

// MurmurHash3's 64-bit finalizer: a bijection that mixes every input bit into every output bit.
inline uint64_t fmix64(uint64_t k) {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdULL;
  k ^= k >> 33;
  k *= 0xc4ceb9fe1a85ec53ULL;
  k ^= k >> 33;
  return k;
}

uint64_t tensor_key(uint64_t seed, std::string_view name) {
  uint64_t h = 0xcbf29ce484222325ULL;  // FNV-1a over the name
  for (unsigned char c : name) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return fmix64(fmix64(seed + 0x9e3779b97f4a7c15ULL) ^ h);
}

// Two independent standard normals for counter `pair` (Box-Muller). Double precision keeps the
// result the same across libm builds far more often than float would.
inline void normal_pair(uint64_t key, uint64_t pair, double* z0, double* z1) {
  const uint64_t x = fmix64(key ^ fmix64(pair * 0x9e3779b97f4a7c15ULL + 0x632be59bd9b4e019ULL));
  const double u1 = (static_cast<double>(x >> 11) + 1.0) * 0x1p-53;  // (0, 1]
  const double u2 = static_cast<double>(fmix64(x) >> 11) * 0x1p-53;   // [0, 1)
  const double r = std::sqrt(-2.0 * std::log(u1));
  const double t = 2.0 * std::numbers::pi * u2;
  *z0 = r * std::cos(t);
  *z1 = r * std::sin(t);
}

inline float scale(double z, bool norm) { return static_cast<float>(norm ? 1.0 + 0.1 * z : 0.02 * z); }

// Elements [first, first + count) of one tensor, in `dtype`, at `dst`.
void fill_elements(uint64_t key, bool norm, DType dtype, uint64_t first, uint64_t count, uint8_t* dst) {
  auto put = [&](uint64_t i, float v) {
    if (dtype == DType::kBF16) {
      const uint16_t b = f32_to_bf16(v);
      std::memcpy(dst + i * 2, &b, 2);
    } else {
      std::memcpy(dst + i * 4, &v, 4);
    }
  };
  uint64_t i = 0;
  while (i < count) {
    const uint64_t e = first + i;
    double z0, z1;
    normal_pair(key, e / 2, &z0, &z1);
    if (e % 2 == 1) {
      put(i, scale(z1, norm));
      i += 1;
    } else if (i + 1 < count) {
      put(i, scale(z0, norm));
      put(i + 1, scale(z1, norm));
      i += 2;
    } else {
      put(i, scale(z0, norm));
      i += 1;
    }
  }
}

struct Plan {
  ModelConfig config;
  std::string tokenizer;
  ModelKind kind = ModelKind::kGenerate;
};

bool dense_family(Architecture a) {
  return a == Architecture::kLlama || a == Architecture::kMistral || a == Architecture::kQwen2 || a == Architecture::kQwen3;
}

void set_family_flags(ModelConfig* c) {
  c->attention_bias = c->architecture == Architecture::kQwen2;
  c->attention_out_bias = false;
  c->mlp_bias = false;
  c->qk_norm = c->architecture == Architecture::kQwen3;
  if (c->architecture == Architecture::kLlama) c->sliding_window.reset();
}

std::string_view default_tokenizer(Architecture a) {
  switch (a) {
    case Architecture::kQwen2:
    case Architecture::kQwen3:
    case Architecture::kQwen3Moe: return "qwen3";
    case Architecture::kGemma3: return "gemma3";
    default: return "llama2";
  }
}

Result<Plan> plan(const MakeModelOptions& o) {
  Plan p;
  if (!o.preset.empty()) {
    const Preset* found = nullptr;
    for (const Preset& pr : presets()) {
      if (pr.name == o.preset) found = &pr;
    }
    if (found == nullptr) return preset_config(o.preset).status();
    p.config = found->config;
    p.tokenizer = std::string(found->tokenizer);
    p.kind = found->kind;
    if (o.architecture && *o.architecture != p.config.architecture) {
      // The dense families share one layout and differ in flags; the others carry more than flags.
      if (!dense_family(*o.architecture) || !dense_family(p.config.architecture))
        return invalid_argument(str_cat("make-model: --architecture ", architecture_name(*o.architecture),
                                        " cannot override preset ", o.preset, " (",
                                        architecture_name(p.config.architecture),
                                        "); start from a preset of that family or from --architecture alone"));
      p.config.architecture = *o.architecture;
      set_family_flags(&p.config);
    }
  } else if (o.architecture) {
    KILN_ASSIGN_OR_RETURN(p.config, parse_model_config(str_cat(R"({"model_type": ")", architecture_name(*o.architecture), "\"}"),
                                                       "make-model"));
    p.tokenizer = std::string(default_tokenizer(*o.architecture));
  } else {
    return invalid_argument("make-model: name a --preset or an --architecture");
  }
  ModelConfig& c = p.config;
  if (o.vocab_size) c.vocab_size = *o.vocab_size;
  if (o.hidden_size) c.hidden_size = *o.hidden_size;
  if (o.intermediate_size) c.intermediate_size = *o.intermediate_size;
  if (o.num_layers) c.num_layers = *o.num_layers;
  if (o.num_heads) c.num_heads = *o.num_heads;
  if (o.num_kv_heads) c.num_kv_heads = *o.num_kv_heads;
  if (o.head_dim) {
    c.head_dim = *o.head_dim;
  } else if ((o.hidden_size || o.num_heads) && c.num_heads > 0) {  // validation names a bad head count
    if (c.hidden_size % c.num_heads != 0) {
      return invalid_argument(str_cat("make-model: hidden size ", c.hidden_size, " is not divisible by ", c.num_heads,
                                      " heads; pass --head-dim"));
    }
    c.head_dim = c.hidden_size / c.num_heads;
  }
  if (o.max_position_embeddings) c.max_position_embeddings = *o.max_position_embeddings;
  if (o.rope_theta) c.rope_theta = *o.rope_theta;
  if (o.tie_word_embeddings) c.tie_word_embeddings = *o.tie_word_embeddings;
  if (o.sliding_window) {
    if (*o.sliding_window < 0) return invalid_argument("make-model: --sliding-window must be >= 0 (0: none)");
    if (*o.sliding_window == 0) c.sliding_window.reset();
    else if (c.architecture == Architecture::kLlama) {
      return invalid_argument("make-model: llama has no sliding window; use --architecture mistral");
    } else {
      c.sliding_window = *o.sliding_window;
    }
  }
  if (o.num_experts || o.num_experts_per_tok || o.moe_intermediate_size) {
    if (!c.is_moe()) return invalid_argument("make-model: expert options need a mixture-of-experts model");
    if (o.num_experts) c.num_experts = *o.num_experts;
    if (o.num_experts_per_tok) c.num_experts_per_tok = *o.num_experts_per_tok;
    if (o.moe_intermediate_size) {
      if (c.architecture == Architecture::kMixtral)
        return invalid_argument("make-model: a mixtral expert is intermediate-size wide; use --intermediate-size");
      c.moe_intermediate_size = *o.moe_intermediate_size;
    }
  }
  if (c.architecture == Architecture::kMixtral) c.moe_intermediate_size = c.intermediate_size;
  if (c.is_gemma() && !c.sliding_layers.empty() && static_cast<int64_t>(c.sliding_layers.size()) != c.num_layers) {
    // A new layer count keeps the preset's period of global layers.
    const auto period = std::find(c.sliding_layers.begin(), c.sliding_layers.end(), false) - c.sliding_layers.begin() + 1;
    c.sliding_layers.assign(static_cast<size_t>(c.num_layers), true);
    for (int64_t i = 0; i < c.num_layers; ++i) c.sliding_layers[static_cast<size_t>(i)] = (i + 1) % period != 0;
  }
  if (o.dtype != DType::kBF16 && o.dtype != DType::kF32) {
    return invalid_argument(str_cat("make-model: dtype ", dtype_name(o.dtype), " is not one of bf16, f32"));
  }
  c.torch_dtype = o.dtype;
  KILN_RETURN_IF_ERROR(validate_model_config(c, "make-model"));
  return p;
}

// Removes checkpoint files an earlier run may have left, so that the directory holds one model.
Status remove_old_weights(const fs::path& dir) {
  static const std::regex kShard(R"(model-\d{5}-of-\d{5}\.safetensors)");
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name == "model.safetensors" || name == "model.safetensors.index.json" || std::regex_match(name, kShard)) {
      fs::remove(entry.path(), ec);
      if (ec) return failed_precondition(str_cat(entry.path().string(), ": cannot remove: ", ec.message()));
    }
  }
  if (ec) return failed_precondition(str_cat(dir.string(), ": cannot list: ", ec.message()));
  return Status::ok();
}

}  // namespace

float make_model_weight(uint64_t seed, std::string_view name, uint64_t index, bool norm) {
  double z0, z1;
  normal_pair(tensor_key(seed, name), index / 2, &z0, &z1);
  return scale(index % 2 ? z1 : z0, norm);
}

Result<fs::path> make_model_tokenizer_dir(const MakeModelOptions& options) {
  KILN_ASSIGN_OR_RETURN(Plan p, plan(options));
  return find_tokenizer_dir(p.tokenizer, options.tokenizer_dir);
}

Result<ModelConfig> make_model_config(const MakeModelOptions& options) {
  KILN_ASSIGN_OR_RETURN(Plan p, plan(options));
  return p.config;
}

Status make_model(const MakeModelOptions& options, MakeModelReport* report) {
  const auto start = std::chrono::steady_clock::now();
  KILN_ASSIGN_OR_RETURN(Plan p, plan(options));
  ModelConfig& c = p.config;
  if (options.out_dir.empty()) return invalid_argument("make-model: --out is required");

  KILN_ASSIGN_OR_RETURN(fs::path tok_dir, find_tokenizer_dir(p.tokenizer, options.tokenizer_dir));
  KILN_ASSIGN_OR_RETURN(TokenizerFiles tok, read_tokenizer_files(tok_dir));
  if (c.vocab_size < tok.vocab && !(options.vocab_size && options.allow_small_vocab)) {
    return invalid_argument(str_cat("make-model: vocab_size ", c.vocab_size, " does not cover the tokenizer's ", tok.vocab,
                                    " token ids (", tok_dir.string(), "); a smaller vocabulary needs --vocab-size ",
                                    "with --allow-small-vocab, and makes a checkpoint for numerical tests only"));
  }
  c.bos_token_ids.clear();
  c.eos_token_ids.clear();
  if (tok.bos_id) c.bos_token_ids.push_back(*tok.bos_id);
  if (tok.eos_id) c.eos_token_ids.push_back(*tok.eos_id);
  std::optional<ScriptedModel> scripted;
  if (!options.script.empty()) {
    KILN_ASSIGN_OR_RETURN(scripted, build_scripted_model(options.script, &c));
    KILN_RETURN_IF_ERROR(validate_model_config(c, "make-model"));
  }

  const fs::path& out = options.out_dir;
  std::error_code ec;
  fs::create_directories(out, ec);
  if (ec) return failed_precondition(str_cat(out.string(), ": cannot create: ", ec.message()));
  KILN_RETURN_IF_ERROR(remove_old_weights(out));
  for (const char* f : {"tokenizer.json", "tokenizer_config.json"}) {
    fs::copy_file(tok_dir / f, out / f, fs::copy_options::overwrite_existing, ec);
    if (ec) return failed_precondition(str_cat((out / f).string(), ": cannot copy from ", tok_dir.string(), ": ", ec.message()));
  }
  KILN_RETURN_IF_ERROR(write_file_atomic(out / "config.json", model_config_to_json(c)));
  GenerationConfig gen;
  gen.bos_token_id = tok.bos_id;
  gen.eos_token_ids = c.eos_token_ids;
  KILN_RETURN_IF_ERROR(write_file_atomic(out / "generation_config.json", generation_config_to_json(gen)));
  KILN_RETURN_IF_ERROR(write_task_files(out, p.kind, "<|endoftext|>"));

  // Shards: tensors in state-dict order, a new shard whenever the next tensor would overflow this
  // one (a tensor larger than the limit gets a shard of its own), as transformers shards.
  const std::vector<ExpectedTensor> expected = expected_tensors(c);
  std::vector<TensorSpec> specs;
  for (const auto& t : expected) specs.push_back({task_tensor_name(p.kind, t.name), options.dtype, t.shape});
  std::vector<std::vector<size_t>> shards(1);
  uint64_t shard_bytes = 0, total_bytes = 0;
  for (size_t i = 0; i < specs.size(); ++i) {
    const uint64_t n = specs[i].nbytes();
    if (!shards.back().empty() && shard_bytes + n > options.max_shard_size) {
      shards.emplace_back();
      shard_bytes = 0;
    }
    shards.back().push_back(i);
    shard_bytes += n;
    total_bytes += n;
  }

  ThreadPool pool(options.num_threads);
  std::vector<uint64_t> keys(specs.size());
  // Keyed by the layout's names, so an embedding checkpoint's weights are its generating twin's.
  for (size_t i = 0; i < specs.size(); ++i) keys[i] = tensor_key(options.seed, expected[i].name);
  std::map<std::string, std::string> weight_map;
  uint64_t file_bytes = 0;
  for (size_t s = 0; s < shards.size(); ++s) {
    char shard_name[64];
    std::snprintf(shard_name, sizeof shard_name, "model-%05zu-of-%05zu.safetensors", s + 1, shards.size());
    const std::string fname = shards.size() == 1 ? std::string("model.safetensors") : std::string(shard_name);
    std::vector<TensorSpec> shard_specs;
    for (size_t i : shards[s]) {
      shard_specs.push_back(specs[i]);
      weight_map[specs[i].name] = fname;
    }
    const size_t esize = dtype_size(options.dtype);
    auto fill = [&](size_t index, uint64_t offset, uint8_t* dst, size_t size) {
      const size_t global = shards[s][index];
      const bool norm = expected[global].role == TensorRole::kNorm;
      const uint64_t first = offset / esize, count = size / esize;
      if (scripted) {
        const std::string& name = expected[global].name;
        for (uint64_t i = 0; i < count; ++i) {
          const float v = scripted_weight(*scripted, c, name, first + i);
          if (options.dtype == DType::kBF16) {
            const uint16_t b = f32_to_bf16(v);
            std::memcpy(dst + i * 2, &b, 2);
          } else {
            std::memcpy(dst + i * 4, &v, 4);
          }
        }
        return Status::ok();
      }
      pool.parallel_for(static_cast<int64_t>(count), 1 << 16, [&](int64_t b, int64_t e) {
        fill_elements(keys[global], norm, options.dtype, first + static_cast<uint64_t>(b), static_cast<uint64_t>(e - b),
                      dst + static_cast<size_t>(b) * esize);
      });
      return Status::ok();
    };
    KILN_RETURN_IF_ERROR(write_safetensors(out / fname, shard_specs, fill, {{"format", "pt"}}));
    file_bytes += fs::file_size(out / fname, ec);
  }
  if (shards.size() > 1) {
    KILN_RETURN_IF_ERROR(write_safetensors_index(out / "model.safetensors.index.json", weight_map, total_bytes));
    file_bytes += fs::file_size(out / "model.safetensors.index.json", ec);
  }
  for (const char* f : {"config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json"}) {
    file_bytes += fs::file_size(out / f, ec);
  }

  if (report != nullptr) {
    report->config = c;
    report->num_parameters = c.num_parameters();
    report->tensor_bytes = total_bytes;
    report->file_bytes = file_bytes;
    report->num_shards = static_cast<int>(shards.size());
    report->seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    report->tokenizer_source = tok_dir;
    report->tokenizer_vocab = tok.vocab;
  }
  return Status::ok();
}

}  // namespace kiln::model
