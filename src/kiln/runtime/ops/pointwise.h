// Element-wise ops of the Gemma 3 decoder: the GeGLU activation, scaling (embeddings times
// sqrt(hidden)), logit soft-capping and the residual add of a normalised block output.
#pragma once

#include "kiln/runtime/device_context.h"
#include "kiln/runtime/tensor.h"

namespace kiln::runtime::ops {

// GeGLU of a fused gate/up projection: out = gelu_tanh(gate) * up, with transformers'
// gelu_pytorch_tanh: 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))).
// gate_up: [n, 2 * I], gate in columns [0, I), up in [I, 2I); out: [n, I].
Status geglu(const DeviceContext& ctx, const Tensor& gate_up, const Tensor& out);

// x *= s, in place. x: [n, m] in compute dtype.
Status scale(const DeviceContext& ctx, const Tensor& x, float s);

// x = cap * tanh(x / cap), in place. x: [n, m] F32 (logits).
Status tanh_softcap(const DeviceContext& ctx, const Tensor& x, float cap);

// y += x. x, y: [n, m] in compute dtype, the same shape.
Status add_into(const DeviceContext& ctx, const Tensor& x, const Tensor& y);

}  // namespace kiln::runtime::ops
