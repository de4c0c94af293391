// One generation stream (DESIGN.md §3): its tokens, how many of them are in the KV cache, and its
// block table. A request with n choices owns n sequences. Only the engine thread touches these.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "kiln/core/status.h"
#include "kiln/runtime/sampling.h"
#include "kiln/serve/request.h"

namespace kiln::serve {

struct RequestState;

enum class SequenceState {
  kWaiting,      // in the waiting queue, holding no blocks
  kRunning,      // admitted: holds blocks for its computed tokens
  kAwaitingFork, // a choice > 0 of a request whose first choice has not finished its prompt yet
  kFinished,
};

struct Sequence {
  RequestState* request = nullptr;
  int32_t choice = 0;
  // Scheduling rank: lower priority first, then earlier arrival, then lower choice.
  int32_t priority = 0;
  uint64_t arrival = 0;

  std::vector<int32_t> tokens;  // prompt followed by generated tokens
  int32_t prompt_len = 0;
  int32_t num_computed = 0;     // leading tokens whose KV is in the cache
  std::vector<int32_t> blocks;  // block table; covers num_computed (and this step's new tokens)
  std::vector<uint64_t> block_hashes;  // of the full blocks of `tokens`, grown on demand
  int32_t num_registered_blocks = 0;   // leading blocks already offered to the prefix cache

  runtime::SamplingParams sampling;  // with this choice's seed
  // Structured generation (null: free). Advanced only by sampled tokens, so a preempted
  // sequence's recompute never feeds it again.
  std::unique_ptr<TokenConstraint> constraint;
  RequestOutput output = RequestOutput::kTokens;
  std::vector<float> pooled;  // kMeanHidden: the sum of the chunks computed so far
  SequenceState state = SequenceState::kWaiting;
  FinishReason finish = FinishReason::kNone;

  int32_t num_tokens() const { return static_cast<int32_t>(tokens.size()); }
  int32_t num_generated() const { return num_tokens() - prompt_len; }
};

// Per request bookkeeping inside the scheduler.
struct RequestState {
  uint64_t id = 0;
  std::optional<int32_t> max_tokens;  // the request's; the rest of it went into the sequences
  std::vector<int32_t> stop_ids;  // EOS (unless ignore_eos) and the request's stop token ids
  std::vector<Sequence> seqs;     // [n], index = choice; never resized after creation
  bool forked = false;            // choices > 0 have taken the prompt's blocks (or n == 1)
  bool admitted = false;          // some sequence has been scheduled at least once
  int32_t cached_prompt_tokens = 0;
  int32_t unfinished = 0;
  int64_t steps = 0;              // steps that computed tokens of it
  Status error;                   // a choice failed (its constraint allowed no token)
};

}  // namespace kiln::serve
