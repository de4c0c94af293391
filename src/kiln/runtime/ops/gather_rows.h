// Row gather: out[i, :] = x[rows[i], :]. Picks the last token of each sampled sequence before
// the lm_head, so logits are computed only for rows that are sampled.
#pragma once

#include "kiln/runtime/device_context.h"
#include "kiln/runtime/tensor.h"

namespace kiln::runtime::ops {

// x: [n, h]; rows: [m] I32 in [0, n); out: [m, h], same dtype as x.
Status gather_rows(const DeviceContext& ctx, const Tensor& x, const Tensor& rows, const Tensor& out);

}  // namespace kiln::runtime::ops
