#include "kiln/runtime/ops/sample.h"

#include <cmath>

#include "kiln/runtime/backend/cpu/kernels_cpu.h"
#include "kiln/runtime/ops/dispatch.h"

#if defined(KILN_WITH_CUDA) && __has_include("kiln/runtime/backend/cuda/sample_cuda.h")
#include "kiln/runtime/backend/cuda/sample_cuda.h"
#include "kiln/runtime/backend/cuda/token_mask_cuda.h"
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

namespace {

bool mask_allows(std::span<const uint32_t> row, int32_t token) {
  return ((row[static_cast<size_t>(token) / 32] >> (static_cast<uint32_t>(token) % 32)) & 1u) != 0;
}

Status check_masks(const SamplingBatch& batch, int64_t m, int64_t vocab) {
  if (batch.mask_row.empty()) return Status::ok();
  const int64_t wpr = (vocab + 31) / 32;
  if (static_cast<int64_t>(batch.mask_row.size()) != m || batch.mask_words_per_row != wpr)
    return invalid_argument(str_cat("sample: token masks for ", batch.mask_row.size(), " rows of ",
                                    batch.mask_words_per_row, " words; want ", m, " rows of ", wpr));
  const int64_t rows = static_cast<int64_t>(batch.mask_words.size()) / wpr;
  for (int64_t i = 0; i < m; ++i) {
    const int32_t r = batch.mask_row[static_cast<size_t>(i)];
    if (r < -1 || r >= rows) return invalid_argument(str_cat("sample row ", i, ": token mask row ", r, " of ", rows));
    if (r < 0) continue;
    for (const auto& [token, bias] : batch.params[static_cast<size_t>(i)].logit_bias) {
      // -inf + inf is NaN: an infinite positive bias would undo the mask.
      if (bias == INFINITY) return invalid_argument(str_cat("sample row ", i, ": a masked row takes no +inf logit_bias"));
    }
  }
  return Status::ok();
}

// What makes the guarantees of ops/sample.h hold whatever the backend did with a row whose
// allowed logits are all -inf: the token, and the top logprobs, restricted to allowed tokens.
void enforce_masks(const SamplingBatch& batch, int64_t vocab, std::vector<SampledToken>* out) {
  const auto wpr = static_cast<size_t>(batch.mask_words_per_row);
  for (size_t i = 0; i < out->size(); ++i) {
    const int32_t r = batch.mask_row[i];
    if (r < 0) continue;
    const std::span<const uint32_t> row = batch.mask_words.subspan(static_cast<size_t>(r) * wpr, wpr);
    SampledToken& t = (*out)[i];
    std::erase_if(t.top, [&](const TokenLogprob& e) { return !mask_allows(row, e.token); });
    if (t.token >= 0 && t.token < vocab && mask_allows(row, t.token)) continue;
    int32_t first = kNoAllowedToken;
    for (int32_t id = 0; id < vocab && first < 0; ++id) if (mask_allows(row, id)) first = id;
    t.token = first;
    if (first == kNoAllowedToken) {
      t.logprob = 0.0f;
      t.top.clear();
    }
  }
}

}  // namespace

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
  KILN_RETURN_IF_ERROR(check_masks(batch, m, vocab));
  const bool masked = !batch.mask_row.empty();
  if (ctx.device.kind == DeviceKind::kCuda) {
#ifdef KILN_HAVE_CUDA_OP
    if (masked) KILN_RETURN_IF_ERROR(cuda::mask_logits(ctx, logits, batch));
    KILN_RETURN_IF_ERROR(cuda::sample(ctx, logits, batch, out));
#else
    return no_cuda_kernel("sample");
#endif
  } else {
    if (masked) cpu::mask_logits(ctx, logits, batch);
    KILN_RETURN_IF_ERROR(cpu::sample(ctx, logits, batch, out));
  }
  if (masked) enforce_masks(batch, vocab, out);
  return Status::ok();
}

}  // namespace kiln::runtime::ops
