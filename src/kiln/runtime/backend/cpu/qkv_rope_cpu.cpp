#include <cmath>

#include "kiln/core/str.h"
#include "kiln/runtime/backend/cpu/kernels_cpu.h"
#include "kiln/runtime/backend/cpu/parallel_cpu.h"

namespace kiln::runtime::cpu {
namespace {

// Per-head RMSNorm (qwen3), as rms_norm over one head.
void norm_head(float* x, const float* w, int64_t d, float eps) {
  double ss = 0.0;
  for (int64_t j = 0; j < d; ++j) ss += static_cast<double>(x[j]) * static_cast<double>(x[j]);
  const float inv = 1.0f / std::sqrt(static_cast<float>(ss / static_cast<double>(d)) + eps);
  for (int64_t j = 0; j < d; ++j) x[j] = w[j] * (x[j] * inv);
}

// x * cos + rotate_half(x) * sin, where rotate_half(x) = [-x2, x1].
void rope_head(float* x, const float* cos, const float* sin, int64_t d) {
  const int64_t half = d / 2;
  for (int64_t j = 0; j < half; ++j) {
    const float x1 = x[j], x2 = x[j + half];
    x[j] = x1 * cos[j] + (-x2) * sin[j];
    x[j + half] = x2 * cos[j] + x1 * sin[j];
  }
}

}  // namespace

Status qkv_rope_cache(const DeviceContext& ctx, const Tensor& qkv, const Tensor& positions, const Tensor& slot_mapping,
                      const Tensor& q_norm, const Tensor& k_norm, const Tensor& rope_table,
                      const ops::QkvParams& p, const Tensor& kv_cache) {
  const int64_t n = qkv.dim(0), h = p.num_heads, kvh = p.num_kv_heads, d = p.head_dim;
  const int64_t width = (h + 2 * kvh) * d;
  const int64_t max_pos = rope_table.dim(0);
  const int64_t block_size = kv_cache.dim(2);
  const int64_t num_slots = kv_cache.dim(0) * block_size;
  const int32_t* pos = positions.data<int32_t>();
  const int32_t* slots = slot_mapping.data<int32_t>();
  for (int64_t i = 0; i < n; ++i) {
    if (pos[i] < 0 || pos[i] >= max_pos)
      return invalid_argument(str_cat("qkv_rope_cache: position ", pos[i], " of token ", i, " is outside [0, ", max_pos, ")"));
    if (slots[i] < 0 || slots[i] >= num_slots)
      return invalid_argument(str_cat("qkv_rope_cache: slot ", slots[i], " of token ", i, " is outside [0, ", num_slots, ")"));
  }
  float* base = qkv.data<float>();
  const float* table = rope_table.data<float>();
  const float* qn = q_norm.empty() ? nullptr : q_norm.data<float>();
  const float* kn = k_norm.empty() ? nullptr : k_norm.data<float>();
  float* cache = kv_cache.data<float>();
  const int64_t token_kv = kvh * d;  // floats of one token's K (or V) in the cache
  parallel_for(ctx, n, 4, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      float* row = base + i * width;
      float* q = row;
      float* k = row + h * d;
      const float* v = k + kvh * d;
      const float* cos = table + static_cast<int64_t>(pos[i]) * d;
      const float* sin = cos + d / 2;
      for (int64_t hh = 0; hh < h; ++hh) {
        if (qn != nullptr) norm_head(q + hh * d, qn, d, p.qk_norm_eps);
        rope_head(q + hh * d, cos, sin, d);
      }
      for (int64_t hh = 0; hh < kvh; ++hh) {
        if (kn != nullptr) norm_head(k + hh * d, kn, d, p.qk_norm_eps);
        rope_head(k + hh * d, cos, sin, d);
      }
      const int64_t block = slots[i] / block_size, offset = slots[i] % block_size;
      float* kdst = cache + ((block * 2 + 0) * block_size + offset) * token_kv;
      float* vdst = cache + ((block * 2 + 1) * block_size + offset) * token_kv;
      for (int64_t j = 0; j < token_kv; ++j) {
        kdst[j] = k[j];
        vdst[j] = v[j];
      }
    }
  });
  return Status::ok();
}

}  // namespace kiln::runtime::cpu
