#include "kiln/runtime/backend/cuda/fused_decoder_cuda.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "kiln/runtime/backend/cuda/cuda_status.h"
#include "kiln/runtime/backend/cuda/decoder_fused.h"

namespace kiln::runtime::cuda {
namespace {

const uint16_t* bf16_ptr(const Tensor& t) { return t.empty() ? nullptr : t.data<const uint16_t>(); }

class CudaFusedDecoder final : public ops::FusedDecoder {
 public:
  Status init(const DeviceContext& ctx, const ops::FusedDecoderDesc& d) {
    device_ = ctx.device.index;
    shape_.hidden = static_cast<int>(d.hidden);
    shape_.heads = static_cast<int>(d.num_heads);
    shape_.kv_heads = static_cast<int>(d.num_kv_heads);
    shape_.head_dim = static_cast<int>(d.head_dim);
    shape_.inter = static_cast<int>(d.intermediate);
    shape_.eps = d.eps;
    shape_.scale = d.scale;
    shape_.sliding_window = d.sliding_window;
    shape_.vocab = d.embedding.dim(0);
    shape_.max_positions = d.rope_table.dim(0);
    KILN_RETURN_IF_ERROR(fused_decode_fits(shape_, device_));
    embedding_ = d.embedding;
    rope_ = d.rope_table;
    for (const ops::FusedDecoderLayer& l : d.layers) {
      for (const ops::LinearWeight* w : {l.qkv, l.o, l.gate_up, l.down}) {
        if (w == nullptr || w->weight.tensor().dtype() != DType::kBF16)
          return unimplemented("fused decode: weights must be bf16 [out, in] matrices");
      }
      FusedLayer f;
      f.input_norm = bf16_ptr(l.input_norm);
      f.post_norm = bf16_ptr(l.post_attention_norm);
      f.q_norm = bf16_ptr(l.q_norm);
      f.k_norm = bf16_ptr(l.k_norm);
      f.qkv_w = bf16_ptr(l.qkv->weight.tensor());
      f.qkv_b = bf16_ptr(l.qkv->bias.tensor());
      f.o_w = bf16_ptr(l.o->weight.tensor());
      f.o_b = bf16_ptr(l.o->bias.tensor());
      f.gate_up_w = bf16_ptr(l.gate_up->weight.tensor());
      f.gate_up_b = bf16_ptr(l.gate_up->bias.tensor());
      f.down_w = bf16_ptr(l.down->weight.tensor());
      f.down_b = bf16_ptr(l.down->bias.tensor());
      layers_.push_back(f);
    }
    const int64_t table_words = static_cast<int64_t>(layers_.size() * sizeof(FusedLayer) / 4);
    KILN_ASSIGN_OR_RETURN(table_, Buffer::allocate(ctx.device, DType::kI32, {table_words}));
    KILN_ASSIGN_OR_RETURN(partials_, Buffer::allocate(ctx.device, DType::kF32, {fused_partial_floats(shape_, device_)}));
    KILN_ASSIGN_OR_RETURN(counters_, Buffer::allocate(ctx.device, DType::kI32, {fused_counter_count(shape_)}));
    KILN_CUDA_RETURN_IF_ERROR(cudaMemset(counters_.tensor().raw(), 0, static_cast<size_t>(counters_.nbytes())));
    const char* trace = std::getenv("KILN_CUDA_FUSED_TRACE");
    if (trace != nullptr && std::string(trace) == "1") {
      const int64_t n = 3 * fused_barrier_count(static_cast<int>(layers_.size()));
      KILN_ASSIGN_OR_RETURN(trace_, Buffer::allocate(ctx.device, DType::kI64, {n + 5}));
      sums_.assign(static_cast<size_t>(n), 0.0);
    }
    return Status::ok();
  }

  // With KILN_CUDA_FUSED_TRACE=1 (eager steps only), the mean time of each kind of phase: its work
  // until the first block arrives at the barrier, the wait for the last block, and the barrier's
  // release after that.
  ~CudaFusedDecoder() override {
    if (launches_ == 0) return;
    const char* names[5] = {"qkv", "attention", "o", "gate_up", "down"};
    double work[5] = {}, spread[5] = {}, release[5] = {};
    for (size_t b = 1; b < sums_.size() / 3; ++b) {
      const size_t k = (b - 1) % 5;
      work[k] += sums_[3 * b] - sums_[3 * (b - 1) + 2];
      spread[k] += sums_[3 * b + 1] - sums_[3 * b];
      release[k] += sums_[3 * b + 2] - sums_[3 * b + 1];
    }
    const double per = static_cast<double>(launches_) * static_cast<double>(layers_.size()) * 1000.0;
    for (int k = 0; k < 5; ++k)
      std::fprintf(stderr,
                   "[fused] %-9s work %7.2f us  arrival spread %6.2f us  release %6.2f us  weights waited %6.2f us\n",
                   names[k], work[k] / per, spread[k] / per, release[k] / per, waits_[k] / per / 132.0);
  }

  Status run(const DeviceContext& ctx, const ops::FusedDecoderIo& io, const KvCache& cache) override {
    if (cache.shape().num_layers != static_cast<int64_t>(layers_.size()) || cache.layer(0).dtype() != DType::kBF16)
      return invalid_argument("fused decode: the KV cache does not match the model");
    const auto stream = static_cast<cudaStream_t>(ctx.stream);
    // The cache's layer addresses go into the device's layer table when they change (the first
    // step, run eagerly before a graph captures the launch).
    bool changed = cache.shape().block_size != shape_.block_size;
    for (size_t i = 0; i < layers_.size(); ++i) {
      auto* kv = cache.layer(static_cast<int64_t>(i)).data<uint16_t>();
      changed = changed || layers_[i].kv_cache != kv;
      layers_[i].kv_cache = kv;
    }
    if (changed || !uploaded_) {
      cudaStreamCaptureStatus capturing = cudaStreamCaptureStatusNone;
      KILN_CUDA_RETURN_IF_ERROR(cudaStreamIsCapturing(stream, &capturing));
      if (capturing != cudaStreamCaptureStatusNone)
        return internal_error("fused decode: the KV cache moved during graph capture");
      shape_.block_size = static_cast<int>(cache.shape().block_size);
      KILN_CUDA_RETURN_IF_ERROR(cudaMemcpy(table_.tensor().raw(), layers_.data(), layers_.size() * sizeof(FusedLayer),
                                           cudaMemcpyHostToDevice));
      uploaded_ = true;
    }
    FusedDecodeArgs a;
    a.shape = shape_;
    a.layers = static_cast<const FusedLayer*>(table_.tensor().raw());
    a.num_layers = static_cast<int>(layers_.size());
    a.token = io.token_ids.data<const int32_t>();
    a.position = io.positions.data<const int32_t>();
    a.slot = io.slot_mapping.data<const int32_t>();
    a.kv_len = io.kv_len.data<const int32_t>();
    a.block_ids = io.block_ids.data<const int32_t>();
    a.embedding = embedding_.data<const uint16_t>();
    a.rope_table = rope_.data<const float>();
    a.residual = io.residual.data<uint16_t>();
    a.qkv = io.qkv.data<uint16_t>();
    a.attn = io.attn.data<uint16_t>();
    a.gate_up = io.gate_up.data<uint16_t>();
    a.partials = partials_.tensor().data<float>();
    a.counters = reinterpret_cast<unsigned*>(counters_.tensor().data<int32_t>());
    if (trace_.empty()) return launch_fused_decode(a, device_, stream);
    std::vector<unsigned long long> t(sums_.size() + 5, 0);
    for (size_t i = 0; i < sums_.size(); i += 3) t[i] = ~0ull;
    KILN_CUDA_RETURN_IF_ERROR(cudaMemcpy(trace_.tensor().raw(), t.data(), t.size() * 8, cudaMemcpyHostToDevice));
    a.trace = static_cast<unsigned long long*>(trace_.tensor().raw());
    a.waits = a.trace + sums_.size();
    KILN_RETURN_IF_ERROR(launch_fused_decode(a, device_, stream));
    KILN_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream));
    KILN_CUDA_RETURN_IF_ERROR(cudaMemcpy(t.data(), trace_.tensor().raw(), t.size() * 8, cudaMemcpyDeviceToHost));
    // Times relative to the first arrival at the first barrier (doubles keep their precision).
    const double t0 = static_cast<double>(t[0]);
    for (size_t i = 0; i < sums_.size(); ++i) sums_[i] += static_cast<double>(t[i]) - t0;
    for (size_t k = 0; k < 5; ++k) waits_[k] += static_cast<double>(t[sums_.size() + k]);
    ++launches_;
    return Status::ok();
  }

 private:
  int device_ = 0;
  FusedShape shape_;
  Tensor embedding_, rope_;
  std::vector<FusedLayer> layers_;
  bool uploaded_ = false;
  Buffer table_, partials_, counters_, trace_;
  std::vector<double> sums_;
  double waits_[5] = {};
  int64_t launches_ = 0;
};

}  // namespace

Result<std::unique_ptr<ops::FusedDecoder>> create_fused_decoder(const DeviceContext& ctx,
                                                                const ops::FusedDecoderDesc& desc) {
  const char* env = std::getenv("KILN_CUDA_FUSED_DECODE");
  if (env != nullptr && std::string(env) == "0") return unimplemented("fused decode: off (KILN_CUDA_FUSED_DECODE=0)");
  auto d = std::make_unique<CudaFusedDecoder>();
  KILN_RETURN_IF_ERROR(d->init(ctx, desc));
  return std::unique_ptr<ops::FusedDecoder>(std::move(d));
}

}  // namespace kiln::runtime::cuda
