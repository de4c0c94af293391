// CUDA implementation of ops::FusedDecoder (backend/cuda/decoder_fused.h is its kernel).
#pragma once

#include <memory>

#include "kiln/runtime/ops/fused_decoder.h"

namespace kiln::runtime::cuda {
Result<std::unique_ptr<ops::FusedDecoder>> create_fused_decoder(const DeviceContext& ctx,
                                                                const ops::FusedDecoderDesc& desc);
}  // namespace kiln::runtime::cuda
