// The tensor-core row attention (attention_decode.cu): same contract as launch_paged_attention
// for rows that attend on their own (decode tokens), with head_dim 64 or 128 and at most 16
// query heads per kv head. Plain C++ header.
#pragma once

#include "kiln/runtime/backend/cuda/kernels.h"

namespace kiln::runtime::cuda {

bool attention_decode_fits(const AttentionArgs& args);
// Writes out, or with num_splits > 1 the partials (the caller merges them).
Status launch_attention_decode(const AttentionArgs& args, Stream stream);

}  // namespace kiln::runtime::cuda
