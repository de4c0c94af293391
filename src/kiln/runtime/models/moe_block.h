// The sparse MLP of a mixture-of-experts decoder layer (Qwen3-MoE, Mixtral): a router, top-k
// routing, each expert's SwiGLU over the rows routed to it, and the weighted combine.
//
// The (token, expert) pairs are grouped by expert (ops::moe_permute), so each expert runs one GEMM
// over a contiguous run of rows and an expert no token chose is never read: at batch 1 a step reads
// the router and top-k experts only. On CUDA (plain bf16 experts) two grouped GEMMs run every
// expert in one launch each, reading the run boundaries from device memory: no host round trip, so
// MoE decode steps run as CUDA graphs. On the CPU, and for expert weights the grouped GEMMs cannot
// take, the boundaries are read on the host (free on the CPU; a copy and a stream sync per layer on
// CUDA, which keeps such a model out of CUDA graphs) and each expert runs its own ops.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kiln/core/status.h"
#include "kiln/model/checkpoint.h"
#include "kiln/model/config.h"
#include "kiln/runtime/buffer.h"
#include "kiln/runtime/ops/linear.h"
#include "kiln/runtime/ops/moe.h"

namespace kiln::runtime::models {

// Activations of the MoE layers of a step of up to `tokens` tokens (one set, shared by the layers).
struct MoeWorkspace {
  int64_t tokens = 0;
  Buffer logits;         // [n, E] compute dtype
  Buffer topk_ids;       // [n, k] I32
  Buffer topk_weights;   // [n, k] F32
  Buffer expert_start;   // [E + 1] I32
  Buffer sorted_tokens;  // [n * k] I32
  Buffer pair_row;       // [n * k] I32
  Buffer gathered;       // [n * k, hidden]; empty where the experts are grouped (they gather x)
  Buffer gate_up;        // [n * k, 2 * moe_intermediate]; empty where the experts are grouped
  Buffer act;            // [n * k, moe_intermediate]
  Buffer expert_out;     // [n * k, hidden]
  std::vector<int32_t> host_start;  // expert_start copied back, for the per-expert loop off the CPU

  Status ensure(const DeviceContext& ctx, const model::ModelConfig& config, int64_t n);
  int64_t bytes() const;
  // What ensure() allocates for `n` tokens (0 for a model without experts).
  static int64_t planned_bytes(const model::ModelConfig& config, Device device, int64_t n);
};

class MoeBlock {
 public:
  // The router and experts of the layer whose tensors start with `layer_prefix`
  // ("model.layers.3."), named as model::moe_tensor_names() says.
  static Result<MoeBlock> load(const DeviceContext& ctx, const model::ModelConfig& config, const model::Checkpoint& ck,
                               const std::string& layer_prefix);
  static int64_t planned_weights_bytes(const model::ModelConfig& config, Device device, WeightDType dtype);
  int64_t weights_bytes() const;
  // Whether the experts of `config` run as grouped GEMMs on `device`: CUDA, with hidden and expert
  // sizes that are multiples of 8 (the experts are always loaded plain bf16). The workspace and the
  // memory plan follow it; load() checks the weights agree.
  static bool grouped_on(const model::ModelConfig& config, Device device);
  // Whether forward runs the grouped GEMMs: no host round trip, so a step may be a CUDA graph.
  bool grouped() const { return !grouped_gate_up_.table.empty(); }

  // out += moe(x). x: [n, hidden], the layer's normalised input; out: [n, hidden] (the residual).
  Status forward(const DeviceContext& ctx, const Tensor& x, MoeWorkspace& ws, const Tensor& out) const;

 private:
  int64_t num_experts_ = 0, top_k_ = 0;
  bool normalize_ = false;
  ops::LinearWeight router_;                         // [E, hidden]
  std::vector<ops::LinearWeight> gate_up_, down_;    // per expert: [2 I, hidden], [hidden, I]
  ops::GroupedLinearWeight grouped_gate_up_, grouped_down_;  // their tables, where grouped()
};

}  // namespace kiln::runtime::models
