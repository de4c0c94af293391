// The engine contract (DESIGN.md §3): one forward pass over a batch of sequences.
//
// The scheduler builds a StepPlan; Engine::step runs it and returns a StepResult. Everything the
// device needs is flattened into arrays, CSR style, so that a backend can upload it in a few
// copies and a CUDA graph can replay over fixed-size buffers.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "kiln/core/status.h"
#include "kiln/runtime/sampling.h"

namespace kiln::runtime {

// Structured generation: the packed token bitmasks of a step's constrained samples. Token t of a
// mask row is allowed when bit t % 32 of word t / 32 is set; bits at or past the vocabulary are
// ignored. A constrained sample never yields a disallowed token (ops/sample.h).
struct TokenMasks {
  int32_t words_per_row = 0;           // (vocab_size + 31) / 32
  std::vector<int32_t> row_of_sample;  // [num_samples]: the sample's mask row, -1 unconstrained
  std::vector<uint32_t> words;         // [mask rows * words_per_row], sized before the step starts
  // The rows may still be being computed when the step starts: only sampling needs them, so the
  // producer fills them while the forward pass runs. When set, the engine calls it once, after
  // the forward pass and before sampling, and reads `words` only after it returns; an error
  // fails the step. The producer must not touch `words` after it returned.
  std::function<Status()> wait;
};

// What a sequence that does not sample gets back from its step (embedding and scoring requests:
// prefill only, nothing generated). Read from the final hidden states, after the model's last norm.
enum class StepOutputKind : uint8_t {
  kLastHidden,  // [hidden]: the hidden state of the sequence's last new token (last-token pooling)
  kSumHidden,   // [hidden]: the sum over its new tokens' hidden states; a chunked prompt's caller
                // adds the chunks and divides (mean pooling)
  kLastLogits,  // [vocab]: the logits of its last new token (a reranker's yes/no score)
};

struct StepPlan {
  // Per token, all sequences' new tokens back to back: [num_tokens].
  std::vector<int32_t> token_ids;
  std::vector<int32_t> positions;  // absolute position of each token in its sequence

  // Per sequence: [num_seqs + 1] offsets into token_ids. Sequence i's new tokens are
  // token_ids[query_start[i] .. query_start[i+1]); a decode step contributes exactly one.
  std::vector<int32_t> query_start;
  // [num_seqs] tokens in the KV cache for sequence i after this step (already cached + new).
  // Its new tokens occupy positions kv_len[i] - n_new .. kv_len[i] - 1.
  std::vector<int32_t> kv_len;
  // Block tables: sequence i owns block_ids[block_start[i] .. block_start[i+1]), in position
  // order; token at position p lives in block block_ids[block_start[i] + p / block_size] at slot
  // p % block_size. The table covers at least kv_len[i] tokens.
  std::vector<int32_t> block_start;  // [num_seqs + 1]
  std::vector<int32_t> block_ids;

  // Sampling: the sequences (indices into the per-sequence arrays) whose last new token's
  // logits are sampled this step, in increasing order, and their parameters.
  std::vector<int32_t> sample_seqs;        // [num_samples]
  std::vector<SamplingParams> sampling;    // [num_samples]
  // Token history for penalties (only for samples whose params need_history(); empty spans
  // otherwise): [num_samples + 1] offsets into history_tokens. Each span is the prompt followed
  // by the generated tokens; prompt_len says where the generated part starts.
  std::vector<int32_t> history_start;
  std::vector<int32_t> history_tokens;
  std::vector<int32_t> prompt_len;         // [num_samples]
  // Outputs instead of samples: the sequences (increasing; none of them in sample_seqs) whose
  // step returns StepResult::outputs, and what each returns.
  std::vector<int32_t> output_seqs;          // [num_outputs]
  std::vector<StepOutputKind> output_kinds;  // [num_outputs]
  // Token masks of constrained samples; null when no sample is constrained.
  std::shared_ptr<TokenMasks> masks;

  // Return the f32 logits of every token of the step (for `kiln generate --logits-out` and
  // fidelity tests). Costly; off when serving.
  bool return_all_logits = false;

  // Abandoning a step in flight. When set, the engine may call it between layers of the forward
  // pass (the CPU engine does, before each layer and before the output head); once it returns
  // true the engine stops and returns a StepResult with `abandoned` set: nothing sampled, no
  // outputs. The K/V of the plan's new tokens may then be partly written. That is harmless: they
  // sit at positions past every sequence's computed tokens, in blocks only that sequence holds,
  // and the step that computes those tokens later writes them again. The scheduler has not
  // advanced anything for an abandoned step, so its sequences simply run again. The engine
  // worker abandons a step whose sequences all rank below a request that just arrived, so the
  // newcomer waits at most one layer instead of a whole step (docs/batches.md, "Priority").
  std::function<bool()> abandon;

  int32_t num_tokens() const { return static_cast<int32_t>(token_ids.size()); }
  int32_t num_seqs() const { return static_cast<int32_t>(kv_len.size()); }
  int32_t num_samples() const { return static_cast<int32_t>(sample_seqs.size()); }
  int32_t num_outputs() const { return static_cast<int32_t>(output_seqs.size()); }
};

struct StepResult {
  std::vector<SampledToken> samples;  // [num_samples], in sample_seqs order
  std::vector<float> logits;          // [num_tokens, vocab] when return_all_logits
  std::vector<std::vector<float>> outputs;  // [num_outputs], in output_seqs order (StepOutputKind)
  int64_t vocab_size = 0;
  double forward_seconds = 0.0;       // wall time of the step on the engine thread
  bool abandoned = false;             // StepPlan::abandon stopped it: nothing else is filled
};

// The paged KV cache's shape as a plan sees it.
struct KvGeometry {
  int32_t num_blocks = 0;
  int32_t block_size = 16;
};

// Checks a plan's internal consistency against the cache geometry (sizes of the CSR arrays,
// monotone offsets, positions inside kv_len, block ids in range, enough blocks for kv_len, token
// ids in the vocabulary). Both engines call it on every step before touching the device, so a
// bad plan fails its step instead of reading or writing out of bounds.
Status validate_step_plan(const StepPlan& plan, const KvGeometry& kv, int64_t vocab_size);

}  // namespace kiln::runtime
