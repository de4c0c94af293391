// --dtype and --quantize (q8 on the CPU, fp8 on CUDA) for the commands that load an engine.
#pragma once

#include <string>

#include <CLI/CLI.hpp>

#include "kiln/core/str.h"
#include "kiln/runtime/weight_dtype.h"

namespace kiln::app {

inline void add_dtype_options(CLI::App& sub, std::string* dtype, std::string* quantize) {
  sub.add_option("--dtype", *dtype,
                 "Linear weights on the CPU: f32 (reference), bf16, q8 (8-bit blocks), or auto (bf16 when the "
                 "CPU has AVX-512 BF16 and the checkpoint is not f32, else f32)")
      ->envname("KILN_DTYPE")
      ->capture_default_str();
  sub.add_option("--quantize", *quantize,
                 "q8: quantize the weights at load on the CPU (the same as --dtype q8); fp8: quantize a bf16 "
                 "checkpoint's decoder projections to FP8 e4m3 (128x128 block scales) on CUDA")
      ->envname("KILN_QUANTIZE");
}

// What --dtype and --quantize ask for: the CPU weight dtype, and whether CUDA quantizes to FP8.
struct WeightChoice {
  runtime::WeightDType dtype = runtime::WeightDType::kAuto;
  bool fp8 = false;
};

// --quantize q8 wins over a --dtype left at auto.
inline Result<WeightChoice> chosen_weights(const std::string& dtype, const std::string& quantize) {
  WeightChoice c;
  if (!runtime::parse_weight_dtype(dtype, &c.dtype))
    return invalid_argument(str_cat("--dtype must be auto, f32, bf16 or q8, not '", dtype, "'"));
  if (quantize.empty()) return c;
  if (quantize == "fp8") {
    c.fp8 = true;
    return c;
  }
  if (quantize != "q8") return invalid_argument(str_cat("--quantize must be q8 or fp8, not '", quantize, "'"));
  if (c.dtype != runtime::WeightDType::kAuto && c.dtype != runtime::WeightDType::kQ8)
    return invalid_argument(str_cat("--quantize q8 contradicts --dtype ", dtype));
  c.dtype = runtime::WeightDType::kQ8;
  return c;
}

}  // namespace kiln::app
