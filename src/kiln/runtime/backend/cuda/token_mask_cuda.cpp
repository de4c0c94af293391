// Host side of the token masks on the GPU: one upload of [mask_row | mask words] into scratch, on
// the stream after the forward pass, then the kernel (token_mask.cu).
#include "kiln/runtime/backend/cuda/token_mask_cuda.h"

#include <cstring>

#include "kiln/runtime/backend/cuda/cuda_status.h"
#include "kiln/runtime/backend/cuda/sample_kernels.h"
#include "kiln/runtime/backend/cuda/scratch.h"

namespace kiln::runtime::cuda {

Status mask_logits(const DeviceContext& ctx, const Tensor& logits, const ops::SamplingBatch& batch) {
  const int64_t m = logits.dim(0), vocab = logits.dim(1);
  if (m == 0) return Status::ok();
  const auto stream = static_cast<cudaStream_t>(ctx.stream);
  const size_t rows_bytes = (static_cast<size_t>(m) * sizeof(int32_t) + 255) / 256 * 256;
  const size_t words_bytes = batch.mask_words.size() * sizeof(uint32_t);
  const size_t bytes = rows_bytes + words_bytes;
  // The pinned buffer is rewritten only after the sampler has synchronized the stream.
  KILN_ASSIGN_OR_RETURN(void* host, pinned_scratch(ScratchSlot::kTokenMasks, bytes));
  KILN_ASSIGN_OR_RETURN(void* dev, device_scratch(ctx.device, ScratchSlot::kTokenMasks, bytes));
  auto* h = static_cast<uint8_t*>(host);
  std::memcpy(h, batch.mask_row.data(), static_cast<size_t>(m) * sizeof(int32_t));
  if (words_bytes > 0) std::memcpy(h + rows_bytes, batch.mask_words.data(), words_bytes);
  KILN_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(dev, host, bytes, cudaMemcpyHostToDevice, stream));
  auto* d = static_cast<uint8_t*>(dev);
  return launch_mask_logits(logits.data<float>(), reinterpret_cast<const int32_t*>(d),
                            reinterpret_cast<const uint32_t*>(d + rows_bytes), m, vocab, batch.mask_words_per_row,
                            stream);
}

}  // namespace kiln::runtime::cuda
