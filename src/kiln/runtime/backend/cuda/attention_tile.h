// The tensor-core prefill attention (attention_tile.cu): same contract as launch_paged_attention
// for rows of sequences with several new tokens. Plain C++ header.
#pragma once

#include <cstdint>

#include "kiln/runtime/backend/cuda/kernels.h"

namespace kiln::runtime::cuda {

// Whether the tile kernel takes this launch (head geometry, shared memory, and not too many idle
// blocks for `max_query_len`, the longest span of new tokens).
bool attention_tile_fits(const AttentionArgs& args, int64_t max_query_len);
Status launch_attention_tile(const AttentionArgs& args, int64_t max_query_len, Stream stream);

}  // namespace kiln::runtime::cuda
