// What both engines derive from a StepPlan before their forward pass: the checks against their
// limits, the tokens' KV slots, the rows the samples read and the sampling batch.
#pragma once

#include <cstdint>
#include <vector>

#include "kiln/core/status.h"
#include "kiln/runtime/memory_plan.h"
#include "kiln/runtime/ops/sample.h"
#include "kiln/runtime/step.h"

namespace kiln::runtime {

// The longest new-token span and the longest context of a plan.
struct StepExtent {
  int32_t max_query_len = 0;
  int32_t max_kv_len = 0;
};
// Checks a valid plan against an engine's limits; returns its extent.
Result<StepExtent> check_step_limits(const StepPlan& plan, const EngineLimits& limits);

// The KV cache slot (block id * block_size + offset) of every token of a valid plan, into
// slots[0, num_tokens).
void step_slots(const StepPlan& plan, int32_t block_size, int32_t* slots);

// The token row whose logits sample j reads: the last new token of its sequence.
inline int32_t sample_row(const StepPlan& plan, int32_t j) {
  return plan.query_start[static_cast<size_t>(plan.sample_seqs[static_cast<size_t>(j)]) + 1] - 1;
}

// Waits for the plan's token masks (TokenMasks::wait), if any are still being computed. Engines
// call it after launching the forward pass and before step_sampling_batch, so the masks are
// computed while the forward runs.
Status await_step_masks(const StepPlan& plan);

// The sampling batch of a plan's samples (token masks included: await them first). `positions`
// receives the position each sampled token will take (its sequence's kv_len) and must outlive
// the batch.
ops::SamplingBatch step_sampling_batch(const StepPlan& plan, std::vector<int32_t>* positions);

// The token rows a valid plan's outputs read (StepOutputKind): one logits row per kLastLogits
// output and hidden rows for the others (kSumHidden: every new token of its sequence), each in
// output order.
struct OutputRows {
  std::vector<int32_t> logit_rows;
  std::vector<int32_t> hidden_rows;
};
OutputRows step_output_rows(const StepPlan& plan);

// StepResult::outputs from the rows step_output_rows named, gathered on the host as f32:
// `logits` [logit_rows, vocab] and `hidden` [hidden_rows, hidden_size].
std::vector<std::vector<float>> step_outputs(const StepPlan& plan, const float* logits, int64_t vocab,
                                             const float* hidden, int64_t hidden_size);

}  // namespace kiln::runtime
