#include "kiln/pool/memory.h"

#include <algorithm>

#include "kiln/core/str.h"

namespace kiln::pool {

namespace {

int64_t compute_dtype_bytes(runtime::DeviceKind device) { return device == runtime::DeviceKind::kCuda ? 2 : 4; }

}  // namespace

int64_t kv_bytes_per_block(const model::ModelConfig& c, runtime::DeviceKind device, int block_size) {
  return 2 * c.num_layers * int64_t{block_size} * c.num_kv_heads * c.head_dim * compute_dtype_bytes(device);
}

ModelMemory estimate_model_memory(const model::ModelConfig& c, const runtime::EngineOptions& o) {
  const int64_t dt = compute_dtype_bytes(o.device);
  const int64_t h = c.hidden_size, v = c.vocab_size, inter = c.intermediate_size;
  const int64_t q = c.q_size(), kv = c.kv_size();
  const int64_t max_len = o.max_model_len > 0 ? o.max_model_len : c.max_position_embeddings;

  int64_t elems = 2 * v * h + h;  // embeddings, lm_head, final norm
  int64_t per_layer = 2 * h + h * (q + 2 * kv) + q * h + h * 2 * inter + inter * h;
  if (c.qk_norm) per_layer += 2 * c.head_dim;
  if (c.attention_bias) per_layer += q + 2 * kv;
  if (c.attention_out_bias) per_layer += h;
  if (c.mlp_bias) per_layer += 2 * inter + h;
  elems += c.num_layers * per_layer;
  ModelMemory m;
  m.weights = elems * dt + max_len * c.head_dim * 4;  // the RoPE table is f32 on every device

  const int64_t per_block = kv_bytes_per_block(c, o.device, o.block_size);
  if (per_block > 0 && o.kv_cache_bytes > 0) m.kv_cache = (o.kv_cache_bytes / per_block) * per_block;

  const int64_t n = std::max<int32_t>(o.max_batched_tokens, 1);
  const int64_t rows = std::max<int32_t>(o.max_seqs, 1);
  const int64_t per_token = 3 * h + 2 * q + 2 * kv + 3 * inter;
  if (o.device == runtime::DeviceKind::kCuda) {
    // As the CUDA engine reserves it: activations, two f32 logits buffers, and room for cuBLAS.
    m.workspace = n * per_token * dt + rows * h * dt + 2 * rows * v * 4 + (int64_t{256} << 20);
  } else {
    m.workspace = n * per_token * dt + rows * h * dt + rows * v * 4;
  }
  return m;
}

ModelMemory accounted_memory(const runtime::MemoryUsage& measured, const ModelMemory& estimate) {
  ModelMemory m;
  m.weights = measured.weights_bytes;
  m.kv_cache = measured.kv_cache_bytes;
  m.workspace = std::max(measured.workspace_bytes, estimate.workspace);
  return m;
}

Result<int64_t> default_memory_budget(runtime::DeviceKind device, int device_index) {
  int64_t free_bytes = 0, total = 0;
  KILN_RETURN_IF_ERROR(runtime::device_memory_info(device, device_index, &free_bytes, &total));
  return static_cast<int64_t>(static_cast<double>(free_bytes) * 0.9);
}

}  // namespace kiln::pool
