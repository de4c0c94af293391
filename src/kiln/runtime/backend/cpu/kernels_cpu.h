// The CPU backend's kernels (f32). The dispatchers in runtime/ops/ check arguments before calling
// these, so the kernels only check what depends on tensor contents (ids, positions, slots).
#pragma once

#include <vector>

#include "kiln/runtime/backend/cpu/isa_cpu.h"
#include "kiln/runtime/ops/linear.h"
#include "kiln/runtime/ops/moe.h"
#include "kiln/runtime/ops/paged_attention.h"
#include "kiln/runtime/ops/qkv_rope.h"
#include "kiln/runtime/ops/sample.h"

namespace kiln::runtime::cpu {

Status embedding(const DeviceContext& ctx, const Tensor& token_ids, const Tensor& table, const Tensor& out);
Status rms_norm(const DeviceContext& ctx, const Tensor& x, const Tensor& weight, float eps, const Tensor& out);
Result<ops::LinearWeight> load_linear_weight(const DeviceContext& ctx, std::span<const HostMatrix> parts,
                                             std::span<const HostMatrix> bias_parts);
Status linear(const DeviceContext& ctx, const Tensor& x, const ops::LinearWeight& w, const Tensor& out);
Status add_into(const DeviceContext& ctx, const Tensor& x, const Tensor& y);  // y += x, same shape
Status swiglu(const DeviceContext& ctx, const Tensor& gate_up, const Tensor& out,
              CpuIsa isa = cpu_isa());  // isa: as paged_attention's
Status gather_rows(const DeviceContext& ctx, const Tensor& x, const Tensor& rows, const Tensor& out);
Status qkv_rope_cache(const DeviceContext& ctx, const Tensor& qkv, const Tensor& positions,
                      const Tensor& slot_mapping, const Tensor& q_norm, const Tensor& k_norm,
                      const Tensor& rope_table, const ops::QkvParams& params, const Tensor& kv_cache);
Status paged_attention(const DeviceContext& ctx, const Tensor& qkv, const Tensor& kv_cache,
                       const Tensor& query_start, const Tensor& kv_len, const Tensor& block_start,
                       const Tensor& block_ids, const ops::AttentionParams& params, const Tensor& out,
                       CpuIsa isa = cpu_isa());  // isa: tests compare them; every one gives the same bits
Status sample(const DeviceContext& ctx, const Tensor& logits, const ops::SamplingBatch& batch,
              std::vector<SampledToken>* out, CpuIsa isa = cpu_isa());  // isa: as paged_attention's
// Mixture-of-experts routing (ops/moe.h) and Gemma's element-wise ops (ops/pointwise.h).
Status moe_route(const DeviceContext& ctx, const Tensor& router_logits, const ops::MoeRouting& routing,
                 const Tensor& topk_ids, const Tensor& topk_weights);
Status moe_permute(const DeviceContext& ctx, const Tensor& topk_ids, int64_t num_experts, const Tensor& expert_start,
                   const Tensor& sorted_tokens, const Tensor& pair_row);
Status moe_combine(const DeviceContext& ctx, const Tensor& expert_out, const Tensor& pair_row,
                   const Tensor& topk_weights, const Tensor& out);
Status geglu(const DeviceContext& ctx, const Tensor& gate_up, const Tensor& out);
Status scale(const DeviceContext& ctx, const Tensor& x, float s);
Status tanh_softcap(const DeviceContext& ctx, const Tensor& x, float cap);
// Sets the logits of the tokens each masked row's mask disallows to -inf, in place.
void mask_logits(const DeviceContext& ctx, const Tensor& logits, const ops::SamplingBatch& batch);

}  // namespace kiln::runtime::cpu
