#include "kiln/runtime/cpu_engine.h"

#include <algorithm>
#include <chrono>
#include <limits>

#include "kiln/core/str.h"
#include "kiln/runtime/backend/cpu/gemm_cpu.h"
#include "kiln/runtime/fp8_weights.h"
#include "kiln/runtime/ops/sample.h"
#include "kiln/runtime/step_inputs.h"

namespace kiln::runtime {

Result<std::unique_ptr<CpuEngine>> CpuEngine::load(const std::filesystem::path& model_dir, const EngineOptions& options) {
  if (options.device != DeviceKind::kCpu) return invalid_argument("CpuEngine: options name another device");
  KILN_ASSIGN_OR_RETURN(model::ModelConfig config, model::load_model_config(model_dir));
  quantize_at_load(options.quantize_fp8, &config);
  KILN_ASSIGN_OR_RETURN(MemoryPlan plan, plan_memory(config, options));
  auto e = std::unique_ptr<CpuEngine>(new CpuEngine());
  e->plan_ = plan;
  e->pool_ = std::make_unique<ThreadPool>(options.num_threads);
  e->ctx_.device = Device::cpu();
  e->ctx_.pool = e->pool_.get();
  e->ctx_.weight_dtype = plan.weight_dtype;

  KILN_ASSIGN_OR_RETURN(e->checkpoint_, model::Checkpoint::open(model_dir));
  e->checkpoint_->populate();
  KILN_ASSIGN_OR_RETURN(e->model_, models::LlamaModel::load(e->ctx_, config, *e->checkpoint_, plan.limits.max_model_len));
  // Every weight now lives in engine buffers; the mapping is no longer needed.
  e->checkpoint_.reset();

  KvCacheShape shape;
  shape.num_layers = config.num_layers;
  shape.block_size = plan.limits.block_size;
  shape.num_kv_heads = config.num_kv_heads;
  shape.head_dim = config.head_dim;
  shape.num_blocks = plan.limits.num_kv_blocks;
  KILN_ASSIGN_OR_RETURN(e->cache_, KvCache::allocate(e->ctx_, shape, DType::kF32));
  // The workspace of the largest step now (memory_usage() is then what the plan says), not
  // grown step by step. The pages are touched only as steps use them.
  KILN_RETURN_IF_ERROR(e->model_->reserve_workspace(e->ctx_, plan.limits.max_batched_tokens, plan.limits.max_seqs));
  e->logits_.reserve(static_cast<size_t>(plan.limits.max_seqs) * static_cast<size_t>(config.vocab_size));
  return e;
}

MemoryUsage CpuEngine::memory_usage() const {
  MemoryUsage u;
  u.weights_bytes = model_->weights_bytes();
  u.kv_cache_bytes = cache_.nbytes();
  u.workspace_bytes = model_->workspace_bytes() + static_cast<int64_t>(logits_.capacity() * sizeof(float));
  return u;
}

std::string CpuEngine::device_name() const {
  return str_cat("cpu (", ctx_.pool->num_threads(), " threads, ", cpu::dot_isa_name(cpu::dot_isa()), ", ",
                 weight_dtype_name(plan_.weight_dtype), " weights)");
}

Result<StepResult> CpuEngine::step(const StepPlan& plan) {
  const auto start = std::chrono::steady_clock::now();
  const int64_t vocab = model_->config().vocab_size;
  KILN_RETURN_IF_ERROR(validate_step_plan(plan, kv_geometry(), vocab));
  const int32_t n = plan.num_tokens(), m = plan.num_samples();
  KILN_ASSIGN_OR_RETURN(const StepExtent extent,
                        check_step_limits(plan, plan_.limits));

  // Host metadata: the CPU ops read it in place.
  std::vector<int32_t> slots(static_cast<size_t>(n));
  step_slots(plan, static_cast<int32_t>(cache_.shape().block_size), slots.data());
  std::vector<int32_t> sample_rows(static_cast<size_t>(m));
  for (int32_t j = 0; j < m; ++j) sample_rows[static_cast<size_t>(j)] = sample_row(plan, j);
  // Logit rows: the samples' (or every token's, for return_all_logits), then the outputs'.
  const OutputRows out_rows = step_output_rows(plan);
  std::vector<int32_t> rows = sample_rows;
  if (plan.return_all_logits) {
    rows.resize(static_cast<size_t>(n));
    for (int32_t t = 0; t < n; ++t) rows[static_cast<size_t>(t)] = t;
  }
  const auto first_output_row = static_cast<int64_t>(rows.size());
  rows.insert(rows.end(), out_rows.logit_rows.begin(), out_rows.logit_rows.end());

  auto view = [](const std::vector<int32_t>& v) {
    return Tensor(const_cast<int32_t*>(v.data()), DType::kI32, Device::cpu(), {static_cast<int64_t>(v.size())});
  };
  models::ForwardInputs in;
  in.token_ids = view(plan.token_ids);
  in.positions = view(plan.positions);
  in.slot_mapping = view(slots);
  in.query_start = view(plan.query_start);
  in.kv_len = view(plan.kv_len);
  in.block_start = view(plan.block_start);
  in.block_ids = view(plan.block_ids);
  in.logit_rows = view(rows);
  in.max_query_len = extent.max_query_len;
  in.max_kv_len = extent.max_kv_len;
  in.abandon = &plan.abandon;
  const int64_t hidden_size = model_->config().hidden_size;
  std::vector<float> hidden_host;
  Tensor hidden;
  if (!out_rows.hidden_rows.empty()) {
    in.hidden_rows = view(out_rows.hidden_rows);
    hidden_host.resize(out_rows.hidden_rows.size() * static_cast<size_t>(hidden_size));
    hidden = Tensor(hidden_host.data(), DType::kF32, Device::cpu(),
                    {static_cast<int64_t>(out_rows.hidden_rows.size()), hidden_size});
  }

  logits_.resize(rows.size() * static_cast<size_t>(vocab));
  const Tensor logits(logits_.data(), DType::kF32, Device::cpu(), {static_cast<int64_t>(rows.size()), vocab});
  StepResult result;
  result.vocab_size = vocab;
  if (const Status st = model_->forward(ctx_, in, cache_, logits, hidden); !st.is_ok()) {
    if (!models::is_step_abandoned(st)) return st;
    result.abandoned = true;
    return result;
  }

  if (m > 0) {
    KILN_RETURN_IF_ERROR(await_step_masks(plan));
    std::vector<int32_t> sample_positions;
    const ops::SamplingBatch batch = step_sampling_batch(plan, &sample_positions);
    std::vector<float> picked;
    Tensor sample_logits = logits.rows(0, m);
    if (plan.return_all_logits) {
      picked.resize(static_cast<size_t>(m) * static_cast<size_t>(vocab));
      for (int32_t j = 0; j < m; ++j)
        std::copy_n(logits_.data() + static_cast<int64_t>(sample_rows[static_cast<size_t>(j)]) * vocab, vocab,
                    picked.data() + static_cast<int64_t>(j) * vocab);
      sample_logits = Tensor(picked.data(), DType::kF32, Device::cpu(), {m, vocab});
    }
    KILN_RETURN_IF_ERROR(ops::sample(ctx_, sample_logits, batch, &result.samples));
  }
  if (plan.num_outputs() > 0)
    result.outputs = step_outputs(plan, logits_.data() + first_output_row * vocab, vocab, hidden_host.data(), hidden_size);
  if (plan.return_all_logits) {
    result.logits.assign(logits_.begin(), logits_.begin() + static_cast<ptrdiff_t>(n) * vocab);
  }
  result.forward_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

}  // namespace kiln::runtime
