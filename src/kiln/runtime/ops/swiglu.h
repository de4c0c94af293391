// SwiGLU activation of a fused gate/up projection: out = silu(gate) * up.
#pragma once

#include "kiln/runtime/device_context.h"
#include "kiln/runtime/tensor.h"

namespace kiln::runtime::ops {

// gate_up: [n, 2 * I], gate in columns [0, I), up in [I, 2I); out: [n, I].
Status swiglu(const DeviceContext& ctx, const Tensor& gate_up, const Tensor& out);

}  // namespace kiln::runtime::ops
