// Helpers shared by the runtime tests: host tensors over vectors, seeded random data.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "kiln/runtime/device_context.h"
#include "kiln/runtime/tensor.h"

namespace kiln::runtime::testing {

inline Tensor host_f32(std::vector<float>& v, std::initializer_list<int64_t> shape) {
  return Tensor(v.data(), DType::kF32, Device::cpu(), shape);
}
inline Tensor host_i32(std::vector<int32_t>& v) {
  return Tensor(v.data(), DType::kI32, Device::cpu(), {static_cast<int64_t>(v.size())});
}

inline std::vector<float> random_vector(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// Largest |a - b| relative to the largest |b| (the fidelity metric).
inline double rel_error(const std::vector<float>& a, const std::vector<double>& b) {
  double err = 0.0, scale = 1e-30;
  for (size_t i = 0; i < a.size(); ++i) {
    err = std::max(err, std::abs(static_cast<double>(a[i]) - b[i]));
    scale = std::max(scale, std::abs(b[i]));
  }
  return err / scale;
}

}  // namespace kiln::runtime::testing
