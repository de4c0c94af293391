#include "kiln/runtime/models/moe_block.h"

#include "kiln/core/str.h"
#include "kiln/model/weights_layout.h"
#include "kiln/runtime/models/load_weights.h"
#include "kiln/runtime/ops/gather_rows.h"
#include "kiln/runtime/ops/moe.h"
#include "kiln/runtime/ops/swiglu.h"

namespace kiln::runtime::models {

Status MoeWorkspace::ensure(const DeviceContext& ctx, const model::ModelConfig& c, int64_t n) {
  if (!c.is_moe() || n <= tokens) return Status::ok();
  const DType dt = compute_dtype(ctx.device);
  const int64_t e = c.num_experts, k = c.num_experts_per_tok, mi = c.moe_intermediate_size, h = c.hidden_size;
  KILN_ASSIGN_OR_RETURN(logits, Buffer::allocate(ctx.device, dt, {n, e}));
  KILN_ASSIGN_OR_RETURN(topk_ids, Buffer::allocate(ctx.device, DType::kI32, {n, k}));
  KILN_ASSIGN_OR_RETURN(topk_weights, Buffer::allocate(ctx.device, DType::kF32, {n, k}));
  KILN_ASSIGN_OR_RETURN(expert_start, Buffer::allocate(ctx.device, DType::kI32, {e + 1}));
  KILN_ASSIGN_OR_RETURN(sorted_tokens, Buffer::allocate(ctx.device, DType::kI32, {n * k}));
  KILN_ASSIGN_OR_RETURN(pair_row, Buffer::allocate(ctx.device, DType::kI32, {n * k}));
  if (!MoeBlock::grouped_on(c, ctx.device)) {  // the grouped GEMMs gather x and never write the product
    KILN_ASSIGN_OR_RETURN(gathered, Buffer::allocate(ctx.device, dt, {n * k, h}));
    KILN_ASSIGN_OR_RETURN(gate_up, Buffer::allocate(ctx.device, dt, {n * k, 2 * mi}));
  }
  KILN_ASSIGN_OR_RETURN(act, Buffer::allocate(ctx.device, dt, {n * k, mi}));
  KILN_ASSIGN_OR_RETURN(expert_out, Buffer::allocate(ctx.device, dt, {n * k, h}));
  tokens = n;
  return Status::ok();
}

int64_t MoeWorkspace::bytes() const {
  return logits.nbytes() + topk_ids.nbytes() + topk_weights.nbytes() + expert_start.nbytes() + sorted_tokens.nbytes() +
         pair_row.nbytes() + gathered.nbytes() + gate_up.nbytes() + act.nbytes() + expert_out.nbytes();
}

// Mirrors ensure().
int64_t MoeWorkspace::planned_bytes(const model::ModelConfig& c, Device device, int64_t n) {
  if (!c.is_moe() || n <= 0) return 0;
  const int64_t dt = static_cast<int64_t>(dtype_size(compute_dtype(device)));
  const int64_t e = c.num_experts, k = c.num_experts_per_tok, mi = c.moe_intermediate_size, h = c.hidden_size;
  const int64_t gathered_gate_up = MoeBlock::grouped_on(c, device) ? 0 : h + 2 * mi;
  return n * e * dt + n * k * 4 * 4 + (e + 1) * 4 + n * k * (h + mi + gathered_gate_up) * dt;
}

bool MoeBlock::grouped_on(const model::ModelConfig& c, Device device) {
  return device.kind == DeviceKind::kCuda && c.hidden_size % 8 == 0 && c.moe_intermediate_size % 8 == 0;
}

Result<MoeBlock> MoeBlock::load(const DeviceContext& ctx, const model::ModelConfig& c, const model::Checkpoint& ck,
                                const std::string& layer_prefix) {
  const model::MoeTensorNames names = model::moe_tensor_names(c);
  const int64_t h = c.hidden_size, mi = c.moe_intermediate_size;
  auto strip = [](const std::string& s) { return s.substr(0, s.size() - std::string(".weight").size()); };
  MoeBlock b;
  b.num_experts_ = c.num_experts;
  b.top_k_ = c.num_experts_per_tok;
  b.normalize_ = c.norm_topk_prob;
  KILN_ASSIGN_OR_RETURN(b.router_,
                        load_linear(ctx, ck, layer_prefix, {{strip(names.router), c.num_experts}}, h, false));
  for (int64_t e = 0; e < c.num_experts; ++e) {
    const std::string p = str_cat(layer_prefix, names.prefix, "experts.", e, ".");
    KILN_ASSIGN_OR_RETURN(ops::LinearWeight gu, load_linear(ctx, ck, p, {{strip(names.gate), mi}, {strip(names.up), mi}}, h, false));
    KILN_ASSIGN_OR_RETURN(ops::LinearWeight d, load_linear(ctx, ck, p, {{strip(names.down), h}}, mi, false));
    b.gate_up_.push_back(std::move(gu));
    b.down_.push_back(std::move(d));
  }
  // MoeBlock is moved after this: the tables hold the experts' device addresses, which the
  // Buffers' moves keep.
  if (grouped_on(c, ctx.device)) {
    if (!ops::grouped_linear_supported(ctx, b.gate_up_) || !ops::grouped_linear_supported(ctx, b.down_))
      return internal_error(str_cat(layer_prefix, ": the experts' weights are not plain bf16 as grouped_on() assumes"));
    KILN_ASSIGN_OR_RETURN(b.grouped_gate_up_, ops::group_linear_weights(ctx, b.gate_up_));
    KILN_ASSIGN_OR_RETURN(b.grouped_down_, ops::group_linear_weights(ctx, b.down_));
  }
  return b;
}

int64_t MoeBlock::planned_weights_bytes(const model::ModelConfig& c, Device device, WeightDType wdt) {
  const int64_t h = c.hidden_size, mi = c.moe_intermediate_size;
  return ops::linear_weight_bytes(device, wdt, c.num_experts, h, false) +
         c.num_experts *
             (ops::linear_weight_bytes(device, wdt, 2 * mi, h, false) + ops::linear_weight_bytes(device, wdt, h, mi, false)) +
         (grouped_on(c, device) ? 2 * c.num_experts * 8 : 0);  // the grouped GEMMs' tables
}

int64_t MoeBlock::weights_bytes() const {
  int64_t bytes = linear_bytes(router_) + grouped_gate_up_.table.nbytes() + grouped_down_.table.nbytes();
  for (size_t e = 0; e < gate_up_.size(); ++e) bytes += linear_bytes(gate_up_[e]) + linear_bytes(down_[e]);
  return bytes;
}

Status MoeBlock::forward(const DeviceContext& ctx, const Tensor& x, MoeWorkspace& ws, const Tensor& out) const {
  const int64_t n = x.dim(0), pairs = n * top_k_;
  if (n > ws.tokens) return internal_error(str_cat("moe: a step of ", n, " tokens exceeds the workspace of ", ws.tokens));
  const Tensor logits = ws.logits.tensor().rows(0, n);
  const Tensor ids = ws.topk_ids.tensor().rows(0, n), weights = ws.topk_weights.tensor().rows(0, n);
  const Tensor sorted = ws.sorted_tokens.tensor().rows(0, pairs), pair_row = ws.pair_row.tensor().rows(0, pairs);
  const Tensor expert_out = ws.expert_out.tensor().rows(0, pairs);
  const Tensor act = ws.act.tensor().rows(0, pairs);
  KILN_RETURN_IF_ERROR(ops::linear(ctx, x, router_, logits));
  KILN_RETURN_IF_ERROR(ops::moe_route_permute(ctx, logits, {num_experts_, top_k_, normalize_}, ids, weights,
                                              ws.expert_start.tensor(), sorted, pair_row));
  if (grouped()) {
    // Every expert in one launch each, the runs read from expert_start on the device: no sync,
    // and an expert no token chose is never read. Gate/up reads each token's row of x where it
    // is (through sorted_tokens). An expert has at most n rows (a token picks it once), which
    // picks the kernel.
    KILN_RETURN_IF_ERROR(ops::moe_grouped_linear_swiglu(ctx, x, ws.expert_start.tensor(), grouped_gate_up_, act, n, &sorted));
    KILN_RETURN_IF_ERROR(ops::moe_grouped_linear(ctx, act, ws.expert_start.tensor(), grouped_down_, expert_out, n));
    return ops::moe_combine(ctx, expert_out, pair_row, weights, out);
  }
  const Tensor gathered = ws.gathered.tensor().rows(0, pairs), gate_up = ws.gate_up.tensor();
  KILN_RETURN_IF_ERROR(ops::gather_rows(ctx, x, sorted, gathered));
  // Each expert's run of rows is read on the host. On the CPU expert_start is host memory; off the
  // CPU (experts the grouped GEMMs cannot take) it is copied back and the stream drained, a round
  // trip per MoE layer that also keeps the step out of a CUDA graph (cuda_engine.cpp).
  const int32_t* start = ws.expert_start.tensor().data<int32_t>();
  if (ctx.device.kind != DeviceKind::kCpu) {
    ws.host_start.resize(static_cast<size_t>(num_experts_ + 1));
    KILN_RETURN_IF_ERROR(copy_to_host(ctx, ws.expert_start.tensor(), ws.host_start.data()));
    KILN_RETURN_IF_ERROR(synchronize(ctx));
    start = ws.host_start.data();
  }
  for (int64_t e = 0; e < num_experts_; ++e) {
    const int64_t first = start[e], count = start[e + 1] - start[e];
    if (count == 0) continue;  // an expert no token chose is not read
    KILN_RETURN_IF_ERROR(ops::linear_swiglu(ctx, gathered.rows(first, count), gate_up_[static_cast<size_t>(e)],
                                            gate_up.rows(first, count), act.rows(first, count)));
    KILN_RETURN_IF_ERROR(ops::linear(ctx, act.rows(first, count), down_[static_cast<size_t>(e)], expert_out.rows(first, count)));
  }
  return ops::moe_combine(ctx, expert_out, pair_row, weights, out);
}

}  // namespace kiln::runtime::models
