// Sampling one token per row of logits, each row with its own parameters and Philox stream.
//
// Per row, in this order (the order vLLM and transformers apply them in):
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
// The result for a row depends only on that row's logits, parameters, history, seed and position.
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
};

// Checks one row's parameters against the vocabulary; `where` prefixes the message.
Status check_sampling_params(const SamplingParams& params, int64_t vocab_size, const std::string& where);

// logits: [m, vocab] F32 on ctx's device (not modified). Fills `out` with m results.
Status sample(const DeviceContext& ctx, const Tensor& logits, const SamplingBatch& batch,
              std::vector<SampledToken>* out);

}  // namespace kiln::runtime::ops
