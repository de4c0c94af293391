#include "kiln/runtime/ops/fused_decoder.h"

#include "kiln/runtime/ops/dispatch.h"

#if defined(KILN_WITH_CUDA) && __has_include("kiln/runtime/backend/cuda/fused_decoder_cuda.h")
#include "kiln/runtime/backend/cuda/fused_decoder_cuda.h"
#define KILN_HAVE_CUDA_OP 1
#endif

namespace kiln::runtime::ops {

Result<std::unique_ptr<FusedDecoder>> FusedDecoder::create(const DeviceContext& ctx, const FusedDecoderDesc& desc) {
  if (ctx.device.kind != DeviceKind::kCuda) return unimplemented("fused decoder: the CPU runs the ops one by one");
#ifdef KILN_HAVE_CUDA_OP
  return cuda::create_fused_decoder(ctx, desc);
#else
  (void)desc;
  return no_cuda_kernel("fused decoder");
#endif
}

}  // namespace kiln::runtime::ops
