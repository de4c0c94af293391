#include "kiln/runtime/models/llama.h"

#include <cmath>
#include <string>

#include "kiln/core/str.h"
#include "kiln/runtime/ops/embedding.h"
#include "kiln/runtime/models/load_weights.h"
#include "kiln/runtime/ops/gather_rows.h"
#include "kiln/runtime/ops/paged_attention.h"
#include "kiln/runtime/ops/pointwise.h"
#include "kiln/runtime/ops/qkv_rope.h"
#include "kiln/runtime/ops/rms_norm.h"
#include "kiln/runtime/ops/swiglu.h"
#include "kiln/runtime/fp8_weights.h"
#include "kiln/runtime/rope.h"
#include "kiln/runtime/weights.h"

namespace kiln::runtime::models {
namespace {

// The RMSNorm weights of Gemma multiply by 1 + weight: kiln adds the 1 at load.
float norm_offset(const model::ModelConfig& c) { return c.is_gemma() ? 1.0f : 0.0f; }

// Gemma's local layers rotate with an unscaled RoPE of base rope_local_theta.
model::ModelConfig local_rope_config(const model::ModelConfig& c) {
  model::ModelConfig local = c;
  local.rope_theta = c.rope_local_theta;
  local.rope_scaling = model::RopeScaling{};
  return local;
}

// Where the decoder's weights are: "model." in a causal LM, "" in a bare decoder
// (sentence-transformers' Qwen3-Embedding), the language model's prefix in a
// Gemma3ForConditionalGeneration checkpoint (transformers 4 and 5 name it differently).
std::string weights_base(const model::Checkpoint& ck) {
  for (const char* base : {"model.", "", "language_model.model.", "model.language_model."})
    if (ck.has(str_cat(base, "embed_tokens.weight"))) return base;
  return "model.";
}

// The CPU keeps the embedding table in bf16 unless the weights are the f32 reference: the lookup
// widens the few rows it reads, and the table (often the largest single weight) takes half the
// memory and half the load time. A bf16 checkpoint's rows widen to the same f32 values as before.
DType embedding_dtype(Device device, WeightDType wdt) {
  return device.kind == DeviceKind::kCpu && wdt != WeightDType::kF32 ? DType::kBF16 : compute_dtype(device);
}

}  // namespace

Result<std::unique_ptr<LlamaModel>> LlamaModel::load(const DeviceContext& ctx, const model::ModelConfig& config,
                                                     const model::Checkpoint& ck, int64_t max_positions) {
  KILN_RETURN_IF_ERROR(model::validate_model_config(config));
  auto m = std::unique_ptr<LlamaModel>(new LlamaModel());
  m->config_ = config;
  const model::ModelConfig& c = m->config_;
  const int64_t hidden = c.hidden_size, vocab = c.vocab_size, inter = c.intermediate_size;
  const int64_t d = c.head_dim;
  const DType dt = compute_dtype(ctx.device);

  // Embedding checkpoints (a bare decoder) may have no lm_head.
  const std::string base = weights_base(ck);
  const float offset = norm_offset(c);
  KILN_ASSIGN_OR_RETURN(HostMatrix embed, host_tensor(ck, base + "embed_tokens.weight", {vocab, hidden}));
  // CUDA keeps a linear weight as the plain [vocab, hidden] bf16 matrix, so a tied lm_head and the
  // embedding lookup read one copy. The CPU lays linear weights out for its kernels: two copies.
  const bool shared_table = c.tie_word_embeddings && ctx.device.kind == DeviceKind::kCuda;
  if (!shared_table) {
    KILN_ASSIGN_OR_RETURN(m->embed_, upload_matrix(ctx, std::span<const HostMatrix>(&embed, 1),
                                                   embedding_dtype(ctx.device, ctx.weight_dtype)));
  }
  KILN_ASSIGN_OR_RETURN(m->final_norm_, load_vector(ctx, ck, base + "norm.weight", hidden, offset));
  m->has_lm_head_ = c.tie_word_embeddings || ck.has("lm_head.weight");
  if (!m->has_lm_head_) {
    // Nothing to load: such a model only returns hidden states (forward refuses logit rows).
  } else if (c.tie_word_embeddings) {
    KILN_ASSIGN_OR_RETURN(m->lm_head_, ops::load_linear_weight(ctx, std::span<const HostMatrix>(&embed, 1)));
    if (shared_table && (m->lm_head_.weight.tensor().dtype() != dt || m->lm_head_.weight.tensor().dim(0) != vocab ||
                         m->lm_head_.weight.tensor().dim(1) != hidden))
      return internal_error("tied lm_head: the device's linear weight is not a plain [vocab, hidden] matrix");
  } else {
    KILN_ASSIGN_OR_RETURN(m->lm_head_, load_linear(ctx, ck, "lm_head", {{"", vocab}}, hidden, false));
  }
  m->weights_bytes_ = m->embed_.nbytes() + m->final_norm_.nbytes() + linear_bytes(m->lm_head_);

  for (int64_t i = 0; i < c.num_layers; ++i) {
    const std::string p = str_cat(base, "layers.", i, ".");
    Layer l;
    KILN_ASSIGN_OR_RETURN(l.input_norm, load_vector(ctx, ck, p + "input_layernorm.weight", hidden, offset));
    KILN_ASSIGN_OR_RETURN(l.post_attention_norm,
                          load_vector(ctx, ck, p + "post_attention_layernorm.weight", hidden, offset));
    if (c.qk_norm) {
      KILN_ASSIGN_OR_RETURN(l.q_norm, load_vector(ctx, ck, p + "self_attn.q_norm.weight", d, offset));
      KILN_ASSIGN_OR_RETURN(l.k_norm, load_vector(ctx, ck, p + "self_attn.k_norm.weight", d, offset));
    }
    if (c.is_gemma()) {
      KILN_ASSIGN_OR_RETURN(l.pre_ff_norm, load_vector(ctx, ck, p + "pre_feedforward_layernorm.weight", hidden, offset));
      KILN_ASSIGN_OR_RETURN(l.post_ff_norm, load_vector(ctx, ck, p + "post_feedforward_layernorm.weight", hidden, offset));
    }
    KILN_ASSIGN_OR_RETURN(l.qkv, load_linear(ctx, ck, p + "self_attn.",
                                             {{"q_proj", c.q_size()}, {"k_proj", c.kv_size()}, {"v_proj", c.kv_size()}},
                                             hidden, c.attention_bias, c.quantization));
    // llama's attention_bias also covers o_proj; qwen2 has q/k/v biases only.
    const bool o_bias = c.attention_bias && ck.has(p + "self_attn.o_proj.bias");
    KILN_ASSIGN_OR_RETURN(l.o, load_linear(ctx, ck, p + "self_attn.", {{"o_proj", hidden}}, c.q_size(), o_bias,
                                           c.quantization));
    if (c.layer_is_sparse(i)) {
      KILN_ASSIGN_OR_RETURN(MoeBlock moe, MoeBlock::load(ctx, c, ck, p));
      l.moe = std::make_unique<MoeBlock>(std::move(moe));
    } else {
      KILN_ASSIGN_OR_RETURN(l.gate_up, load_linear(ctx, ck, p + "mlp.", {{"gate_proj", inter}, {"up_proj", inter}},
                                                   hidden, c.mlp_bias, c.quantization));
      KILN_ASSIGN_OR_RETURN(l.down, load_linear(ctx, ck, p + "mlp.", {{"down_proj", hidden}}, inter, c.mlp_bias,
                                                c.quantization));
    }
    m->weights_bytes_ += l.input_norm.nbytes() + l.post_attention_norm.nbytes() + l.q_norm.nbytes() + l.k_norm.nbytes() +
                         l.pre_ff_norm.nbytes() + l.post_ff_norm.nbytes() + linear_bytes(l.qkv) + linear_bytes(l.o) +
                         linear_bytes(l.gate_up) + linear_bytes(l.down) + (l.moe ? l.moe->weights_bytes() : 0);
    m->layers_.push_back(std::move(l));
  }

  KILN_ASSIGN_OR_RETURN(std::vector<float> table, rope_table(c, max_positions));
  KILN_ASSIGN_OR_RETURN(m->rope_, Buffer::allocate(ctx.device, DType::kF32, {max_positions, d}));
  KILN_RETURN_IF_ERROR(copy_to_device(ctx, table.data(), m->rope_.tensor()));
  if (c.is_gemma()) {
    KILN_ASSIGN_OR_RETURN(std::vector<float> local, rope_table(local_rope_config(c), max_positions));
    KILN_ASSIGN_OR_RETURN(m->rope_local_, Buffer::allocate(ctx.device, DType::kF32, {max_positions, d}));
    KILN_RETURN_IF_ERROR(copy_to_device(ctx, local.data(), m->rope_local_.tensor()));
  }
  KILN_RETURN_IF_ERROR(synchronize(ctx));
  m->weights_bytes_ += m->rope_.nbytes() + m->rope_local_.nbytes();
  return m;
}

// Mirrors load(): the same buffers, in the same layouts.
int64_t LlamaModel::planned_weights_bytes(const model::ModelConfig& c, Device device, WeightDType wdt,
                                          int64_t max_positions) {
  const int64_t dt = static_cast<int64_t>(dtype_size(compute_dtype(device)));
  const int64_t hidden = c.hidden_size, vocab = c.vocab_size, inter = c.intermediate_size;
  const bool shared_table = c.tie_word_embeddings && device.kind == DeviceKind::kCuda;
  const int64_t embed_dt = static_cast<int64_t>(dtype_size(embedding_dtype(device, wdt)));
  int64_t bytes = (shared_table ? 0 : vocab * hidden * embed_dt) + hidden * dt +
                  ops::linear_weight_bytes(device, wdt, vocab, hidden, false);
  int64_t layer = (c.is_gemma() ? 4 : 2) * hidden * dt + (c.qk_norm ? 2 * c.head_dim * dt : 0);
  // FP8 projections on CUDA: one byte a weight and a scale per row and 128 columns (as long as the
  // layout maps onto that, which every published one does; load() falls back to bf16 otherwise).
  const bool fp8 = device.kind == DeviceKind::kCuda && c.quantization.quantized() && hidden % 16 == 0 && inter % 16 == 0;
  auto proj = [&](int64_t n, int64_t k, bool bias) {
    return fp8 ? fp8_linear_weight_bytes(n, k, bias) : ops::linear_weight_bytes(device, wdt, n, k, bias);
  };
  layer += proj(c.q_size() + 2 * c.kv_size(), hidden, c.attention_bias);
  layer += proj(hidden, c.q_size(), c.attention_bias && c.attention_out_bias);
  const int64_t dense = proj(2 * inter, hidden, c.mlp_bias) + proj(hidden, inter, c.mlp_bias);
  const int64_t sparse = c.is_moe() ? MoeBlock::planned_weights_bytes(c, device, wdt) : 0;
  for (int64_t i = 0; i < c.num_layers; ++i) bytes += layer + (c.layer_is_sparse(i) ? sparse : dense);
  const int64_t rope_tables = c.is_gemma() ? 2 : 1;  // f32
  return bytes + rope_tables * max_positions * c.head_dim * 4;
}

// Mirrors ensure_workspace().
int64_t LlamaModel::planned_workspace_bytes(const model::ModelConfig& c, Device device, int64_t tokens, int64_t rows) {
  const int64_t dt = static_cast<int64_t>(dtype_size(compute_dtype(device)));
  const int64_t per_token = 3 * c.hidden_size + (c.q_size() + 2 * c.kv_size()) + c.q_size() + 3 * c.intermediate_size;
  return (tokens * per_token + rows * c.hidden_size) * dt + MoeWorkspace::planned_bytes(c, device, tokens);
}

bool LlamaModel::syncs_mid_step() const {
  if (rope_.tensor().device().kind == DeviceKind::kCpu) return false;  // the host loop is free there
  for (const Layer& l : layers_)
    if (l.moe && !l.moe->grouped()) return true;
  return false;
}

int64_t LlamaModel::workspace_bytes() const {
  return residual_.nbytes() + normed_.nbytes() + qkv_.nbytes() + attn_.nbytes() + delta_.nbytes() + gate_up_.nbytes() +
         act_.nbytes() + selected_.nbytes() + moe_ws_.bytes();
}

Status LlamaModel::ensure_workspace(const DeviceContext& ctx, int64_t n, int64_t m) {
  const model::ModelConfig& c = config_;
  const DType dt = compute_dtype(ctx.device);
  if (n > ws_tokens_) {
    const int64_t qkv_width = c.q_size() + 2 * c.kv_size();
    KILN_ASSIGN_OR_RETURN(residual_, Buffer::allocate(ctx.device, dt, {n, c.hidden_size}));
    KILN_ASSIGN_OR_RETURN(normed_, Buffer::allocate(ctx.device, dt, {n, c.hidden_size}));
    KILN_ASSIGN_OR_RETURN(qkv_, Buffer::allocate(ctx.device, dt, {n, qkv_width}));
    KILN_ASSIGN_OR_RETURN(attn_, Buffer::allocate(ctx.device, dt, {n, c.q_size()}));
    KILN_ASSIGN_OR_RETURN(delta_, Buffer::allocate(ctx.device, dt, {n, c.hidden_size}));
    KILN_ASSIGN_OR_RETURN(gate_up_, Buffer::allocate(ctx.device, dt, {n, 2 * c.intermediate_size}));
    KILN_ASSIGN_OR_RETURN(act_, Buffer::allocate(ctx.device, dt, {n, c.intermediate_size}));
    KILN_RETURN_IF_ERROR(moe_ws_.ensure(ctx, c, n));
    ws_tokens_ = n;
  }
  if (m > ws_rows_) {
    KILN_ASSIGN_OR_RETURN(selected_, Buffer::allocate(ctx.device, dt, {m, c.hidden_size}));
    ws_rows_ = m;
  }
  return Status::ok();
}

Status step_abandoned() { return cancelled("the step was abandoned"); }
bool is_step_abandoned(const Status& status) { return status.code() == StatusCode::kCancelled; }

Status LlamaModel::forward(const DeviceContext& ctx, const ForwardInputs& in, const KvCache& cache,
                           const Tensor& logits, const Tensor& hidden) {
  const model::ModelConfig& c = config_;
  const int64_t n = in.token_ids.dim(0), m = in.logit_rows.dim(0);
  const int64_t h = in.hidden_rows.empty() ? 0 : in.hidden_rows.dim(0);
  if (n == 0) return Status::ok();
  if (m > 0 && !has_lm_head_) return failed_precondition("this checkpoint has no lm_head: it cannot compute logits");
  KILN_RETURN_IF_ERROR(ensure_workspace(ctx, n, std::max<int64_t>(m, 1)));
  const Tensor residual = residual_.tensor().rows(0, n), normed = normed_.tensor().rows(0, n);
  const Tensor qkv = qkv_.tensor().rows(0, n), attn = attn_.tensor().rows(0, n);
  const Tensor delta = delta_.tensor().rows(0, n), gate_up = gate_up_.tensor().rows(0, n);
  const Tensor act = act_.tensor().rows(0, n), selected = selected_.tensor().rows(0, m);
  const float eps = static_cast<float>(c.rms_norm_eps);

  ops::QkvParams qp;
  qp.num_heads = c.num_heads;
  qp.num_kv_heads = c.num_kv_heads;
  qp.head_dim = c.head_dim;
  qp.qk_norm_eps = eps;
  ops::AttentionParams ap;
  ap.num_heads = c.num_heads;
  ap.num_kv_heads = c.num_kv_heads;
  ap.head_dim = c.head_dim;
  ap.scale = c.attention_scale();
  ap.max_query_len = in.max_query_len;
  ap.max_kv_len = in.max_kv_len;

  // The residual stream: each block's input norm runs in its first projection's prologue and its
  // output projections add into `residual` in their epilogues where the backend can (CUDA decode).
  KILN_RETURN_IF_ERROR(ops::embedding(ctx, in.token_ids, embedding_table(), residual));
  if (c.is_gemma()) {
    // transformers multiplies by sqrt(hidden) rounded to the activations' dtype.
    KILN_RETURN_IF_ERROR(ops::scale(ctx, residual, static_cast<float>(std::sqrt(static_cast<double>(c.hidden_size)))));
  }
  const auto abandoned = [&in] { return in.abandon != nullptr && *in.abandon && (*in.abandon)(); };
  for (size_t i = 0; i < layers_.size(); ++i) {
    if (abandoned()) return step_abandoned();
    const Layer& l = layers_[i];
    const Tensor& kv = cache.layer(static_cast<int64_t>(i));
    const bool local = !rope_local_.empty() && c.layer_window(static_cast<int64_t>(i)) > 0;
    ap.sliding_window = c.layer_window(static_cast<int64_t>(i));
    KILN_RETURN_IF_ERROR(ops::norm_linear(ctx, residual, {l.input_norm.tensor(), eps, normed}, l.qkv, qkv));
    KILN_RETURN_IF_ERROR(ops::qkv_rope_cache(ctx, qkv, in.positions, in.slot_mapping, l.q_norm.tensor(),
                                             l.k_norm.tensor(), local ? rope_local_.tensor() : rope_.tensor(), qp, kv));
    KILN_RETURN_IF_ERROR(ops::paged_attention(ctx, qkv, kv, in.query_start, in.kv_len, in.block_start, in.block_ids,
                                              ap, attn));
    if (c.is_gemma()) {
      // Gemma 3 normalises each block's output before the residual add (rms_norm may run in place).
      KILN_RETURN_IF_ERROR(ops::linear(ctx, attn, l.o, delta));
      KILN_RETURN_IF_ERROR(ops::rms_norm(ctx, delta, l.post_attention_norm.tensor(), eps, delta));
      KILN_RETURN_IF_ERROR(ops::add_into(ctx, delta, residual));
      KILN_RETURN_IF_ERROR(ops::norm_linear(ctx, residual, {l.pre_ff_norm.tensor(), eps, normed}, l.gate_up, gate_up));
      KILN_RETURN_IF_ERROR(ops::geglu(ctx, gate_up, act));
      KILN_RETURN_IF_ERROR(ops::linear(ctx, act, l.down, delta));
      KILN_RETURN_IF_ERROR(ops::rms_norm(ctx, delta, l.post_ff_norm.tensor(), eps, delta));
      KILN_RETURN_IF_ERROR(ops::add_into(ctx, delta, residual));
      continue;
    }
    KILN_RETURN_IF_ERROR(ops::linear_add(ctx, attn, l.o, residual, delta));
    if (l.moe) {
      KILN_RETURN_IF_ERROR(ops::rms_norm(ctx, residual, l.post_attention_norm.tensor(), eps, normed));
      KILN_RETURN_IF_ERROR(l.moe->forward(ctx, normed, moe_ws_, residual));
      continue;
    }
    KILN_RETURN_IF_ERROR(ops::norm_linear_swiglu(ctx, residual, {l.post_attention_norm.tensor(), eps, normed},
                                                 l.gate_up, gate_up, act));
    KILN_RETURN_IF_ERROR(ops::linear_add(ctx, act, l.down, residual, delta));
  }
  if (m == 0 && h == 0) return Status::ok();
  if (abandoned()) return step_abandoned();
  KILN_RETURN_IF_ERROR(ops::rms_norm(ctx, residual, final_norm_.tensor(), eps, normed));
  if (h > 0) KILN_RETURN_IF_ERROR(ops::gather_rows(ctx, normed, in.hidden_rows, hidden));
  if (m == 0) return Status::ok();
  KILN_RETURN_IF_ERROR(ops::gather_rows(ctx, normed, in.logit_rows, selected));
  KILN_RETURN_IF_ERROR(ops::linear(ctx, selected, lm_head_, logits));
  if (c.final_logit_softcapping)
    KILN_RETURN_IF_ERROR(ops::tanh_softcap(ctx, logits, static_cast<float>(*c.final_logit_softcapping)));
  return Status::ok();
}

}  // namespace kiln::runtime::models
