// What becomes of a prefill-only request's vector (RequestOutput) before it is answered: an
// embedding is cut to the requested dimensions (Matryoshka) and scaled to unit length when the
// model's config says so; a reranker's two logits become a probability.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "kiln/core/status.h"

namespace kiln::serve {

// Scales `v` to unit L2 norm (computed in double); a zero vector stays zero.
void normalize_l2(std::span<float> v);

// Keeps the first `dimensions` values (all when absent), then normalises when `normalize`.
// A `dimensions` outside [1, v.size()] is refused, naming "dimensions".
Result<std::vector<float>> finish_embedding(std::vector<float> pooled, std::optional<int64_t> dimensions,
                                            bool normalize);

// P(yes) of a reranker from the logits after its prompt: softmax over the two tokens, i.e.
// sigmoid(logits[yes] - logits[no]), computed stably. Ids outside `logits` are an error.
Result<double> yes_probability(std::span<const float> logits, int32_t yes_id, int32_t no_id);

}  // namespace kiln::serve
