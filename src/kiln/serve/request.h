// A request as the serving layer sees it: token ids in, token ids out. The HTTP layer turns an
// OpenAI request into this (chat template, tokenizer, defaults) before it reaches serve/.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/core/clock.h"
#include "kiln/runtime/sampling.h"
#include "kiln/serve/token_constraint.h"

namespace kiln::serve {

// What a request gets back. kTokens generates; the others are prefill only (embedding and
// scoring requests): the prompt is computed once, the request gets one vector and ends, and its
// KV blocks are freed without being offered to the prefix cache.
enum class RequestOutput {
  kTokens,
  kLastHidden,  // the final hidden state of the prompt's last token: [hidden]
  kMeanHidden,  // the mean of the prompt tokens' final hidden states: [hidden]
  kLastLogits,  // the logits after the prompt's last token: [vocab]
};

struct Request {
  std::string id;                  // the client-visible request id, for logs and errors
  std::vector<int32_t> prompt;     // token ids; at least one
  runtime::SamplingParams sampling;  // its seed field is ignored: see `seed`
  // Choice i samples with seed_for_choice(seed, i). Absent: the worker draws a random seed.
  std::optional<uint64_t> seed;
  int32_t n = 1;                   // choices; each is one sequence sharing the prompt's KV
  std::optional<int32_t> max_tokens;  // absent: until a stop token or the context is full
  bool ignore_eos = false;         // the model's EOS ids do not stop; stop_token_ids still do
  std::vector<int32_t> stop_token_ids;
  int32_t priority = 0;            // lower is served first; FCFS within a priority
  std::optional<double> timeout_seconds;  // overrides the worker's request_timeout
  // Structured generation: every choice's output is constrained (null: free). A choice whose
  // constraint completes finishes with kStop; one whose constraint allows no token fails.
  std::shared_ptr<const ConstraintFactory> constraint;
  // Anything but kTokens needs n == 1 and no constraint; sampling fields and max_tokens are unused.
  RequestOutput output = RequestOutput::kTokens;
};

enum class FinishReason { kNone, kStop, kLength, kCancelled, kError };

// "stop", "length", "cancelled", "error" (the first two are OpenAI's finish_reason values).
std::string_view finish_reason_name(FinishReason reason);

struct Usage {
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;       // over all choices
  int64_t cached_prompt_tokens = 0;    // prompt tokens whose KV came from the prefix cache
};

struct RequestTiming {
  SteadyTime submitted{};
  SteadyTime first_scheduled{};  // when its first tokens went into a step
  SteadyTime first_token{};      // when its first sampled token was pushed
  SteadyTime finished{};
  int64_t steps = 0;             // engine steps that computed tokens of this request
};

// Choice 0 keeps the request's seed, so a one-choice request samples as `kiln generate --seed`
// does; the other choices get decorrelated seeds derived from it.
uint64_t seed_for_choice(uint64_t seed, int32_t choice);

}  // namespace kiln::serve
