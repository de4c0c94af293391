#include "kiln/runtime/cuda_engine.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
#include <vector>

#include "kiln/core/log.h"
#include "kiln/core/str.h"
#include "kiln/runtime/backend/cuda/cuda_status.h"
#include "kiln/runtime/backend/cuda/device.h"
#include "kiln/runtime/backend/cuda/memory_cuda.h"
#include "kiln/runtime/backend/cuda/scratch.h"
#include "kiln/runtime/fp8_weights.h"
#include "kiln/runtime/kv_cache.h"
#include "kiln/runtime/models/llama.h"
#include "kiln/runtime/ops/gather_rows.h"
#include "kiln/runtime/ops/sample.h"
#include "kiln/runtime/step_inputs.h"
#include "kiln/runtime/step_metadata.h"
#include "kiln/runtime/weights.h"

namespace kiln::runtime::cuda {
namespace {

struct MetaBuffers {
  StepMetaLayout layout;
  PinnedBuffer host;
  Buffer dev;
};

struct GraphEntry {
  cudaGraphExec_t exec = nullptr;
  int64_t workspace_bytes = 0;
  uint64_t scratch_gen = 0;
  uint64_t meta_gen = 0;
};

class CudaEngine final : public Engine {
 public:
  static Result<std::unique_ptr<CudaEngine>> load(const std::filesystem::path& model_dir, const EngineOptions& options);
  ~CudaEngine() override;

  Result<StepResult> step(const StepPlan& plan) override;
  const model::ModelConfig& config() const override { return model_->config(); }
  const MemoryPlan& memory_plan() const override { return plan_; }
  MemoryUsage memory_usage() const override;
  std::string device_name() const override { return str_cat(device_->name(), " (cuda:", device_->index(), ")"); }

 private:
  CudaEngine() = default;
  Status ensure_meta(MetaBuffers& mb, int64_t cap_tokens, int64_t cap_blocks);
  Result<Buffer*> ensure_logits(int64_t rows);
  Status warm_up();
  Status run_forward(const models::ForwardInputs& in, const Tensor& logits, int64_t bucket);
  void drop_graphs();
  int64_t bucket_for(int64_t s) const;

  MemoryPlan plan_;
  std::unique_ptr<CudaDevice> device_;
  DeviceContext ctx_;
  std::unique_ptr<models::LlamaModel> model_;
  KvCache cache_;
  int64_t weights_bytes_ = 0;
  int64_t workspace_bytes_ = 0;  // what the load allocated besides weights and KV cache

  // Steps of any shape use general_; decode-bucket steps use decode_, whose regions are sized by
  // max_seqs so that everything a step needs lies in one short prefix, uploaded in one copy.
  MetaBuffers general_, decode_;
  uint64_t meta_gen_ = 0;
  Buffer logits_;  // [rows, vocab] F32
  int64_t logits_rows_ = 0;

  bool graphs_enabled_ = true;
  std::vector<int64_t> buckets_;
  std::map<int64_t, GraphEntry> graphs_;
  std::map<int64_t, int> graph_failures_;
};

CudaEngine::~CudaEngine() {
  if (device_ != nullptr) {
    (void)device_->make_current();
    (void)device_->synchronize();
  }
  drop_graphs();
}

void CudaEngine::drop_graphs() {
  for (auto& [b, g] : graphs_) {
    if (g.exec != nullptr) cudaGraphExecDestroy(g.exec);
  }
  graphs_.clear();
}

int64_t CudaEngine::bucket_for(int64_t s) const {
  for (int64_t b : buckets_) {
    if (b >= s) return b;
  }
  return -1;
}

Status CudaEngine::ensure_meta(MetaBuffers& mb, int64_t cap_tokens, int64_t cap_blocks) {
  if (!mb.dev.empty() && cap_blocks <= mb.layout.cap_blocks) return Status::ok();
  KILN_RETURN_IF_ERROR(device_->synchronize());
  drop_graphs();
  mb.layout = StepMetaLayout::make(cap_tokens, plan_.limits.max_seqs, std::max(cap_blocks, mb.layout.cap_blocks * 2));
  KILN_ASSIGN_OR_RETURN(mb.host, PinnedBuffer::alloc(mb.layout.total * sizeof(int32_t)));
  KILN_ASSIGN_OR_RETURN(mb.dev, Buffer::allocate(ctx_.device, DType::kI32, {static_cast<int64_t>(mb.layout.total)}));
  ++meta_gen_;
  return Status::ok();
}

Result<Buffer*> CudaEngine::ensure_logits(int64_t rows) {
  if (rows > logits_rows_) {
    KILN_RETURN_IF_ERROR(device_->synchronize());
    drop_graphs();
    KILN_ASSIGN_OR_RETURN(logits_, Buffer::allocate(ctx_.device, DType::kF32, {rows, model_->config().vocab_size}));
    logits_rows_ = rows;
  }
  return &logits_;
}

MemoryUsage CudaEngine::memory_usage() const {
  MemoryUsage u;
  u.weights_bytes = weights_bytes_;
  u.kv_cache_bytes = cache_.nbytes();
  // Measured at load, not from the device's running total, which counts every engine on it.
  u.workspace_bytes = workspace_bytes_;
  return u;
}

Result<std::unique_ptr<CudaEngine>> CudaEngine::load(const std::filesystem::path& model_dir,
                                                     const EngineOptions& given) {
  KILN_ASSIGN_OR_RETURN(model::ModelConfig config, model::load_model_config(model_dir));
  quantize_at_load(given.quantize_fp8, &config);
  EngineOptions options = given;
  if (options.kv_cache_bytes <= 0 && options.memory_budget <= 0) {
    // Read once, before anything of this engine is on the device: the plan then fixes every size.
    KILN_ASSIGN_OR_RETURN(options.memory_budget,
                          default_memory_budget(DeviceKind::kCuda, options.device_index, options.gpu_memory_fraction));
  }
  KILN_ASSIGN_OR_RETURN(MemoryPlan plan, plan_memory(config, options));
  const EngineLimits& lim = plan.limits;
  std::unique_ptr<CudaEngine> e(new CudaEngine());
  e->plan_ = plan;
  KILN_ASSIGN_OR_RETURN(e->device_, CudaDevice::open(options.device_index));
  e->ctx_.device = Device::cuda(options.device_index);
  e->ctx_.stream = e->device_->stream();
  e->ctx_.blas = e->device_->lt_handle();
  const int64_t allocated_at_start = allocated_bytes(e->ctx_.device);
  {
    KILN_ASSIGN_OR_RETURN(std::unique_ptr<model::Checkpoint> ck, model::Checkpoint::open(model_dir));
    const int64_t before = allocated_bytes(e->ctx_.device);
    KILN_ASSIGN_OR_RETURN(e->model_, models::LlamaModel::load(e->ctx_, config, *ck, lim.max_model_len));
    e->weights_bytes_ = allocated_bytes(e->ctx_.device) - before;
  }
  const char* graphs_env = std::getenv("KILN_CUDA_GRAPHS");
  // A model whose forward reads a device result on the host mid-step (MoE experts the grouped
  // GEMMs cannot take, models/moe_block.cpp) holds a stream sync that a CUDA graph cannot: it
  // decodes without graphs. MoE layers on the grouped GEMMs are graph-safe: every launch shape
  // depends on the bucket's token count only.
  e->graphs_enabled_ = (graphs_env == nullptr || std::string(graphs_env) != "0") && !e->model_->syncs_mid_step();

  KvCacheShape shape;
  shape.num_layers = config.num_layers;
  shape.block_size = lim.block_size;
  shape.num_kv_heads = config.num_kv_heads;
  shape.head_dim = config.head_dim;
  shape.num_blocks = lim.num_kv_blocks;
  KILN_ASSIGN_OR_RETURN(e->cache_, KvCache::allocate(e->ctx_, shape, DType::kBF16));

  for (int64_t b = 1; b < lim.max_seqs; b *= 2) e->buckets_.push_back(b);
  e->buckets_.push_back(lim.max_seqs);
  const int64_t cap_blocks = step_meta_block_capacity(lim.max_seqs, lim.max_model_len, lim.block_size);
  const int64_t cap_tokens = std::max<int64_t>(lim.max_batched_tokens, lim.max_seqs);
  KILN_RETURN_IF_ERROR(e->ensure_meta(e->general_, cap_tokens, cap_blocks));
  KILN_RETURN_IF_ERROR(e->ensure_meta(e->decode_, lim.max_seqs, cap_blocks));
  KILN_RETURN_IF_ERROR(e->ensure_logits(lim.max_seqs).status());
  // A decode step runs padded to its bucket, up to max_seqs tokens, which may pass the budget.
  KILN_RETURN_IF_ERROR(e->model_->reserve_workspace(e->ctx_, cap_tokens, lim.max_seqs));
  KILN_RETURN_IF_ERROR(e->warm_up());
  // Engines load one at a time (the model pool's loader thread) and steps allocate nothing after
  // warm-up, so what this load added beyond weights and KV cache is this engine's workspace.
  e->workspace_bytes_ = std::max<int64_t>(
      0, allocated_bytes(e->ctx_.device) - allocated_at_start - e->weights_bytes_ - e->cache_.nbytes());
  log_info("cuda engine: ", e->device_name(), ", weights ", format_bytes(double(e->weights_bytes_)), " (planned ",
           format_bytes(double(plan.weights_bytes)), "), KV cache ", format_bytes(double(e->cache_.nbytes())), " (",
           shape.num_blocks, " blocks of ", shape.block_size, " tokens), workspace ",
           format_bytes(double(e->workspace_bytes_)), " (planned ", format_bytes(double(plan.workspace_bytes)), ")");
  return e;
}

// One forward of max_batched_tokens tokens (in short sequences over the first blocks), so that
// every activation buffer reaches its final size now: later steps allocate nothing, and the
// memory figures are real from the start. The K/V it writes land in free blocks.
Status CudaEngine::warm_up() {
  const int64_t n = plan_.limits.max_batched_tokens, bs = plan_.limits.block_size;
  const int64_t s = std::min<int64_t>(plan_.limits.max_seqs, n);
  const int64_t len = std::min<int64_t>((n + s - 1) / s, plan_.limits.max_model_len);
  const int64_t num_blocks = cache_.shape().num_blocks;
  StepPlan plan;
  plan.query_start.push_back(0);
  plan.block_start.push_back(0);
  int64_t block = 0;
  for (int64_t i = 0; i < s && static_cast<int64_t>(plan.token_ids.size()) < n; ++i) {
    const int64_t l = std::min<int64_t>(len, n - static_cast<int64_t>(plan.token_ids.size()));
    for (int64_t p = 0; p < l; ++p) {
      plan.token_ids.push_back(0);
      plan.positions.push_back(static_cast<int32_t>(p));
    }
    plan.query_start.push_back(static_cast<int32_t>(plan.token_ids.size()));
    plan.kv_len.push_back(static_cast<int32_t>(l));
    for (int64_t b = 0; b < (l + bs - 1) / bs; ++b) plan.block_ids.push_back(static_cast<int32_t>(block++ % num_blocks));
    plan.block_start.push_back(static_cast<int32_t>(plan.block_ids.size()));
  }
  for (int32_t i = 0; i < plan.num_seqs(); ++i) {
    plan.sample_seqs.push_back(i);
    SamplingParams sp;
    sp.temperature = 0.0f;
    plan.sampling.push_back(sp);
  }
  KILN_ASSIGN_OR_RETURN(StepResult r, step(plan));
  (void)r;
  return Status::ok();
}

Status CudaEngine::run_forward(const models::ForwardInputs& in, const Tensor& logits, int64_t bucket) {
  const auto stream = static_cast<cudaStream_t>(ctx_.stream);
  if (bucket <= 0 || !graphs_enabled_) return model_->forward(ctx_, in, cache_, logits);
  auto it = graphs_.find(bucket);
  if (it != graphs_.end()) {
    const GraphEntry& g = it->second;
    if (g.workspace_bytes == model_->workspace_bytes() && g.scratch_gen == scratch_generation() &&
        g.meta_gen == meta_gen_) {
      return cuda_status(cudaGraphLaunch(g.exec, stream), "cudaGraphLaunch");
    }
    drop_graphs();  // some buffer a graph points into has moved
  }
  // Run eagerly (this step's result), then capture the same launches for the next steps of this
  // bucket: every buffer they touch now has its final size, so capture allocates nothing.
  KILN_RETURN_IF_ERROR(model_->forward(ctx_, in, cache_, logits));
  if (graph_failures_[bucket] > 0) return Status::ok();
  KILN_CUDA_RETURN_IF_ERROR(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
  const Status st = model_->forward(ctx_, in, cache_, logits);
  cudaGraph_t graph = nullptr;
  const cudaError_t end = cudaStreamEndCapture(stream, &graph);
  cudaGraphExec_t exec = nullptr;
  cudaError_t inst = cudaErrorUnknown;
  if (st.is_ok() && end == cudaSuccess) inst = cudaGraphInstantiate(&exec, graph, 0);
  if (graph != nullptr) cudaGraphDestroy(graph);
  if (!st.is_ok() || end != cudaSuccess || inst != cudaSuccess) {
    cudaGetLastError();
    ++graph_failures_[bucket];
    log_warn("cuda engine: decode graph for ", bucket, " sequences not captured (",
             !st.is_ok() ? st.to_string() : std::string(cudaGetErrorString(end != cudaSuccess ? end : inst)),
             "); this bucket runs without a graph");
    return Status::ok();
  }
  graphs_[bucket] = GraphEntry{exec, model_->workspace_bytes(), scratch_generation(), meta_gen_};
  return Status::ok();
}

Result<StepResult> CudaEngine::step(const StepPlan& plan) {
  const auto start = std::chrono::steady_clock::now();
  KILN_RETURN_IF_ERROR(device_->make_current());
  const int64_t vocab = model_->config().vocab_size;
  KILN_RETURN_IF_ERROR(validate_step_plan(plan, kv_geometry(), vocab));
  const int32_t n = plan.num_tokens(), s = plan.num_seqs(), m = plan.num_samples();
  KILN_ASSIGN_OR_RETURN(const StepExtent extent,
                        check_step_limits(plan, plan_.limits));
  StepResult result;
  result.vocab_size = vocab;
  if (n == 0) return result;
  if (plan.return_all_logits && plan.num_outputs() > 0)
    return invalid_argument("step plan: return_all_logits cannot be combined with outputs on CUDA");
  const OutputRows out_rows = step_output_rows(plan);

  // A pure decode step where every sequence samples runs as a graph of its bucket: padding
  // sequences have one token at position 0 over block 0, write no K/V (slot -1), and their
  // logits are never read.
  bool decode = !plan.return_all_logits && n == s && m == s;
  for (int32_t j = 0; decode && j < m; ++j) decode = plan.sample_seqs[static_cast<size_t>(j)] == j;
  const int64_t bucket = decode ? bucket_for(s) : -1;
  const int64_t rows_total = bucket > 0 ? bucket : s;  // sequences after padding
  const int64_t tok_total = bucket > 0 ? bucket : n;
  const int64_t pads = rows_total - s;
  MetaBuffers& mb = bucket > 0 ? decode_ : general_;
  KILN_RETURN_IF_ERROR(ensure_meta(mb, mb.layout.cap_tokens, static_cast<int64_t>(plan.block_ids.size()) + pads));
  const StepMetaLayout& meta = mb.layout;
  auto* h = mb.host.as<int32_t>();
  const int32_t bs = static_cast<int32_t>(cache_.shape().block_size);
  std::memcpy(h + meta.tokens, plan.token_ids.data(), static_cast<size_t>(n) * 4);
  std::memcpy(h + meta.positions, plan.positions.data(), static_cast<size_t>(n) * 4);
  step_slots(plan, bs, h + meta.slots);
  std::memcpy(h + meta.query_start, plan.query_start.data(), static_cast<size_t>(s + 1) * 4);
  std::memcpy(h + meta.kv_len, plan.kv_len.data(), static_cast<size_t>(s) * 4);
  std::memcpy(h + meta.block_start, plan.block_start.data(), static_cast<size_t>(s + 1) * 4);
  std::memcpy(h + meta.block_ids, plan.block_ids.data(), plan.block_ids.size() * 4);
  const int32_t blocks_end = plan.block_start[static_cast<size_t>(s)];
  for (int64_t p = 0; p < pads; ++p) {
    const size_t t = static_cast<size_t>(n + p), q = static_cast<size_t>(s + p);
    h[meta.tokens + t] = 0;
    h[meta.positions + t] = 0;
    h[meta.slots + t] = -1;
    h[meta.query_start + q + 1] = static_cast<int32_t>(t + 1);
    h[meta.kv_len + q] = 1;
    h[meta.block_start + q + 1] = blocks_end + static_cast<int32_t>(p + 1);
    h[meta.block_ids + static_cast<size_t>(blocks_end + p)] = 0;
  }
  const int64_t n_blocks_used = blocks_end + pads;
  // Logit rows: every token, every (padded) sequence of a decode bucket, or the sampled rows.
  int64_t n_rows = 0;
  if (plan.return_all_logits) {
    for (int32_t t = 0; t < n; ++t) h[meta.logit_rows + static_cast<size_t>(t)] = t;
    n_rows = n;
  } else if (bucket > 0) {
    for (int64_t t = 0; t < tok_total; ++t) h[meta.logit_rows + static_cast<size_t>(t)] = static_cast<int32_t>(t);
    n_rows = tok_total;
  } else {
    // The samples' rows, then the rows of the outputs that return logits.
    for (int32_t j = 0; j < m; ++j) h[meta.logit_rows + static_cast<size_t>(j)] = sample_row(plan, j);
    n_rows = m;
    for (int32_t r : out_rows.logit_rows) h[meta.logit_rows + static_cast<size_t>(n_rows++)] = r;
  }

  const auto stream = static_cast<cudaStream_t>(ctx_.stream);
  int32_t* d = mb.dev.tensor().data<int32_t>();
  auto upload = [&](size_t off, int64_t count) -> Status {
    if (count <= 0) return Status::ok();
    return cuda_status(cudaMemcpyAsync(d + off, h + off, static_cast<size_t>(count) * 4, cudaMemcpyHostToDevice, stream),
                       "step metadata upload");
  };
  if (bucket > 0) {
    KILN_RETURN_IF_ERROR(upload(0, static_cast<int64_t>(meta.block_ids) + n_blocks_used));
  } else {
    KILN_RETURN_IF_ERROR(upload(meta.tokens, tok_total));
    KILN_RETURN_IF_ERROR(upload(meta.positions, tok_total));
    KILN_RETURN_IF_ERROR(upload(meta.slots, tok_total));
    KILN_RETURN_IF_ERROR(upload(meta.logit_rows, n_rows));
    KILN_RETURN_IF_ERROR(upload(meta.query_start, rows_total + 1));
    KILN_RETURN_IF_ERROR(upload(meta.kv_len, rows_total));
    KILN_RETURN_IF_ERROR(upload(meta.block_start, rows_total + 1));
    KILN_RETURN_IF_ERROR(upload(meta.block_ids, n_blocks_used));
  }

  auto view = [&](size_t off, int64_t count) { return Tensor(d + off, DType::kI32, ctx_.device, {count}); };
  models::ForwardInputs in;
  in.token_ids = view(meta.tokens, tok_total);
  in.positions = view(meta.positions, tok_total);
  in.slot_mapping = view(meta.slots, tok_total);
  in.query_start = view(meta.query_start, rows_total + 1);
  in.kv_len = view(meta.kv_len, rows_total);
  in.block_start = view(meta.block_start, rows_total + 1);
  // A graph must not depend on this step's table length: give it the whole region.
  in.block_ids = view(meta.block_ids, bucket > 0 ? meta.cap_blocks : std::max<int64_t>(n_blocks_used, 1));
  in.logit_rows = view(meta.logit_rows, n_rows);
  in.max_query_len = bucket > 0 ? 1 : extent.max_query_len;
  in.max_kv_len = bucket > 0 ? plan_.limits.max_model_len : extent.max_kv_len;
  // StepPlan::abandon is left unasked: the host queues a whole step's kernels (or one graph)
  // ahead of the GPU, so stopping between layers would mean a sync per layer, and a GPU step is
  // short enough that waiting for it costs a newcomer little.

  KILN_ASSIGN_OR_RETURN(Buffer * lb, ensure_logits(std::max<int64_t>(n_rows, m)));
  const Tensor logits = lb->tensor().rows(0, n_rows);
  // Hidden-state outputs (embeddings) run outside any graph: a plan with outputs never samples
  // every sequence, so it is never a decode bucket.
  const int64_t hidden_size = model_->config().hidden_size;
  const auto n_hidden = static_cast<int64_t>(out_rows.hidden_rows.size());
  Buffer hidden_rows_dev, hidden_dev;
  if (n_hidden > 0) {
    KILN_ASSIGN_OR_RETURN(hidden_rows_dev, Buffer::allocate(ctx_.device, DType::kI32, {n_hidden}));
    KILN_RETURN_IF_ERROR(copy_to_device(ctx_, out_rows.hidden_rows.data(), hidden_rows_dev.tensor()));
    KILN_ASSIGN_OR_RETURN(hidden_dev, Buffer::allocate(ctx_.device, compute_dtype(ctx_.device), {n_hidden, hidden_size}));
    in.hidden_rows = hidden_rows_dev.tensor();
    KILN_RETURN_IF_ERROR(model_->forward(ctx_, in, cache_, logits, hidden_dev.tensor()));
  } else {
    KILN_RETURN_IF_ERROR(run_forward(in, logits, bucket));
  }

  if (plan.return_all_logits) {
    result.logits.resize(static_cast<size_t>(n) * static_cast<size_t>(vocab));
    KILN_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(result.logits.data(), logits.raw(), result.logits.size() * 4,
                                              cudaMemcpyDeviceToHost, stream));
  }
  if (m > 0) {
    // The forward is queued on the stream: the masks computed meanwhile are awaited only now.
    KILN_RETURN_IF_ERROR(await_step_masks(plan));
    std::vector<int32_t> sample_positions;
    const ops::SamplingBatch batch = step_sampling_batch(plan, &sample_positions);
    Tensor sample_logits = logits.rows(0, m);
    Buffer picked;
    if (plan.return_all_logits) {
      std::vector<int32_t> sample_rows(static_cast<size_t>(m));
      for (int32_t j = 0; j < m; ++j) sample_rows[static_cast<size_t>(j)] = sample_row(plan, j);
      KILN_ASSIGN_OR_RETURN(Buffer rows_dev, Buffer::allocate(ctx_.device, DType::kI32, {m}));
      KILN_RETURN_IF_ERROR(copy_to_device(ctx_, sample_rows.data(), rows_dev.tensor()));
      KILN_ASSIGN_OR_RETURN(picked, Buffer::allocate(ctx_.device, DType::kF32, {m, vocab}));
      KILN_RETURN_IF_ERROR(ops::gather_rows(ctx_, logits, rows_dev.tensor(), picked.tensor()));
      sample_logits = picked.tensor();
      KILN_RETURN_IF_ERROR(device_->synchronize());  // sample_rows and the buffers die with this scope
    }
    KILN_RETURN_IF_ERROR(ops::sample(ctx_, sample_logits, batch, &result.samples));
  }
  KILN_RETURN_IF_ERROR(device_->synchronize());
  if (plan.num_outputs() > 0) {
    std::vector<float> out_logits(out_rows.logit_rows.size() * static_cast<size_t>(vocab));
    if (!out_logits.empty())
      KILN_RETURN_IF_ERROR(copy_to_host(ctx_, logits.rows(m, static_cast<int64_t>(out_rows.logit_rows.size())),
                                        out_logits.data()));
    std::vector<float> hidden(static_cast<size_t>(n_hidden * hidden_size));
    if (n_hidden > 0) {
      const Tensor& hd = hidden_dev.tensor();
      if (hd.dtype() == DType::kF32) {
        KILN_RETURN_IF_ERROR(copy_to_host(ctx_, hd, hidden.data()));
      } else {
        std::vector<uint16_t> raw(hidden.size());
        KILN_RETURN_IF_ERROR(copy_to_host(ctx_, hd, raw.data()));
        for (size_t i = 0; i < raw.size(); ++i) hidden[i] = bf16_to_f32(raw[i]);
      }
    }
    result.outputs = step_outputs(plan, out_logits.data(), vocab, hidden.data(), hidden_size);
  }
  result.forward_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

}  // namespace

Result<std::unique_ptr<Engine>> load_engine(const std::filesystem::path& model_dir, const EngineOptions& options) {
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<CudaEngine> e, CudaEngine::load(model_dir, options));
  return std::unique_ptr<Engine>(std::move(e));
}

}  // namespace kiln::runtime::cuda
