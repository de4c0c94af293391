// Gemma's element-wise CPU kernels (ops/pointwise.h).
#include <algorithm>
#include <cmath>

#include "kiln/runtime/backend/cpu/kernels_cpu.h"
#include "kiln/runtime/backend/cpu/parallel_cpu.h"

namespace kiln::runtime::cpu {
namespace {

int64_t grain(int64_t row) { return std::max<int64_t>(1, 16384 / std::max<int64_t>(1, row)); }

// transformers' gelu_pytorch_tanh (torch's gelu(approximate="tanh")), in f32.
inline float gelu_tanh(float x) {
  constexpr float kBeta = 0.7978845608028654f;  // sqrt(2 / pi)
  constexpr float kKappa = 0.044715f;
  const float inner = kBeta * (x + kKappa * x * x * x);
  return 0.5f * x * (1.0f + std::tanh(inner));
}

}  // namespace

Status geglu(const DeviceContext& ctx, const Tensor& gate_up, const Tensor& out) {
  const int64_t n = out.dim(0), inter = out.dim(1);
  const float* gu = gate_up.data<float>();
  float* o = out.data<float>();
  parallel_for(ctx, n, grain(inter), [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const float* g = gu + i * 2 * inter;
      const float* u = g + inter;
      for (int64_t j = 0; j < inter; ++j) o[i * inter + j] = gelu_tanh(g[j]) * u[j];
    }
  });
  return Status::ok();
}

Status scale(const DeviceContext& ctx, const Tensor& x, float s) {
  const int64_t n = x.dim(0), m = x.dim(1);
  float* p = x.data<float>();
  parallel_for(ctx, n, grain(m), [&](int64_t b, int64_t e) {
    for (int64_t i = b * m; i < e * m; ++i) p[i] *= s;
  });
  return Status::ok();
}

Status tanh_softcap(const DeviceContext& ctx, const Tensor& x, float cap) {
  const int64_t n = x.dim(0), m = x.dim(1);
  float* p = x.data<float>();
  parallel_for(ctx, n, grain(m), [&](int64_t b, int64_t e) {
    for (int64_t i = b * m; i < e * m; ++i) p[i] = std::tanh(p[i] / cap) * cap;
  });
  return Status::ok();
}

}  // namespace kiln::runtime::cpu
