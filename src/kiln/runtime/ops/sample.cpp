#include "kiln/runtime/ops/sample.h"

#include <cmath>

#include "kiln/runtime/backend/cpu/kernels_cpu.h"
#include "kiln/runtime/ops/dispatch.h"

#if defined(KILN_WITH_CUDA) && __has_include("kiln/runtime/backend/cuda/sample_cuda.h")
#include "kiln/runtime/backend/cuda/sample_cuda.h"
#define KILN_HAVE_CUDA_OP 1
#endif

namespace kiln::runtime::ops {

Status check_sampling_params(const SamplingParams& p, int64_t vocab_size, const std::string& where) {
  if (!std::isfinite(p.temperature) || p.temperature < 0.0f)
    return invalid_argument(str_cat(where, ": temperature ", p.temperature, " must be finite and >= 0"));
  if (p.top_k < 0) return invalid_argument(str_cat(where, ": top_k ", p.top_k, " must be >= 0"));
  if (!(p.top_p > 0.0f && p.top_p <= 1.0f)) return invalid_argument(str_cat(where, ": top_p ", p.top_p, " must be in (0, 1]"));
  if (!(p.min_p >= 0.0f && p.min_p <= 1.0f)) return invalid_argument(str_cat(where, ": min_p ", p.min_p, " must be in [0, 1]"));
  if (!(p.repetition_penalty > 0.0f) || !std::isfinite(p.repetition_penalty))
    return invalid_argument(str_cat(where, ": repetition_penalty ", p.repetition_penalty, " must be > 0"));
  if (!std::isfinite(p.presence_penalty) || !std::isfinite(p.frequency_penalty))
    return invalid_argument(str_cat(where, ": presence and frequency penalties must be finite"));
  for (const auto& [token, bias] : p.logit_bias) {
    if (token < 0 || token >= vocab_size)
      return invalid_argument(str_cat(where, ": logit_bias token ", token, " is outside the vocabulary of ", vocab_size));
    if (std::isnan(bias)) return invalid_argument(str_cat(where, ": logit_bias of token ", token, " is NaN"));
  }
  if (p.num_logprobs < -1 || p.num_logprobs > vocab_size)
    return invalid_argument(str_cat(where, ": num_logprobs ", p.num_logprobs, " must be in [-1, ", vocab_size, "]"));
  return Status::ok();
}

Status sample(const DeviceContext& ctx, const Tensor& logits, const SamplingBatch& batch,
              std::vector<SampledToken>* out) {
  KILN_RETURN_IF_ERROR(check_tensor(logits, "sample logits", DType::kF32, ctx.device, 2));
  const int64_t m = logits.dim(0), vocab = logits.dim(1);
  if (static_cast<int64_t>(batch.params.size()) != m || static_cast<int64_t>(batch.positions.size()) != m)
    return invalid_argument(str_cat("sample: ", m, " logit rows but ", batch.params.size(), " params and ",
                                    batch.positions.size(), " positions"));
  const bool has_history = !batch.history_start.empty();
  if (has_history && (static_cast<int64_t>(batch.history_start.size()) != m + 1 ||
                      static_cast<int64_t>(batch.prompt_len.size()) != m))
    return invalid_argument("sample: history_start must have rows + 1 entries and prompt_len rows entries");
  for (int64_t i = 0; i < m; ++i) {
    const std::string where = str_cat("sample row ", i);
    KILN_RETURN_IF_ERROR(check_sampling_params(batch.params[static_cast<size_t>(i)], vocab, where));
    if (batch.params[static_cast<size_t>(i)].needs_history() && !has_history)
      return invalid_argument(str_cat(where, ": penalties need the token history, which is missing"));
    if (has_history) {
      const int32_t b = batch.history_start[static_cast<size_t>(i)], e = batch.history_start[static_cast<size_t>(i) + 1];
      if (b < 0 || e < b || e > static_cast<int64_t>(batch.history_tokens.size()))
        return invalid_argument(str_cat(where, ": history span [", b, ", ", e, ") is malformed"));
      const int32_t pl = batch.prompt_len[static_cast<size_t>(i)];
      if (pl < 0 || pl > e - b) return invalid_argument(str_cat(where, ": prompt_len ", pl, " exceeds its history"));
      for (int32_t j = b; j < e; ++j) {
        const int32_t t = batch.history_tokens[static_cast<size_t>(j)];
        if (t < 0 || t >= vocab)
          return invalid_argument(str_cat(where, ": history token ", t, " is outside the vocabulary of ", vocab));
      }
    }
  }
  if (ctx.device.kind == DeviceKind::kCuda) {
#ifdef KILN_HAVE_CUDA_OP
    return cuda::sample(ctx, logits, batch, out);
#else
    return no_cuda_kernel("sample");
#endif
  }
  return cpu::sample(ctx, logits, batch, out);
}

}  // namespace kiln::runtime::ops
