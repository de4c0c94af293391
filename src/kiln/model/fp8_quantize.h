// FP8 (e4m3fn) quantization and dequantization of [rows, cols] row-major f32 matrices, with the
// scales laid out as the checkpoint formats store them (model/fp8_format.h). Quantizers use the
// formats' recipe: scale = amax / 448 over the block (row, tensor), q = e4m3(w / scale) rounded to
// nearest even; an all-zero block gets scale 1.
#pragma once

#include <cstdint>
#include <vector>

#include "kiln/model/fp8_format.h"

namespace kiln::model {

// The f32 scale values of `q`'s layout for an [rows, cols] matrix: block [ceil(rows/br),
// ceil(cols/bc)], channel [rows], tensor [1].
int64_t fp8_scale_count(const QuantizationConfig& q, int64_t rows, int64_t cols);

// The scales [fp8_scale_count] of w: amax / 448 per block (row, tensor).
void fp8_scales(const QuantizationConfig& q, const float* w, int64_t rows, int64_t cols, float* scales);

// codes of elements [first, first + count) (row-major flat indices) of an [rows, cols] matrix whose
// values there are w[0, count), under `scales`.
void fp8_encode(const QuantizationConfig& q, const float* scales, int64_t cols, int64_t first, int64_t count,
                const float* w, uint8_t* codes);

// codes [rows * cols] and scales [fp8_scale_count] from w.
void quantize_fp8(const QuantizationConfig& q, const float* w, int64_t rows, int64_t cols, uint8_t* codes,
                  float* scales);

// w[i][j] = e4m3(codes[i][j]) · scale of (i, j), in f32, exactly (one rounding: the product).
void dequantize_fp8(const QuantizationConfig& q, const uint8_t* codes, const float* scales, int64_t rows, int64_t cols,
                    float* w);

// The scale of each row's 128-column group, [ceil(cols / 128), rows] (column group major), for
// the CUDA kernels: exact for every layout whose block columns are a multiple of 128. False when
// they are not (the caller then keeps the matrix dequantized).
bool fp8_group_scales(const QuantizationConfig& q, const float* scales, int64_t rows, int64_t cols,
                      std::vector<float>* group_scales);

}  // namespace kiln::model
