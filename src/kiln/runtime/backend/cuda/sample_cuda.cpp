// Host side of the GPU sampler: turns each row's bias and penalty history into a short list of
// distinct adjusted tokens, uploads it with the row parameters in one copy, launches either the
// kernels over vocabulary slices (untruncated, top-k and top-p draws of batches they suit;
// sample_parts.cu) or one block per row (sample.cu), and copies back only the results.
#include "kiln/runtime/backend/cuda/sample_cuda.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <numeric>

#include "kiln/runtime/backend/cuda/cuda_status.h"
#include "kiln/runtime/backend/cuda/profile.h"
#include "kiln/runtime/backend/cuda/sample_kernels.h"
#include "kiln/runtime/backend/cuda/scratch.h"

namespace kiln::runtime::cuda {
namespace {

size_t align_up(size_t n) { return (n + 255) / 256 * 256; }

struct TokenAdjust {
  std::vector<float> biases;
  bool in_history = false;
  int32_t output_count = 0;
};

}  // namespace

Status sample(const DeviceContext& ctx, const Tensor& logits, const ops::SamplingBatch& batch,
              std::vector<SampledToken>* out) {
  const int64_t m = logits.dim(0), vocab = logits.dim(1);
  out->assign(static_cast<size_t>(m), SampledToken{});
  if (m == 0) return Status::ok();
  const auto stream = static_cast<cudaStream_t>(ctx.stream);

  std::vector<SampleRowParams> rows(static_cast<size_t>(m));
  std::vector<SampleAdjust> adjusts;
  std::vector<float> bias_values;
  int32_t work_rows = 0;
  // Rows reduced by slices first (sample_kernels.h).
  bool argmax_rows = false, draw_rows = false, topk_rows = false, topp_rows = false;
  for (int64_t r = 0; r < m; ++r) {
    const auto ri = static_cast<size_t>(r);
    const SamplingParams& sp = batch.params[ri];
    SampleRowParams& p = rows[ri];
    p.temperature = sp.temperature;
    p.top_k = sp.top_k;
    p.top_p = sp.top_p;
    p.min_p = sp.min_p;
    p.seed = sp.seed;
    p.position = batch.positions[ri];
    p.num_logprobs = sp.num_logprobs;
    p.repetition_penalty = sp.repetition_penalty;
    p.presence_penalty = sp.presence_penalty;
    p.frequency_penalty = sp.frequency_penalty;

    std::map<int32_t, TokenAdjust> by_token;
    for (const auto& [token, bias] : sp.logit_bias) by_token[token].biases.push_back(bias);
    if (sp.needs_history()) {
      const int32_t b = batch.history_start[ri], e = batch.history_start[ri + 1];
      const int32_t out_begin = b + batch.prompt_len[ri];
      for (int32_t j = b; j < e; ++j) {
        TokenAdjust& t = by_token[batch.history_tokens[static_cast<size_t>(j)]];
        t.in_history = true;
        if (j >= out_begin) ++t.output_count;
      }
    }
    p.adjust_begin = static_cast<int32_t>(adjusts.size());
    for (const auto& [token, t] : by_token) {
      SampleAdjust a;
      a.token = token;
      a.bias_begin = static_cast<int32_t>(bias_values.size());
      bias_values.insert(bias_values.end(), t.biases.begin(), t.biases.end());
      a.bias_end = static_cast<int32_t>(bias_values.size());
      a.in_history = t.in_history ? 1 : 0;
      a.output_count = t.output_count;
      adjusts.push_back(a);
    }
    p.adjust_end = static_cast<int32_t>(adjusts.size());
    // Rows with adjustments are copied before they change (logits are read-only); so are rows
    // whose top logprobs are too many for the device and get finished on the host.
    if (p.adjust_end > p.adjust_begin || sp.num_logprobs > kMaxDeviceTopLogprobs) p.work_row = work_rows++;
    argmax_rows = argmax_rows || sample_argmax_only(p);
    draw_rows = draw_rows || sample_untruncated_draw(p);
    topk_rows = topk_rows || sample_top_k_candidates(p);
    topp_rows = topp_rows || sample_top_p_slices(p);
  }

  // One upload: [params | adjusts | bias values].
  const size_t params_bytes = align_up(rows.size() * sizeof(SampleRowParams));
  const size_t adjust_bytes = align_up(adjusts.size() * sizeof(SampleAdjust));
  const size_t bias_bytes = align_up(bias_values.size() * sizeof(float));
  const size_t in_bytes = params_bytes + adjust_bytes + bias_bytes;
  KILN_ASSIGN_OR_RETURN(void* host_in, pinned_scratch(ScratchSlot::kSampleInputs, in_bytes));
  auto* hin = static_cast<uint8_t*>(host_in);
  std::memcpy(hin, rows.data(), rows.size() * sizeof(SampleRowParams));
  if (!adjusts.empty()) std::memcpy(hin + params_bytes, adjusts.data(), adjusts.size() * sizeof(SampleAdjust));
  if (!bias_values.empty()) {
    std::memcpy(hin + params_bytes + adjust_bytes, bias_values.data(), bias_values.size() * sizeof(float));
  }
  const size_t results_bytes = static_cast<size_t>(m) * sizeof(SampleRowResult);
  const bool sliced_draws = draw_rows || topk_rows || topp_rows;
  const int num_parts = argmax_rows || sliced_draws ? sample_parts(m, sliced_draws) : 0;
  const size_t parts_bytes = align_up(static_cast<size_t>(m) * static_cast<size_t>(num_parts) * sizeof(SamplePart));
  const size_t topk_bytes =
      align_up(topk_rows ? static_cast<size_t>(m) * static_cast<size_t>(num_parts) * sizeof(SampleTopKSlice) : 0);
  const size_t topp_bytes = topp_rows && num_parts > 0 ? static_cast<size_t>(m) * sizeof(SampleTopPState) : 0;
  const size_t work_bytes = static_cast<size_t>(work_rows) * static_cast<size_t>(vocab) * sizeof(float);
  KILN_ASSIGN_OR_RETURN(void* dev_in, device_scratch(ctx.device, ScratchSlot::kSampleInputs,
                                                     in_bytes + align_up(results_bytes) + parts_bytes + topk_bytes +
                                                         topp_bytes));
  auto* din = static_cast<uint8_t*>(dev_in);
  KILN_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(din, hin, in_bytes, cudaMemcpyHostToDevice, stream));
  float* work = nullptr;
  if (work_bytes > 0) {
    KILN_ASSIGN_OR_RETURN(void* w, device_scratch(ctx.device, ScratchSlot::kSampleWork, work_bytes));
    work = static_cast<float*>(w);
  }

  SampleLaunch l;
  l.logits = logits.data<const float>();
  l.work = work;
  l.params = reinterpret_cast<const SampleRowParams*>(din);
  l.adjusts = reinterpret_cast<const SampleAdjust*>(din + params_bytes);
  l.bias_values = reinterpret_cast<const float*>(din + params_bytes + adjust_bytes);
  l.results = reinterpret_cast<SampleRowResult*>(din + in_bytes);
  uint8_t* const slices = din + in_bytes + align_up(results_bytes);
  l.parts = num_parts > 0 ? reinterpret_cast<SamplePart*>(slices) : nullptr;
  l.num_parts = num_parts;
  l.draw_parts = draw_rows;
  l.topk = topk_bytes > 0 ? reinterpret_cast<SampleTopKSlice*>(slices + parts_bytes) : nullptr;
  l.topp = topp_bytes > 0 ? reinterpret_cast<SampleTopPState*>(slices + parts_bytes + topk_bytes) : nullptr;
  if (l.topp != nullptr) KILN_CUDA_RETURN_IF_ERROR(cudaMemsetAsync(l.topp, 0, topp_bytes, stream));
  l.m = m;
  l.vocab = vocab;
  {
    OpTimer timer("sample", stream);
    KILN_RETURN_IF_ERROR(launch_sample(l, stream));
  }

  KILN_ASSIGN_OR_RETURN(void* host_out, pinned_scratch(ScratchSlot::kSampleResults, results_bytes));
  KILN_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(host_out, l.results, results_bytes, cudaMemcpyDeviceToHost, stream));
  KILN_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream));
  const auto* res = static_cast<const SampleRowResult*>(host_out);

  std::vector<float> row;  // rows whose top logprobs are finished here
  for (int64_t r = 0; r < m; ++r) {
    const auto ri = static_cast<size_t>(r);
    const SamplingParams& sp = batch.params[ri];
    SampledToken& t = (*out)[ri];
    t.token = res[r].token;
    if (sp.num_logprobs < 0) continue;
    t.logprob = res[r].logprob;
    if (sp.num_logprobs <= kMaxDeviceTopLogprobs) {
      for (int j = 0; j < sp.num_logprobs; ++j) t.top.push_back({res[r].top_ids[j], res[r].top_logprobs[j]});
      continue;
    }
    // The token's logprob is logit - log_z, so log_z comes back with it.
    row.resize(static_cast<size_t>(vocab));
    const float* src = work + static_cast<int64_t>(rows[ri].work_row) * vocab;
    KILN_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(row.data(), src, static_cast<size_t>(vocab) * sizeof(float),
                                              cudaMemcpyDeviceToHost, stream));
    KILN_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream));
    const double log_z = static_cast<double>(row[static_cast<size_t>(t.token)]) - static_cast<double>(t.logprob);
    std::vector<int32_t> ids(static_cast<size_t>(vocab));
    std::iota(ids.begin(), ids.end(), 0);
    const auto k = static_cast<size_t>(std::min<int64_t>(sp.num_logprobs, vocab));
    std::partial_sort(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(k), ids.end(), [&](int32_t a, int32_t b) {
      const float la = row[static_cast<size_t>(a)], lb = row[static_cast<size_t>(b)];
      return la > lb || (la == lb && a < b);
    });
    for (size_t i = 0; i < k; ++i) {
      t.top.push_back({ids[i], static_cast<float>(static_cast<double>(row[static_cast<size_t>(ids[i])]) - log_z)});
    }
  }
  return Status::ok();
}

}  // namespace kiln::runtime::cuda
