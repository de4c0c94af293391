// Runs a fixed set of sequences on an Engine without a scheduler: `kiln generate` and the offline
// `kiln bench` use it. Prompts are prefilled in chunks within a token budget, then every sequence
// decodes one token per step. Blocks come from a plain free list (no prefix sharing, no preemption).
#pragma once

#include <cstdint>
#include <vector>

#include "kiln/core/status.h"
#include "kiln/runtime/engine.h"

namespace kiln::runtime {

class StaticBatch {
 public:
  // `max_step_tokens`: most tokens per step (the engine's max_batched_tokens).
  StaticBatch(Engine& engine, int32_t max_step_tokens);

  // Adds a sequence; returns its index.
  int add(std::vector<int32_t> prompt, SamplingParams params);

  struct Step {
    StepResult result;
    std::vector<int> sampled;      // sequence index of each result.samples entry
    std::vector<int> seqs;         // sequence index of each plan sequence, in plan order
    std::vector<int32_t> n_tokens; // new tokens of each plan sequence
  };
  // One step: each sequence contributes min(chunk, tokens not yet computed) tokens (chunk 0 = no
  // limit) while the step's budget lasts, and samples when its last known token is computed.
  Result<Step> step(int32_t chunk, bool return_all_logits);

  bool prefilling(int i) const;  // still has prompt tokens to compute
  const std::vector<int32_t>& tokens(int i) const { return seqs_[static_cast<size_t>(i)].tokens; }
  int32_t prompt_len(int i) const { return seqs_[static_cast<size_t>(i)].prompt_len; }
  int32_t generated(int i) const;
  int size() const { return static_cast<int>(seqs_.size()); }

 private:
  struct Seq {
    std::vector<int32_t> tokens;
    int32_t prompt_len = 0;
    int32_t computed = 0;
    std::vector<int32_t> blocks;
    SamplingParams params;
  };
  Engine& engine_;
  int32_t max_step_tokens_;
  std::vector<Seq> seqs_;
  std::vector<int32_t> free_blocks_;
};

}  // namespace kiln::runtime
