// Mixture-of-experts routing: the router's top-k per token, the (token, expert) pairs grouped by
// expert, the experts' grouped GEMMs (CUDA) and the weighted combine of the experts' outputs. On
// the CPU the expert MLPs run as ordinary linear/swiglu ops over each expert's contiguous run of
// rows (runtime/models/moe_block.h); on CUDA the grouped GEMMs below run every expert in one launch.
//
// Numerics follow transformers' Qwen3MoeSparseMoeBlock and MixtralSparseMoeBlock: softmax of the
// router logits in f32 over all experts, the top-k probabilities, divided by their sum when
// `normalize` is set (norm_topk_prob; always for Mixtral, where it equals a softmax over the chosen
// logits). Each token's result depends on its own row only: routing, permutation and combine do not
// look at the rest of the batch, and the combine adds a token's k experts in its top-k order.
#pragma once

#include <cstdint>
#include <span>

#include "kiln/runtime/buffer.h"
#include "kiln/runtime/device_context.h"
#include "kiln/runtime/ops/linear.h"
#include "kiln/runtime/tensor.h"

namespace kiln::runtime::ops {

struct MoeRouting {
  int64_t num_experts = 0;  // E
  int64_t top_k = 0;        // k, 1 <= k <= E
  bool normalize = false;   // renormalise the k probabilities to sum to 1
};

// router_logits: [n, E] (compute dtype). topk_ids: [n, k] I32, by falling probability (the lower
// expert id first on ties); topk_weights: [n, k] F32.
Status moe_route(const DeviceContext& ctx, const Tensor& router_logits, const MoeRouting& routing,
                 const Tensor& topk_ids, const Tensor& topk_weights);

// Groups the n * k pairs (token t, slot j) by expert, tokens in order within an expert (a stable
// counting sort). expert_start: [E + 1] I32, the pairs of expert e are sorted rows
// expert_start[e] .. expert_start[e + 1]); sorted_tokens: [n * k] I32, the token of each sorted row;
// pair_row: [n * k] I32, the sorted row of pair t * k + j. Expert ids outside [0, E) are an error
// on the CPU; the CUDA kernel clamps them instead (reporting would need a host round trip), as it
// does rows outside expert_out in moe_combine. moe_route never writes such ids.
Status moe_permute(const DeviceContext& ctx, const Tensor& topk_ids, int64_t num_experts, const Tensor& expert_start,
                   const Tensor& sorted_tokens, const Tensor& pair_row);

// moe_route, then moe_permute of the ids it wrote: the same results, in one launch on CUDA where
// the step is decode-sized (the routing of a few tokens is latency, not work).
Status moe_route_permute(const DeviceContext& ctx, const Tensor& router_logits, const MoeRouting& routing,
                         const Tensor& topk_ids, const Tensor& topk_weights, const Tensor& expert_start,
                         const Tensor& sorted_tokens, const Tensor& pair_row);

// out[t] += sum over j of topk_weights[t, j] * expert_out[pair_row[t * k + j]], summed first (in
// sorted-row order, i.e. by expert, as transformers does) and then added to out[t] once.
// expert_out: [n * k, H]; out: [n, H] (compute dtype).
Status moe_combine(const DeviceContext& ctx, const Tensor& expert_out, const Tensor& pair_row,
                   const Tensor& topk_weights, const Tensor& out);

// One projection of every expert ([N, K] each), addressed by expert id from device memory, so that
// a grouped GEMM finds each expert's weight without the host. `table` holds the device address of
// each expert's weight; the LinearWeights it was built from own the memory and must outlive it.
struct GroupedLinearWeight {
  Buffer table;  // [E] I64
  int64_t num_experts = 0;
  int64_t out_features = 0;  // N
  int64_t in_features = 0;   // K
};

// Whether the grouped GEMMs can take these experts' weights on ctx: a CUDA build and device, every
// weight plain bf16 [N, K] of one shape without bias, K a multiple of 8 (16-byte rows). Where they
// cannot (FP8 weights, the CPU), the experts run one linear_swiglu and one linear each.
bool grouped_linear_supported(const DeviceContext& ctx, std::span<const LinearWeight> experts);

// The table of `experts` (grouped_linear_supported must hold). Synchronises ctx: a load-time call.
Result<GroupedLinearWeight> group_linear_weights(const DeviceContext& ctx, std::span<const LinearWeight> experts);

// For each expert e and each sorted row r in [expert_start[e], expert_start[e + 1]):
// out[r] = swiglu(x_r · W_eᵀ) for a fused [gate; up] W_e of 2 * I rows (moe_grouped_linear_swiglu),
// or out[r] = x_r · W_eᵀ (moe_grouped_linear). x_r is x[r] (x: [P, K], rows grouped by expert as
// moe_permute leaves them) or, with x_row ([P] I32, moe_permute's sorted_tokens), x[x_row[r]]
// (x: [n, K], the step's tokens): the rows are gathered as they are read, with no copy. The values
// are those of ops::linear_swiglu and ops::linear over each expert's rows: f32 accumulation, gate
// and up rounded to bf16 before the SwiGLU, the result rounded to bf16. expert_start: [E + 1] I32
// on the device, read only there (no host round trip, so the step can be a CUDA graph); out:
// [P, I] or [P, N]. Rows outside every expert's run are left untouched. CUDA only (the CPU's
// experts run the per-expert ops). max_rows, where known, bounds any expert's rows: the step's
// tokens, since a token picks an expert at most once. It only picks the kernel (decode-sized steps
// stream the experts' weights through a GEMV), never the values; 0 means unknown.
Status moe_grouped_linear_swiglu(const DeviceContext& ctx, const Tensor& x, const Tensor& expert_start,
                                 const GroupedLinearWeight& w, const Tensor& out, int64_t max_rows = 0,
                                 const Tensor* x_row = nullptr);
Status moe_grouped_linear(const DeviceContext& ctx, const Tensor& x, const Tensor& expert_start,
                          const GroupedLinearWeight& w, const Tensor& out, int64_t max_rows = 0,
                          const Tensor* x_row = nullptr);

}  // namespace kiln::runtime::ops
