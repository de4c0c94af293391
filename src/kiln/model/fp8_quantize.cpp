#include "kiln/model/fp8_quantize.h"

#include <algorithm>
#include <cmath>

#include "kiln/core/fp8.h"

namespace kiln::model {
namespace {

// The scale of element (i, j) is scales[scale_index(i, j)].
struct ScaleIndex {
  Fp8Scaling scaling;
  int64_t br, bc, blocks_per_row;
  int64_t operator()(int64_t i, int64_t j) const {
    switch (scaling) {
      case Fp8Scaling::kBlock: return (i / br) * blocks_per_row + j / bc;
      case Fp8Scaling::kChannel: return i;
      default: return 0;
    }
  }
};

ScaleIndex scale_index(const QuantizationConfig& q, int64_t cols) {
  return {q.scaling, q.block_rows, q.block_cols, (cols + q.block_cols - 1) / q.block_cols};
}

}  // namespace

int64_t fp8_scale_count(const QuantizationConfig& q, int64_t rows, int64_t cols) {
  switch (q.scaling) {
    case Fp8Scaling::kBlock:
      return ((rows + q.block_rows - 1) / q.block_rows) * ((cols + q.block_cols - 1) / q.block_cols);
    case Fp8Scaling::kChannel: return rows;
    case Fp8Scaling::kTensor: return 1;
    case Fp8Scaling::kNone: break;
  }
  return 0;
}

void fp8_scales(const QuantizationConfig& q, const float* w, int64_t rows, int64_t cols, float* scales) {
  const ScaleIndex at = scale_index(q, cols);
  const int64_t ns = fp8_scale_count(q, rows, cols);
  std::vector<float> amax(static_cast<size_t>(ns), 0.0f);
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) {
      float& a = amax[static_cast<size_t>(at(i, j))];
      a = std::max(a, std::fabs(w[i * cols + j]));
    }
  for (int64_t s = 0; s < ns; ++s) {
    const float a = amax[static_cast<size_t>(s)];
    scales[s] = a > 0.0f ? a / kE4M3Max : 1.0f;
  }
}

void fp8_encode(const QuantizationConfig& q, const float* scales, int64_t cols, int64_t first, int64_t count,
                const float* w, uint8_t* codes) {
  const ScaleIndex at = scale_index(q, cols);
  for (int64_t e = 0; e < count; ++e) {
    const int64_t flat = first + e;
    const float v = w[e] / scales[at(flat / cols, flat % cols)];
    codes[e] = f32_to_e4m3(std::clamp(v, -kE4M3Max, kE4M3Max));
  }
}

void quantize_fp8(const QuantizationConfig& q, const float* w, int64_t rows, int64_t cols, uint8_t* codes,
                  float* scales) {
  fp8_scales(q, w, rows, cols, scales);
  fp8_encode(q, scales, cols, 0, rows * cols, w, codes);
}

void dequantize_fp8(const QuantizationConfig& q, const uint8_t* codes, const float* scales, int64_t rows, int64_t cols,
                    float* w) {
  const ScaleIndex at = scale_index(q, cols);
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) w[i * cols + j] = e4m3_to_f32(codes[i * cols + j]) * scales[at(i, j)];
}

bool fp8_group_scales(const QuantizationConfig& q, const float* scales, int64_t rows, int64_t cols,
                      std::vector<float>* group_scales) {
  if (q.scaling == Fp8Scaling::kBlock && q.block_cols % 128 != 0) return false;
  const ScaleIndex at = scale_index(q, cols);
  const int64_t groups = (cols + 127) / 128;
  group_scales->resize(static_cast<size_t>(groups * rows));
  for (int64_t g = 0; g < groups; ++g)
    for (int64_t i = 0; i < rows; ++i) (*group_scales)[static_cast<size_t>(g * rows + i)] = scales[at(i, g * 128)];
  return true;
}

}  // namespace kiln::model
