// Rotary position embedding tables, computed as Hugging Face transformers computes them
// (modeling_rope_utils): inv_freq per scaling type, then cos/sin of position * inv_freq in f32,
// multiplied by the type's attention scaling (yarn's mscale; 1 for the others).
#pragma once

#include <cstdint>
#include <vector>

#include "kiln/core/status.h"
#include "kiln/model/config.h"

namespace kiln::runtime {

// inv_freq [head_dim / 2] for a sequence of `seq_len` tokens (only dynamic scaling depends on it)
// and the attention scaling that multiplies cos and sin.
struct RopeFrequencies {
  std::vector<float> inv_freq;
  float attention_scaling = 1.0f;
};
RopeFrequencies rope_frequencies(const model::ModelConfig& config, int64_t seq_len);

// [max_positions, head_dim]: row p holds cos(p * inv_freq) in columns [0, head_dim / 2) and
// sin(p * inv_freq) in [head_dim / 2, head_dim), both times attention_scaling.
//
// Dynamic NTK scaling: transformers recomputes inv_freq from the longest sequence in the batch,
// which would make a token's rotation depend on its batch. kiln rotates the token at position p
// with the frequencies for seq_len = p + 1, which is exactly what transformers does when it
// decodes that token one at a time, and is the same whether the prompt is prefilled at once,
// in chunks, or alone or in a batch.
Result<std::vector<float>> rope_table(const model::ModelConfig& config, int64_t max_positions);

}  // namespace kiln::runtime
