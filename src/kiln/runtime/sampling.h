// Sampling parameters of one sequence, and what sampling returns. Plain structs: the scheduler
// fills them, every backend's sampler reads them.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

namespace kiln::runtime {

struct SamplingParams {
  float temperature = 1.0f;        // 0 = greedy (argmax)
  int32_t top_k = 0;               // 0 = off
  float top_p = 1.0f;              // 1 = off
  float min_p = 0.0f;              // 0 = off
  float repetition_penalty = 1.0f; // HF style, over prompt and output tokens; 1 = off
  float presence_penalty = 0.0f;   // OpenAI style, over output tokens; 0 = off
  float frequency_penalty = 0.0f;  // OpenAI style, over output tokens; 0 = off
  std::vector<std::pair<int32_t, float>> logit_bias;  // added to the raw logits
  uint64_t seed = 0;               // with the token's position, keys this sequence's Philox stream
  int32_t num_logprobs = -1;       // -1: none; 0: the sampled token's; k: also the top k

  bool greedy() const { return temperature <= 0.0f; }
  bool needs_history() const {
    return repetition_penalty != 1.0f || presence_penalty != 0.0f || frequency_penalty != 0.0f;
  }
};

struct TokenLogprob {
  int32_t token = 0;
  float logprob = 0.0f;
};

struct SampledToken {
  int32_t token = -1;  // ops::kNoAllowedToken when a token mask allowed nothing
  float logprob = 0.0f;                 // if asked: log-softmax after the token mask, logit_bias
                                        // and penalties, before temperature and truncation
                                        // (ops/sample.h)
  std::vector<TokenLogprob> top;        // num_logprobs most likely, best first
};

}  // namespace kiln::runtime
