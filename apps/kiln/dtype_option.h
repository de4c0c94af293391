// --dtype (and its spelling --quantize q8) for the commands that load an engine.
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
  sub.add_option("--quantize", *quantize, "q8: quantize the weights at load (the same as --dtype q8)")
      ->envname("KILN_QUANTIZE");
}

// The dtype the options ask for; --quantize wins over a --dtype left at auto.
inline Result<runtime::WeightDType> chosen_dtype(const std::string& dtype, const std::string& quantize) {
  runtime::WeightDType t = runtime::WeightDType::kAuto;
  if (!runtime::parse_weight_dtype(dtype, &t))
    return invalid_argument(str_cat("--dtype must be auto, f32, bf16 or q8, not '", dtype, "'"));
  if (quantize.empty()) return t;
  if (quantize != "q8") return invalid_argument(str_cat("--quantize must be q8, not '", quantize, "'"));
  if (t != runtime::WeightDType::kAuto && t != runtime::WeightDType::kQ8)
    return invalid_argument(str_cat("--quantize q8 contradicts --dtype ", dtype));
  return runtime::WeightDType::kQ8;
}

}  // namespace kiln::app
