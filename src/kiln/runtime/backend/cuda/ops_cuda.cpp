// The CUDA ops of runtime/ops/ (all but sample): Tensor arguments in, raw-pointer launchers out.
// The dispatchers have checked shapes and dtypes; what is checked here is what only the CUDA
// kernels restrict.
#include "kiln/core/str.h"
#include "kiln/runtime/backend/cuda/embedding_cuda.h"
#include "kiln/runtime/backend/cuda/gather_rows_cuda.h"
#include "kiln/runtime/backend/cuda/gemm.h"
#include "kiln/runtime/backend/cuda/kernels.h"
#include "kiln/runtime/backend/cuda/fp8_linear.h"
#include "kiln/runtime/backend/cuda/linear_cuda.h"
#include "kiln/runtime/backend/cuda/moe_cuda.h"
#include "kiln/runtime/backend/cuda/paged_attention_cuda.h"
#include "kiln/runtime/backend/cuda/pointwise_cuda.h"
#include "kiln/runtime/backend/cuda/profile.h"
#include "kiln/runtime/backend/cuda/qkv_rope_cuda.h"
#include "kiln/runtime/backend/cuda/rms_norm_cuda.h"
#include "kiln/runtime/backend/cuda/scratch.h"
#include "kiln/runtime/backend/cuda/swiglu_cuda.h"

namespace kiln::runtime::cuda {
namespace {

Stream stream_of(const DeviceContext& ctx) { return static_cast<Stream>(ctx.stream); }

Status need_bf16(const Tensor& t, const char* what) {
  if (t.dtype() != DType::kBF16) {
    return invalid_argument(str_cat(what, ": the CUDA backend needs BF16, not ", dtype_name(t.dtype())));
  }
  return Status::ok();
}

// FP8 weights (runtime/fp8_weights.h): e4m3 codes and their scales, fp8_gemm.h's paths.
bool is_fp8(const ops::LinearWeight& w) { return w.weight.tensor().dtype() == DType::kF8E4M3; }

// `norm`: the RMSNorm of x that the small-m kernel applies first, or null.
GemmArgs gemm_args(const Tensor& x, const ops::LinearWeight& w, const Tensor& out, const ops::PreNorm* norm = nullptr) {
  GemmArgs g;
  g.x = x.data<const uint16_t>();
  g.w = w.weight.tensor().data<const uint16_t>();
  g.bias = w.bias.empty() ? nullptr : w.bias.tensor().data<const uint16_t>();
  g.y = out.raw();
  g.y_f32 = out.dtype() == DType::kF32;
  g.m = x.dim(0);
  g.n = w.out_features;
  g.k = w.in_features;
  if (norm != nullptr) {
    g.norm_weight = norm->weight.data<const uint16_t>();
    g.norm_eps = norm->eps;
  }
  return g;
}

std::string op_name(const char* op, const ops::LinearWeight& w) {
  return op_profiling() ? str_cat(op, " n=", w.out_features, " k=", w.in_features) : std::string();
}

const uint16_t* bf16_or_null(const Tensor& t) { return t.empty() ? nullptr : t.data<const uint16_t>(); }

}  // namespace

Status embedding(const DeviceContext& ctx, const Tensor& token_ids, const Tensor& table, const Tensor& out) {
  OpTimer timer("embedding", stream_of(ctx));
  KILN_RETURN_IF_ERROR(need_bf16(table, "embedding table"));
  return launch_embedding(token_ids.data<const int32_t>(), token_ids.dim(0), table.data<const uint16_t>(),
                          table.dim(0), table.dim(1), out.data<uint16_t>(), stream_of(ctx));
}

Status gather_rows(const DeviceContext& ctx, const Tensor& x, const Tensor& rows, const Tensor& out) {
  OpTimer timer("gather_rows", stream_of(ctx));
  const int64_t row_bytes = x.dim(1) * static_cast<int64_t>(dtype_size(x.dtype()));
  return launch_gather_rows(x.raw(), rows.data<const int32_t>(), rows.dim(0), row_bytes, out.raw(), stream_of(ctx));
}

Status swiglu(const DeviceContext& ctx, const Tensor& gate_up, const Tensor& out) {
  OpTimer timer("swiglu", stream_of(ctx));
  return launch_swiglu(gate_up.data<const uint16_t>(), gate_up.dim(0), out.dim(1), out.data<uint16_t>(),
                       stream_of(ctx));
}

Status rms_norm(const DeviceContext& ctx, const Tensor& x, const Tensor& weight, float eps, const Tensor& out) {
  OpTimer timer("rms_norm", stream_of(ctx));
  return launch_rms_norm(x.data<const uint16_t>(), weight.data<const uint16_t>(), x.dim(0), x.dim(1), eps,
                         out.data<uint16_t>(), stream_of(ctx));
}

Status qkv_rope_cache(const DeviceContext& ctx, const Tensor& qkv, const Tensor& positions,
                      const Tensor& slot_mapping, const Tensor& q_norm, const Tensor& k_norm,
                      const Tensor& rope_table, const ops::QkvParams& p, const Tensor& kv_cache) {
  OpTimer timer("qkv_rope_cache", stream_of(ctx));
  KILN_RETURN_IF_ERROR(need_bf16(kv_cache, "qkv_rope_cache kv_cache"));
  QkvRopeArgs a;
  a.qkv = qkv.data<uint16_t>();
  a.positions = positions.data<const int32_t>();
  a.slot_mapping = slot_mapping.data<const int32_t>();
  a.q_norm = bf16_or_null(q_norm);
  a.k_norm = bf16_or_null(k_norm);
  a.eps = p.qk_norm_eps;
  a.rope_table = rope_table.data<const float>();
  a.max_positions = rope_table.dim(0);
  a.kv_cache = kv_cache.data<uint16_t>();
  a.num_tokens = qkv.dim(0);
  a.num_heads = static_cast<int>(p.num_heads);
  a.num_kv_heads = static_cast<int>(p.num_kv_heads);
  a.head_dim = static_cast<int>(p.head_dim);
  a.block_size = static_cast<int>(kv_cache.dim(2));
  return launch_qkv_rope_cache(a, stream_of(ctx));
}

Status paged_attention(const DeviceContext& ctx, const Tensor& qkv, const Tensor& kv_cache,
                       const Tensor& query_start, const Tensor& kv_len, const Tensor& block_start,
                       const Tensor& block_ids, const ops::AttentionParams& p, const Tensor& out) {
  OpTimer timer("paged_attention", stream_of(ctx));
  KILN_RETURN_IF_ERROR(need_bf16(kv_cache, "paged_attention kv_cache"));
  AttentionArgs a;
  a.q = qkv.data<const uint16_t>();
  a.q_row_stride = qkv.dim(1);
  a.kv_cache = kv_cache.data<const uint16_t>();
  a.query_start = query_start.data<const int32_t>();
  a.kv_len = kv_len.data<const int32_t>();
  a.block_start = block_start.data<const int32_t>();
  a.block_ids = block_ids.data<const int32_t>();
  a.num_seqs = static_cast<int>(kv_len.dim(0));
  a.num_tokens = qkv.dim(0);
  a.num_heads = static_cast<int>(p.num_heads);
  a.num_kv_heads = static_cast<int>(p.num_kv_heads);
  a.head_dim = static_cast<int>(p.head_dim);
  a.block_size = static_cast<int>(kv_cache.dim(2));
  a.scale = p.scale;
  a.sliding_window = p.sliding_window;
  a.out = out.data<uint16_t>();
  a.max_query_len = p.max_query_len > 0 ? p.max_query_len : qkv.dim(0);
  const int64_t max_kv = p.max_kv_len > 0 ? p.max_kv_len : kv_cache.dim(0) * kv_cache.dim(2);
  a.num_splits = attention_num_splits(a.num_tokens, a.num_kv_heads, max_kv, sm_count(ctx.device));
  if (a.num_splits > 1) {
    const size_t bytes = attention_partial_bytes(a.num_tokens, a.num_heads, a.head_dim, a.num_splits);
    KILN_ASSIGN_OR_RETURN(void* scratch, device_scratch(ctx.device, ScratchSlot::kAttentionPartials, bytes));
    a.partial_out = static_cast<float*>(scratch);
    a.partial_lse = a.partial_out + static_cast<size_t>(a.num_tokens) * a.num_heads * a.num_splits * a.head_dim;
  }
  return launch_paged_attention(a, stream_of(ctx));
}

namespace {

Fp8GemmArgs fp8_args(const Tensor& x, const ops::LinearWeight& w, const Tensor& out, bool accumulate) {
  Fp8GemmArgs a;
  a.x = x.data<const uint16_t>();
  a.w = w.weight.tensor().data<const uint8_t>();
  a.w_scale = w.scales.tensor().data<const float>();
  a.bias = w.bias.empty() ? nullptr : w.bias.tensor().data<const uint16_t>();
  a.y = out.raw();
  a.y_f32 = out.dtype() == DType::kF32;
  a.accumulate = accumulate;
  a.m = x.dim(0);
  a.n = w.out_features;
  a.k = w.in_features;
  return a;
}

Status fp8_linear(const DeviceContext& ctx, const Tensor& x, const ops::LinearWeight& w, const Tensor& out,
                  bool accumulate) {
  KILN_RETURN_IF_ERROR(need_bf16(x, "fp8 linear x"));
  if (w.scales.empty()) return invalid_argument("fp8 linear: the weight has no scales");
  return run_fp8_gemm(ctx.blas, ctx.device, fp8_args(x, w, out, accumulate), stream_of(ctx));
}

}  // namespace

Status linear(const DeviceContext& ctx, const Tensor& x, const ops::LinearWeight& w, const Tensor& out) {
  OpTimer timer(op_name("linear", w), stream_of(ctx));
  if (is_fp8(w)) return fp8_linear(ctx, x, w, out, false);
  KILN_RETURN_IF_ERROR(need_bf16(w.weight.tensor(), "linear weight"));
  if (out.dtype() != DType::kBF16 && out.dtype() != DType::kF32) {
    return invalid_argument(str_cat("linear out: the CUDA backend writes BF16 or F32, not ", dtype_name(out.dtype())));
  }
  return gemm(ctx.blas, gemm_args(x, w, out), stream_of(ctx));
}

bool norm_linear_fused(const DeviceContext& ctx, const Tensor& x, const ops::PreNorm& norm, const ops::LinearWeight& w,
                       const Tensor& out) {
  if (x.dim(0) > kSmallMAuto || w.weight.tensor().dtype() != DType::kBF16 || out.dtype() != DType::kBF16) return false;
  const GemmArgs g = gemm_args(x, w, out, &norm);
  return small_m_fits(g) && small_m_norm_pays(g, false, sm_count(ctx.device));
}

Status norm_linear(const DeviceContext& ctx, const Tensor& x, const ops::PreNorm& norm, const ops::LinearWeight& w,
                   const Tensor& out) {
  OpTimer timer(op_name("norm_linear", w), stream_of(ctx));
  return gemm(ctx.blas, gemm_args(x, w, out, &norm), stream_of(ctx));
}

Status linear_add(const DeviceContext& ctx, const Tensor& x, const ops::LinearWeight& w, const Tensor& residual) {
  OpTimer timer(op_name("linear_add", w), stream_of(ctx));
  if (is_fp8(w)) {
    KILN_RETURN_IF_ERROR(need_bf16(residual, "linear_add residual"));
    return fp8_linear(ctx, x, w, residual, true);
  }
  KILN_RETURN_IF_ERROR(need_bf16(w.weight.tensor(), "linear_add weight"));
  KILN_RETURN_IF_ERROR(need_bf16(residual, "linear_add residual"));
  GemmArgs g = gemm_args(x, w, residual);
  g.accumulate = true;
  return gemm(ctx.blas, g, stream_of(ctx));
}

bool linear_swiglu_fused(const DeviceContext& ctx, const Tensor& x, const ops::LinearWeight& w, const Tensor& out,
                         const ops::PreNorm* norm) {
  // FP8: the GEMV's SwiGLU epilogue, up to kFp8GemvMaxM rows and without a norm prologue.
  if (is_fp8(w)) return norm == nullptr && !w.scales.empty() && x.dim(0) <= kFp8GemvMaxM && x.dim(0) >= 1;
  if (x.dim(0) > kSmallMAuto || w.weight.tensor().dtype() != DType::kBF16) return false;
  const GemmArgs g = gemm_args(x, w, out, norm);
  return small_m_fits(g) && (norm == nullptr || small_m_norm_pays(g, true, sm_count(ctx.device)));
}

Status linear_swiglu(const DeviceContext& ctx, const Tensor& x, const ops::LinearWeight& w, const Tensor& out,
                     const ops::PreNorm* norm) {
  OpTimer timer(op_name(norm != nullptr ? "norm_linear_swiglu" : "linear_swiglu", w), stream_of(ctx));
  if (is_fp8(w) && norm == nullptr) {
    KILN_RETURN_IF_ERROR(need_bf16(x, "linear_swiglu x"));
    return launch_fp8_gemv(fp8_args(x, w, out, false), true, stream_of(ctx));
  }
  KILN_RETURN_IF_ERROR(need_bf16(w.weight.tensor(), "linear_swiglu weight"));
  return gemm_swiglu_small_m(gemm_args(x, w, out, norm), stream_of(ctx));
}

Status geglu(const DeviceContext& ctx, const Tensor& gate_up, const Tensor& out) {
  OpTimer timer("geglu", stream_of(ctx));
  return launch_geglu(gate_up.data<const uint16_t>(), gate_up.dim(0), out.dim(1), out.data<uint16_t>(),
                      stream_of(ctx));
}

Status scale(const DeviceContext& ctx, const Tensor& x, float s) {
  OpTimer timer("scale", stream_of(ctx));
  return launch_scale(x.data<uint16_t>(), x.numel(), s, stream_of(ctx));
}

Status tanh_softcap(const DeviceContext& ctx, const Tensor& x, float cap) {
  OpTimer timer("tanh_softcap", stream_of(ctx));
  return launch_tanh_softcap(x.data<float>(), x.numel(), cap, stream_of(ctx));
}

Status add_into(const DeviceContext& ctx, const Tensor& x, const Tensor& y) {
  OpTimer timer("add_into", stream_of(ctx));
  return launch_add_into(x.data<const uint16_t>(), y.data<uint16_t>(), x.numel(), stream_of(ctx));
}

Status moe_route(const DeviceContext& ctx, const Tensor& router_logits, const ops::MoeRouting& r,
                 const Tensor& topk_ids, const Tensor& topk_weights) {
  OpTimer timer("moe_route", stream_of(ctx));
  return launch_moe_route(router_logits.data<const uint16_t>(), router_logits.dim(0), static_cast<int>(r.num_experts),
                          static_cast<int>(r.top_k), r.normalize, topk_ids.data<int32_t>(), topk_weights.data<float>(),
                          stream_of(ctx));
}

namespace {
// The permutation is one block, whose shared memory holds a count per expert (moe.cu).
Status check_permute_experts(int64_t num_experts) {
  if (num_experts > 8192) return invalid_argument(str_cat("moe_permute: ", num_experts, " experts exceed CUDA's 8192"));
  return Status::ok();
}
}  // namespace

Status moe_permute(const DeviceContext& ctx, const Tensor& topk_ids, int64_t num_experts, const Tensor& expert_start,
                   const Tensor& sorted_tokens, const Tensor& pair_row) {
  OpTimer timer("moe_permute", stream_of(ctx));
  KILN_RETURN_IF_ERROR(check_permute_experts(num_experts));
  return launch_moe_permute(topk_ids.data<const int32_t>(), topk_ids.numel(), static_cast<int>(topk_ids.dim(1)),
                            static_cast<int>(num_experts), expert_start.data<int32_t>(), sorted_tokens.data<int32_t>(),
                            pair_row.data<int32_t>(), stream_of(ctx));
}

Status moe_route_permute(const DeviceContext& ctx, const Tensor& router_logits, const ops::MoeRouting& r,
                         const Tensor& topk_ids, const Tensor& topk_weights, const Tensor& expert_start,
                         const Tensor& sorted_tokens, const Tensor& pair_row) {
  OpTimer timer("moe_route_permute", stream_of(ctx));
  KILN_RETURN_IF_ERROR(check_permute_experts(r.num_experts));
  return launch_moe_route_permute(router_logits.data<const uint16_t>(), router_logits.dim(0),
                                  static_cast<int>(r.num_experts), static_cast<int>(r.top_k), r.normalize,
                                  topk_ids.data<int32_t>(), topk_weights.data<float>(), expert_start.data<int32_t>(),
                                  sorted_tokens.data<int32_t>(), pair_row.data<int32_t>(), stream_of(ctx));
}

Status moe_combine(const DeviceContext& ctx, const Tensor& expert_out, const Tensor& pair_row,
                   const Tensor& topk_weights, const Tensor& out) {
  OpTimer timer("moe_combine", stream_of(ctx));
  return launch_moe_combine(expert_out.data<const uint16_t>(), expert_out.dim(0), pair_row.data<const int32_t>(),
                            topk_weights.data<const float>(), topk_weights.dim(0), static_cast<int>(topk_weights.dim(1)),
                            out.dim(1), out.data<uint16_t>(), stream_of(ctx));
}

Status moe_grouped_linear(const DeviceContext& ctx, const Tensor& x, const Tensor& expert_start,
                          const ops::GroupedLinearWeight& w, bool swiglu, const Tensor& out, int64_t max_rows,
                          MoeGemmPath path, const Tensor* x_row) {
  OpTimer timer(swiglu ? "moe_grouped_linear_swiglu" : "moe_grouped_linear", stream_of(ctx));
  MoeGemmArgs g;
  g.x = x.data<const uint16_t>();
  g.x_row = x_row != nullptr ? x_row->data<const int32_t>() : nullptr;
  g.x_rows = x.dim(0);
  g.rows = x_row != nullptr ? x_row->dim(0) : x.dim(0);
  g.expert_start = expert_start.data<const int32_t>();
  g.num_experts = static_cast<int>(w.num_experts);
  g.weights = w.table.tensor().data<const int64_t>();
  g.n = w.out_features;
  g.k = w.in_features;
  g.swiglu = swiglu;
  g.y = out.data<uint16_t>();
  g.max_rows = max_rows;
  g.sm_count = sm_count(ctx.device);
  return launch_moe_grouped_gemm(g, path, stream_of(ctx));
}

}  // namespace kiln::runtime::cuda
