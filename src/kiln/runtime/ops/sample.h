// Sampling one token per row of logits, each row with its own parameters and Philox stream.
//
// Per row, in this order (the order vLLM and transformers apply them in):
//   0. a row with a token mask (structured generation) has every disallowed token's logit set to
//      -inf, in place in `logits`, before anything else;
//   1. logit_bias added to the raw logits;
//   2. repetition penalty (transformers' semantics: over the distinct tokens of prompt + output,
//      a positive logit is divided by the penalty, a negative one multiplied);
//   3. presence and frequency penalties (OpenAI's: over output tokens only,
//      logit -= presence * [count > 0] + frequency * count);
//   -> logprobs are the log-softmax of these logits: after bias and penalties, before temperature
//      and truncation, so they describe the model's distribution and not the sampler's;
//   4. greedy (temperature 0) takes the argmax (lowest id on ties); otherwise logits / temperature,
//      then top-k, top-p (smallest set whose mass >= top_p, at least one token), min-p (drop
//      tokens with p < min_p * p_max), renormalise, and draw with the uniform of
//      philox_at(seed, position).
// The result for a row depends only on that row's logits, parameters, history, mask, seed and
// position.
//
// A masked row never yields a disallowed token: its logprobs are those of the masked
// distribution (disallowed tokens have probability 0 and are left out of the top logprobs); when
// every allowed token's logit is -inf or NaN it takes the lowest allowed id; when its mask allows
// no token at all, its token is kNoAllowedToken and the caller decides (serve/ ends that sequence
// with an error).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "kiln/runtime/device_context.h"
#include "kiln/runtime/sampling.h"
#include "kiln/runtime/tensor.h"

namespace kiln::runtime::ops {

// Host-side description of the rows to sample; everything is indexed by row.
struct SamplingBatch {
  std::span<const SamplingParams> params;  // [m]
  // [m] position the sampled token will take in its sequence (= its kv_len): keys the Philox stream.
  std::span<const int32_t> positions;
  // Penalty history CSR, as in StepPlan: row i's tokens are history_tokens[history_start[i] ..
  // history_start[i+1]), the first prompt_len[i] of them the prompt. Empty when no row needs it.
  std::span<const int32_t> history_start;  // [m + 1] or empty
  std::span<const int32_t> history_tokens;
  std::span<const int32_t> prompt_len;     // [m] or empty
  // Token masks (step.h's TokenMasks): row i is constrained when mask_row is not empty and
  // mask_row[i] >= 0, to mask_words[mask_row[i] * mask_words_per_row ..][0, mask_words_per_row).
  std::span<const int32_t> mask_row;       // [m] or empty
  std::span<const uint32_t> mask_words;
  int32_t mask_words_per_row = 0;          // (vocab + 31) / 32 when masks are given
};

// The token of a masked row whose mask allows nothing.
inline constexpr int32_t kNoAllowedToken = -1;

// Checks one row's parameters against the vocabulary; `where` prefixes the message.
Status check_sampling_params(const SamplingParams& params, int64_t vocab_size, const std::string& where);

// logits: [m, vocab] F32 on ctx's device; only masked rows are modified (step 0 above). Fills
// `out` with m results.
Status sample(const DeviceContext& ctx, const Tensor& logits, const SamplingBatch& batch,
              std::vector<SampledToken>* out);

}  // namespace kiln::runtime::ops
