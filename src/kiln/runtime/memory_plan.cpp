#include "kiln/runtime/memory_plan.h"

#include <unistd.h>

#include <algorithm>
#include <limits>
#include <string>

#include "kiln/core/str.h"
#include "kiln/runtime/engine.h"
#include "kiln/runtime/models/llama.h"
#include "kiln/runtime/step_metadata.h"
#include "kiln/runtime/weights.h"

namespace kiln::runtime {
namespace {

// CUDA memory the engine's load does not size itself: cuBLASLt's workspace, the attention
// split-K partials and the sampler's inputs (per-thread scratch that grows to the largest step).
// The GPU test holds the measured workspace under the plan that includes it.
constexpr int64_t kCudaScratchAllowance = int64_t{256} << 20;

int64_t planned_workspace(const model::ModelConfig& c, Device device, const EngineLimits& l) {
  const int64_t rows = l.max_seqs;
  const int64_t logits = rows * c.vocab_size * 4;  // f32 logits of the sampled rows
  if (device.kind == DeviceKind::kCpu) {
    return models::LlamaModel::planned_workspace_bytes(c, device, l.max_batched_tokens, rows) + logits;
  }
  // A decode step is padded to its graph bucket (up to max_seqs tokens), which may pass the budget.
  const int64_t tokens = std::max<int64_t>(l.max_batched_tokens, l.max_seqs);
  const int64_t cap_blocks = step_meta_block_capacity(l.max_seqs, l.max_model_len, l.block_size);
  const int64_t meta = static_cast<int64_t>(StepMetaLayout::make(tokens, l.max_seqs, cap_blocks).total +
                                            StepMetaLayout::make(l.max_seqs, l.max_seqs, cap_blocks).total) *
                       4;
  // The sampler's working copy of the logits is as large as the logits.
  return models::LlamaModel::planned_workspace_bytes(c, device, tokens, rows) + 2 * logits + meta +
         kCudaScratchAllowance;
}

}  // namespace

int64_t kv_bytes_per_block(const model::ModelConfig& c, DeviceKind device, int block_size) {
  return 2 * c.num_layers * int64_t{block_size} * c.num_kv_heads * c.head_dim *
         static_cast<int64_t>(dtype_size(compute_dtype(Device{device, 0})));
}

int32_t default_prefill_chunk(DeviceKind device) {
  // CUDA: 2048 tokens keep the GEMMs at full efficiency (vLLM's step budget for a server on most
  // GPUs) while a step stays in the tens of milliseconds. CPU: the f32 kernels are a hundred
  // times slower per token and reach their speed at a few dozen rows, so a smaller chunk.
  return device == DeviceKind::kCuda ? 2048 : 256;
}

int32_t default_max_batched_tokens(DeviceKind device, int32_t max_seqs) {
  // CUDA: a step of 8,192 tokens still takes tens of milliseconds. CPU: the f32 kernels prefill
  // a few thousand tokens a second on a few cores, so 32 prompts of 128 tokens in one step of
  // 4,096 held every one of them (and every running sequence) for over a second; a step of 512
  // gives the first prompts their first token after a fifth of that, and the kernels are at full
  // speed from a few dozen rows (docs/scheduling.md has the measurements). At least max_seqs, so
  // that every running sequence decodes in every step.
  if (device == DeviceKind::kCuda) return 8192;
  return std::max(512, max_seqs);
}

Result<MemoryPlan> plan_memory(const model::ModelConfig& c, const EngineOptions& o) {
  if (o.block_size <= 0) return invalid_argument(str_cat("engine: block_size ", o.block_size, " must be positive"));
  if (o.max_batched_tokens < 0 || o.max_seqs <= 0)
    return invalid_argument("engine: max_batched_tokens must not be negative and max_seqs must be positive");
  if (o.kv_cache_bytes < 0 || o.memory_budget < 0)
    return invalid_argument("engine: kv_cache_bytes and memory_budget must not be negative");
  MemoryPlan p;
  p.device = Device{o.device, o.device_index};
  EngineLimits& l = p.limits;
  l.max_seqs = o.max_seqs;
  l.max_batched_tokens =
      o.max_batched_tokens > 0 ? o.max_batched_tokens : default_max_batched_tokens(o.device, o.max_seqs);
  l.block_size = o.block_size;
  l.max_model_len = o.max_model_len > 0 ? o.max_model_len : c.max_position_embeddings;
  if (l.max_model_len <= 0 || l.max_model_len > (int64_t{1} << 30))
    return invalid_argument(str_cat("engine: max_model_len ", l.max_model_len, " is not usable"));
  l.prefill_chunk = std::min(default_prefill_chunk(o.device), l.max_batched_tokens);

  KILN_ASSIGN_OR_RETURN(p.weight_dtype, resolve_weight_dtype(o.weight_dtype, o.device, c.torch_dtype));
  p.weights_bytes = models::LlamaModel::planned_weights_bytes(c, p.device, p.weight_dtype, l.max_model_len);
  p.workspace_bytes = planned_workspace(c, p.device, l);
  if (p.device.kind == DeviceKind::kCuda) {
    p.workspace_on_first_use_bytes = kCudaScratchAllowance + int64_t{l.max_seqs} * c.vocab_size * 4;
  }
  p.kv_bytes_per_block = kv_bytes_per_block(c, o.device, o.block_size);
  if (p.kv_bytes_per_block <= 0) return invalid_argument("engine: the model's KV cache has no size");

  // More blocks than max_seqs sequences of the whole context can hold would never be used.
  const int64_t blocks_per_seq = (l.max_model_len + o.block_size - 1) / o.block_size;
  const int64_t fill_bytes = int64_t{o.max_seqs} * blocks_per_seq * p.kv_bytes_per_block;
  int64_t kv = 0;
  std::string source;
  if (o.kv_cache_bytes > 0) {
    kv = o.kv_cache_bytes;
    source = "kv_cache_bytes";
  } else if (o.memory_budget > 0) {
    kv = std::min(o.memory_budget - p.weights_bytes - p.workspace_bytes, fill_bytes);
    source = str_cat("the memory budget of ", format_bytes(double(o.memory_budget)));
  } else if (o.device == DeviceKind::kCpu) {
    const int64_t phys = static_cast<int64_t>(sysconf(_SC_PHYS_PAGES)) * static_cast<int64_t>(sysconf(_SC_PAGE_SIZE));
    kv = std::min(fill_bytes, phys / 4);
    source = "a quarter of physical memory";
  } else {
    return invalid_argument("engine: a CUDA memory plan needs kv_cache_bytes or a memory budget");
  }
  const int64_t blocks = std::min<int64_t>(std::max<int64_t>(kv, 0) / p.kv_bytes_per_block,
                                           std::numeric_limits<int32_t>::max());
  if (blocks <= 0) {
    return resource_exhausted(str_cat("engine: no room for a KV block of ", format_bytes(double(p.kv_bytes_per_block)),
                                      " in ", source, " (weights ", format_bytes(double(p.weights_bytes)),
                                      ", workspace ", format_bytes(double(p.workspace_bytes)), ")"));
  }
  l.num_kv_blocks = static_cast<int32_t>(blocks);
  p.kv_cache_bytes = blocks * p.kv_bytes_per_block;
  return p;
}

Result<int64_t> default_memory_budget(DeviceKind device, int device_index, double gpu_memory_fraction) {
  int64_t free_bytes = 0, total = 0;
  KILN_RETURN_IF_ERROR(device_memory_info(device, device_index, &free_bytes, &total));
  if (device == DeviceKind::kCpu) return static_cast<int64_t>(static_cast<double>(free_bytes) * 0.9);
  if (!(gpu_memory_fraction > 0.0 && gpu_memory_fraction <= 1.0))
    return invalid_argument(str_cat("gpu_memory_fraction ", gpu_memory_fraction, " is not in (0, 1]"));
  const int64_t budget = static_cast<int64_t>(gpu_memory_fraction * static_cast<double>(total)) - (total - free_bytes);
  if (budget <= 0) {
    return resource_exhausted(str_cat("no memory left on ", device_string({device, device_index}), ": ",
                                      format_bytes(double(total - free_bytes)), " of ", format_bytes(double(total)),
                                      " are in use, more than gpu_memory_fraction ", gpu_memory_fraction, " of it"));
  }
  return budget;
}

}  // namespace kiln::runtime
