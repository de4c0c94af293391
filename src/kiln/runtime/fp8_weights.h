// Linear layers of FP8 checkpoints (model/fp8_format.h), and of bf16 checkpoints quantized while
// loading (`--quantize fp8`). The CPU backend computes in f32: it dequantizes at load, exactly as
// the format defines (w = e4m3 code · scale), and is the reference. CUDA keeps the e4m3 codes (one
// byte a weight) with one f32 scale per row and 128-column group, which every published layout
// maps onto exactly; a layout that does not (block columns not a multiple of 128, K not a multiple
// of 16) is dequantized to bf16 instead.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "kiln/core/status.h"
#include "kiln/model/checkpoint.h"
#include "kiln/model/config.h"
#include "kiln/model/fp8_format.h"
#include "kiln/runtime/ops/linear.h"

namespace kiln::runtime {

// With `quantize` (`--quantize fp8`) and a config that is not quantized already: marks `config` so
// that its projections are quantized block-wise (128 x 128) while loading.
void quantize_at_load(bool quantize, model::ModelConfig* config);

// Whether the linear layer stacked from `modules` is FP8 under `q`: all of them covered by it (a
// stack mixing FP8 and plain parts is loaded plain, dequantized).
bool fp8_linear(const model::QuantizationConfig& q, std::span<const std::string> modules);

// One FP8 matrix in host memory: e4m3 codes and its scales in the layout of `config`.
struct Fp8HostMatrix {
  std::vector<uint8_t> owned_codes;  // when quantized at load; else `codes` points into the checkpoint
  const uint8_t* codes = nullptr;    // [rows, cols]
  std::vector<float> scales;         // model::fp8_scale_count(config, rows, cols) values
  model::QuantizationConfig config;
  int64_t rows = 0, cols = 0;
  std::string name;
};

// Reads "<module>.weight" ([rows, cols] F8_E4M3) and its scale tensor from `ck`, or, with
// q.quantize_at_load, quantizes the plain weight block-wise.
Result<Fp8HostMatrix> read_fp8_matrix(const model::Checkpoint& ck, const model::QuantizationConfig& q,
                                      const std::string& module, int64_t rows, int64_t cols);

// Stacks `parts` along the output dimension as ops::load_linear_weight does, for ctx's backend.
Result<ops::LinearWeight> load_fp8_linear_weight(const DeviceContext& ctx, std::span<const Fp8HostMatrix> parts,
                                                 std::span<const HostMatrix> bias_parts = {});

// Bytes load_fp8_linear_weight allocates on a CUDA device for an [n, k] weight (and its [n] bias).
int64_t fp8_linear_weight_bytes(int64_t n, int64_t k, bool bias);

}  // namespace kiln::runtime
