// FP8 checkpoints: which published layout a config.json's `quantization_config` names, which
// linear layers it covers, and the names of their scale tensors (docs/fp8.md).
//
//  - block ("quant_method": "fp8", as Qwen3-*-FP8 and DeepSeek ship): F8_E4M3 weights with
//    `<module>.weight_scale_inv`, f32 [ceil(out/br), ceil(in/bc)] for `weight_block_size`
//    [br, bc]; w = q · s[i / br][j / bc]. Without a block size, one scale for the whole tensor.
//  - channel (compressed-tensors "float-quantized", FP8-dynamic): F8_E4M3 weights with
//    `<module>.weight_scale` [out, 1] (strategy "channel"), [1] (strategy "tensor") or
//    [ceil(out/br), ceil(in/bc)] (strategy "block"); w = q · s.
// Activations are quantized per token at run time by the backend in both (activation_scheme
// "dynamic"); a static input scale, where a checkpoint has one, is not used.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/core/status.h"

namespace kiln::model {

enum class Fp8Scaling {
  kNone,     // not quantized
  kBlock,    // one scale per [block_rows, block_cols] tile
  kChannel,  // one scale per output row
  kTensor,   // one scale for the whole matrix
};

enum class Fp8Layout {
  kFp8,                // quant_method "fp8": scales in "<module>.weight_scale_inv"
  kCompressedTensors,  // quant_method "compressed-tensors": scales in "<module>.weight_scale"
};

struct QuantizationConfig {
  Fp8Scaling scaling = Fp8Scaling::kNone;
  Fp8Layout layout = Fp8Layout::kFp8;
  int64_t block_rows = 128, block_cols = 128;  // kBlock
  // Modules left in bf16. compressed-tensors' `ignore`: exact module names or "re:" regexes that
  // must match the whole name; fp8's `modules_to_not_convert`: a module is skipped when any entry
  // is a substring of its name, as transformers does.
  std::vector<std::string> ignore;
  bool ignore_by_substring = false;
  // Not from config.json: the checkpoint is bf16 and kiln quantizes its linear layers block-wise
  // (128 x 128) while loading (`--quantize fp8`).
  bool quantize_at_load = false;

  bool quantized() const { return scaling != Fp8Scaling::kNone; }
  // Whether the linear layer `module` ("model.layers.0.self_attn.q_proj") holds FP8 weights.
  // Embeddings, norms and lm_head never do: callers ask only for decoder projections, and lm_head
  // stays in the checkpoint's dtype even where a list forgets it.
  bool covers(std::string_view module) const;
  // "<module>.weight_scale_inv" or "<module>.weight_scale".
  std::string scale_name(std::string_view module) const;
  // The scale tensor's shape for an [out, in] weight.
  std::vector<int64_t> scale_shape(int64_t out, int64_t in) const;
};

// Reads config.json's `quantization_config` object (given as JSON text). Methods and fields kiln
// cannot run (another quant_method, fmt "e5m2", integer weights, ...) are errors naming the field.
Result<QuantizationConfig> parse_quantization_config(std::string_view json_text, std::string_view source);
// The `quantization_config` object as JSON text that parse_quantization_config reads back, for
// `kiln make-model`; empty when not quantized.
std::string quantization_config_to_json(const QuantizationConfig& q);

// The config of a checkpoint `kiln make-model --fp8 block|channel` writes and `--quantize fp8` uses.
QuantizationConfig fp8_block_config();    // fp8, 128 x 128, dynamic activations
QuantizationConfig fp8_channel_config();  // compressed-tensors FP8-dynamic, ignore lm_head

}  // namespace kiln::model
