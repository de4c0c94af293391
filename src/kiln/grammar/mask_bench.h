// Timing of token masks, for `kiln bench grammar` and the engine's own measurements: walks a
// matcher along a token sequence and times fill_next_token_mask before each token.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "kiln/core/status.h"
#include "kiln/grammar/matcher.h"

namespace kiln::grammar {

struct MaskTimings {
  std::vector<double> micros;      // wall time of each mask, in walk order
  std::vector<double> cpu_micros;  // the thread's CPU time of each (excludes time descheduled)
  size_t tokens_accepted = 0;
  bool ended_allowed = false;  // the end ids were allowed after the last token
};

// Times the mask before each of `tokens` and after the last, accepting each token; a token the
// mask refuses (or accept_token refuses) stops the walk with kInvalidArgument naming its index.
Result<MaskTimings> time_masks(Matcher& matcher, std::span<const int32_t> tokens);

struct MaskStats {
  size_t count = 0;
  double mean = 0, p50 = 0, p99 = 0, max = 0;
};
MaskStats summarize(std::vector<double> micros);

}  // namespace kiln::grammar
