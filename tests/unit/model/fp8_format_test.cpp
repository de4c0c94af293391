#include "kiln/model/fp8_format.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "kiln/core/fp8.h"
#include "kiln/model/config.h"
#include "kiln/model/fp8_quantize.h"

namespace kiln::model {
namespace {

// The quantization_config of Qwen3-8B-FP8 (and DeepSeek-V3's, less its ignore list).
constexpr const char* kBlockConfig = R"({
  "activation_scheme": "dynamic", "fmt": "e4m3", "quant_method": "fp8",
  "weight_block_size": [128, 128], "modules_to_not_convert": ["mlp.gate"]})";

// An llm-compressor FP8-dynamic checkpoint's (RedHatAI/Meta-Llama-3.1-8B-Instruct-FP8-dynamic).
constexpr const char* kChannelConfig = R"({
  "config_groups": {"group_0": {
    "input_activations": {"actorder": null, "block_structure": null, "dynamic": true, "group_size": null,
                          "num_bits": 8, "observer": null, "observer_kwargs": {}, "strategy": "token",
                          "symmetric": true, "type": "float"},
    "output_activations": null, "targets": ["Linear"],
    "weights": {"actorder": null, "block_structure": null, "dynamic": false, "group_size": null, "num_bits": 8,
                "observer": "minmax", "observer_kwargs": {}, "strategy": "channel", "symmetric": true,
                "type": "float"}}},
  "format": "float-quantized", "global_compression_ratio": 1.46, "ignore": ["lm_head", "re:.*self_attn.o_proj$"],
  "kv_cache_scheme": null, "quant_method": "compressed-tensors", "quantization_status": "compressed"})";

TEST(Fp8Format, ReadsBlockConfig) {
  auto q = parse_quantization_config(kBlockConfig, "config.json");
  ASSERT_TRUE(q.is_ok()) << q.status().to_string();
  EXPECT_EQ(q->scaling, Fp8Scaling::kBlock);
  EXPECT_EQ(q->layout, Fp8Layout::kFp8);
  EXPECT_EQ(q->block_rows, 128);
  EXPECT_EQ(q->block_cols, 128);
  EXPECT_TRUE(q->covers("model.layers.0.self_attn.q_proj"));
  EXPECT_FALSE(q->covers("model.layers.3.mlp.gate"));  // substring match, as transformers does
  EXPECT_EQ(q->scale_name("model.layers.0.mlp.down_proj"), "model.layers.0.mlp.down_proj.weight_scale_inv");
  EXPECT_EQ(q->scale_shape(300, 129), (std::vector<int64_t>{3, 2}));
}

TEST(Fp8Format, ReadsCompressedTensorsConfig) {
  auto q = parse_quantization_config(kChannelConfig, "config.json");
  ASSERT_TRUE(q.is_ok()) << q.status().to_string();
  EXPECT_EQ(q->scaling, Fp8Scaling::kChannel);
  EXPECT_EQ(q->layout, Fp8Layout::kCompressedTensors);
  EXPECT_TRUE(q->covers("model.layers.0.self_attn.q_proj"));
  EXPECT_FALSE(q->covers("model.layers.0.self_attn.o_proj"));  // "re:" matches the whole name
  EXPECT_TRUE(q->covers("model.layers.0.self_attn.o_proj_x"));
  EXPECT_FALSE(q->covers("lm_head"));
  EXPECT_EQ(q->scale_name("model.layers.0.mlp.up_proj"), "model.layers.0.mlp.up_proj.weight_scale");
  EXPECT_EQ(q->scale_shape(300, 129), (std::vector<int64_t>{300, 1}));
}

TEST(Fp8Format, RefusesWhatItCannotRun) {
  EXPECT_EQ(parse_quantization_config(R"({"quant_method": "gptq", "bits": 4})", "c").status().code(),
            StatusCode::kUnimplemented);
  EXPECT_EQ(parse_quantization_config(R"({"quant_method": "fp8", "fmt": "e5m2"})", "c").status().code(),
            StatusCode::kUnimplemented);
  EXPECT_FALSE(parse_quantization_config(R"({"quant_method": "fp8", "weight_block_size": [128]})", "c").is_ok());
  std::string bad_regex = kChannelConfig;
  bad_regex.replace(bad_regex.find("re:.*self_attn.o_proj$"), 22, "re:(");
  auto r = parse_quantization_config(bad_regex, "c");
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("ignore"), std::string::npos) << r.status().message();
  std::string int8 = kChannelConfig;
  int8.replace(int8.find("\"float-quantized\""), 17, "\"int-quantized\"");
  EXPECT_EQ(parse_quantization_config(int8, "c").status().code(), StatusCode::kUnimplemented);
}

TEST(Fp8Format, ConfigRoundTripsThroughConfigJson) {
  for (const QuantizationConfig& q : {fp8_block_config(), fp8_channel_config()}) {
    ModelConfig c;
    c.vocab_size = 256;
    c.hidden_size = 64;
    c.intermediate_size = 128;
    c.num_layers = 1;
    c.num_heads = 4;
    c.num_kv_heads = 2;
    c.head_dim = 16;
    c.max_position_embeddings = 128;
    c.quantization = q;
    auto back = parse_model_config(model_config_to_json(c));
    ASSERT_TRUE(back.is_ok()) << back.status().to_string();
    EXPECT_EQ(back->quantization.scaling, q.scaling);
    EXPECT_EQ(back->quantization.layout, q.layout);
    EXPECT_EQ(back->quantization.ignore, q.ignore);
    EXPECT_FALSE(back->quantization.covers("lm_head") && q.layout == Fp8Layout::kCompressedTensors);
  }
}

// Block scales applied by a naive loop over blocks (partial edge blocks included), against
// dequantize_fp8.
TEST(Fp8Quantize, BlockScalesMatchNaiveReference) {
  QuantizationConfig q = fp8_block_config();
  const int64_t rows = 300, cols = 200;  // 3 x 2 blocks, the last row and column blocks partial
  std::mt19937 rng(7);
  std::vector<uint8_t> codes(static_cast<size_t>(rows * cols));
  for (auto& c : codes) {
    c = static_cast<uint8_t>(rng());
    if ((c & 0x7f) == 0x7f) c = 0x10;  // no NaN codes in a weight
  }
  std::vector<float> scales(6);
  for (auto& s : scales) s = std::ldexp(1.0f + static_cast<float>(rng() % 100) / 100, static_cast<int>(rng() % 9) - 12);
  std::vector<float> got(codes.size());
  dequantize_fp8(q, codes.data(), scales.data(), rows, cols, got.data());
  for (int64_t bi = 0; bi < 3; ++bi)
    for (int64_t bj = 0; bj < 2; ++bj)
      for (int64_t i = bi * 128; i < std::min(rows, (bi + 1) * 128); ++i)
        for (int64_t j = bj * 128; j < std::min(cols, (bj + 1) * 128); ++j) {
          const size_t e = static_cast<size_t>(i * cols + j);
          ASSERT_EQ(got[e], e4m3_to_f32(codes[e]) * scales[static_cast<size_t>(bi * 2 + bj)]) << i << "," << j;
        }
}

TEST(Fp8Quantize, QuantizesWithinHalfAStepAndMapsToGroups) {
  std::mt19937 rng(3);
  std::normal_distribution<float> dist(0.0f, 0.02f);
  const int64_t rows = 130, cols = 256;
  std::vector<float> w(static_cast<size_t>(rows * cols));
  for (auto& v : w) v = dist(rng);
  for (const QuantizationConfig& q : {fp8_block_config(), fp8_channel_config()}) {
    std::vector<uint8_t> codes(w.size());
    std::vector<float> scales(static_cast<size_t>(fp8_scale_count(q, rows, cols)));
    quantize_fp8(q, w.data(), rows, cols, codes.data(), scales.data());
    std::vector<float> back(w.size());
    dequantize_fp8(q, codes.data(), scales.data(), rows, cols, back.data());
    for (size_t e = 0; e < w.size(); ++e) {
      // e4m3 keeps 3 mantissa bits: the rounding error is at most 2^-4 of the value (normal
      // range), or half a subnormal step (2^-10 · scale) below it.
      const float s = q.scaling == Fp8Scaling::kChannel ? scales[e / cols] : scales[(e / cols / 128) * 2 + (e % cols) / 128];
      ASSERT_LE(std::fabs(back[e] - w[e]), std::max(std::fabs(w[e]) / 16, std::ldexp(s, -10)) * 1.0001f) << e;
    }
    std::vector<float> groups;
    ASSERT_TRUE(fp8_group_scales(q, scales.data(), rows, cols, &groups));
    ASSERT_EQ(groups.size(), static_cast<size_t>(2 * rows));
    for (int64_t g = 0; g < 2; ++g)
      for (int64_t i = 0; i < rows; ++i) {
        const float want = q.scaling == Fp8Scaling::kChannel ? scales[static_cast<size_t>(i)]
                                                             : scales[static_cast<size_t>((i / 128) * 2 + g)];
        ASSERT_EQ(groups[static_cast<size_t>(g * rows + i)], want);
      }
  }
  QuantizationConfig narrow = fp8_block_config();
  narrow.block_cols = 64;  // two scales inside one 128-column group: not a group scale
  std::vector<float> groups, scales(static_cast<size_t>(fp8_scale_count(narrow, rows, cols)), 1.0f);
  EXPECT_FALSE(fp8_group_scales(narrow, scales.data(), rows, cols, &groups));
}

}  // namespace
}  // namespace kiln::model
