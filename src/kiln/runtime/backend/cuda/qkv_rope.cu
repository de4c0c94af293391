// Fused QKV post-processing: per-head q/k RMSNorm (qwen3), RoPE, and the write of k and v into the
// paged KV cache. One warp per head; lane l holds the rotation pairs (j, j + D/2) for
// j = l, l + 32, ... so that RoPE needs no data exchange between lanes.
#include "kiln/runtime/backend/cuda/cuda_util.cuh"
#include "kiln/runtime/backend/cuda/kernels.h"

namespace kiln::runtime::cuda {
namespace {

using dev::bf16;

constexpr int kWarps = 4;
constexpr int kMaxPairsPerLane = 4;  // head_dim <= 256

__global__ void qkv_rope_kernel(QkvRopeArgs a) {
  dev::pdl_begin();
  const int64_t token = blockIdx.x;
  const int head = blockIdx.y * kWarps + (threadIdx.x >> 5);
  const int lane = threadIdx.x & 31;
  const int H = a.num_heads, KV = a.num_kv_heads, D = a.head_dim, half = D / 2;
  if (head >= H + 2 * KV) return;
  const int64_t row_width = static_cast<int64_t>(H + 2 * KV) * D;
  bf16* x = reinterpret_cast<bf16*>(a.qkv) + token * row_width + static_cast<int64_t>(head) * D;
  const bool is_q = head < H, is_v = head >= H + KV;

  float lo[kMaxPairsPerLane], hi[kMaxPairsPerLane];
#pragma unroll
  for (int t = 0; t < kMaxPairsPerLane; ++t) {
    const int j = lane + 32 * t;
    lo[t] = j < half ? dev::to_f(x[j]) : 0.0f;
    hi[t] = j < half ? dev::to_f(x[j + half]) : 0.0f;
  }

  if (!is_v) {
    const bf16* norm_w = reinterpret_cast<const bf16*>(is_q ? a.q_norm : a.k_norm);
    if (norm_w != nullptr) {
      float ss = 0.0f;
#pragma unroll
      for (int t = 0; t < kMaxPairsPerLane; ++t) ss += lo[t] * lo[t] + hi[t] * hi[t];
      ss = dev::warp_sum(ss);
      const float rs = rsqrtf(ss / static_cast<float>(D) + a.eps);
#pragma unroll
      for (int t = 0; t < kMaxPairsPerLane; ++t) {
        const int j = lane + 32 * t;
        if (j < half) {
          lo[t] = lo[t] * rs * dev::to_f(norm_w[j]);
          hi[t] = hi[t] * rs * dev::to_f(norm_w[j + half]);
        }
      }
    }
    int64_t pos = a.positions[token];
    pos = pos < 0 ? 0 : (pos >= a.max_positions ? a.max_positions - 1 : pos);
    const float* cs = a.rope_table + pos * D;
#pragma unroll
    for (int t = 0; t < kMaxPairsPerLane; ++t) {
      const int j = lane + 32 * t;
      if (j < half) {
        const float c = cs[j], s = cs[half + j];
        const float l = lo[t], h = hi[t];
        // Round to bf16 here: the cache and the attention see exactly the values written to qkv.
        lo[t] = dev::to_f(dev::to_bf(l * c - h * s));
        hi[t] = dev::to_f(dev::to_bf(h * c + l * s));
        x[j] = dev::to_bf(lo[t]);
        x[j + half] = dev::to_bf(hi[t]);
      }
    }
  }
  if (is_q) return;

  const int32_t slot = a.slot_mapping[token];
  if (slot < 0) return;
  const int kv_head = is_v ? head - H - KV : head - H;
  const int64_t block = slot / a.block_size, offset = slot % a.block_size;
  const int64_t idx = ((block * 2 + (is_v ? 1 : 0)) * a.block_size + offset) * KV * D +
                      static_cast<int64_t>(kv_head) * D;
  bf16* dst = reinterpret_cast<bf16*>(a.kv_cache) + idx;
#pragma unroll
  for (int t = 0; t < kMaxPairsPerLane; ++t) {
    const int j = lane + 32 * t;
    if (j < half) {
      dst[j] = dev::to_bf(lo[t]);
      dst[j + half] = dev::to_bf(hi[t]);
    }
  }
}

}  // namespace

Status launch_qkv_rope_cache(const QkvRopeArgs& a, Stream stream) {
  if (a.head_dim <= 0 || a.head_dim % 2 != 0 || a.head_dim > 2 * 32 * kMaxPairsPerLane) {
    return invalid_argument(str_cat("qkv_rope_cache: head_dim ", a.head_dim, " is not an even number up to ",
                                    2 * 32 * kMaxPairsPerLane));
  }
  if (a.num_tokens == 0) return Status::ok();
  const int heads = a.num_heads + 2 * a.num_kv_heads;
  const dim3 grid(static_cast<unsigned>(a.num_tokens), static_cast<unsigned>((heads + kWarps - 1) / kWarps));
  return launch("qkv_rope_kernel", qkv_rope_kernel, grid, dim3(32 * kWarps), 0, stream, a);
}

}  // namespace kiln::runtime::cuda
