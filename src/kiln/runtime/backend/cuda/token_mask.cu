// Token masks on the device: one thread per 32-bit word of a masked row; a word with every bit
// set (most of a permissive mask) costs one load.
#include <cstring>

#include "kiln/runtime/backend/cuda/cuda_util.cuh"
#include "kiln/runtime/backend/cuda/scratch.h"
#include "kiln/runtime/backend/cuda/token_mask_cuda.h"

namespace kiln::runtime::cuda {
namespace {

constexpr int kMaskThreads = 256;

__global__ void __launch_bounds__(kMaskThreads)
    mask_logits_kernel(float* logits, const int32_t* mask_row, const uint32_t* words, int64_t vocab, int64_t wpr) {
  const int64_t row = blockIdx.y;
  const int32_t r = mask_row[row];
  const int64_t w = static_cast<int64_t>(blockIdx.x) * kMaskThreads + threadIdx.x;
  if (r < 0 || w >= wpr) return;
  const uint32_t bits = words[static_cast<int64_t>(r) * wpr + w];
  if (bits == ~0u) return;
  float* l = logits + row * vocab;
  const int64_t end = min(vocab, w * 32 + 32);
  for (int64_t t = w * 32; t < end; ++t) {
    if (((bits >> (t - w * 32)) & 1u) == 0) l[t] = -INFINITY;
  }
}

size_t align_up(size_t n) { return (n + 255) / 256 * 256; }

}  // namespace

Status mask_logits(const DeviceContext& ctx, const Tensor& logits, const ops::SamplingBatch& batch) {
  const int64_t m = logits.dim(0), vocab = logits.dim(1);
  if (m == 0) return Status::ok();
  const int64_t wpr = batch.mask_words_per_row;
  const auto stream = static_cast<cudaStream_t>(ctx.stream);
  // One upload: [mask_row | words].
  const size_t rows_bytes = align_up(static_cast<size_t>(m) * sizeof(int32_t));
  const size_t words_bytes = batch.mask_words.size() * sizeof(uint32_t);
  const size_t bytes = rows_bytes + words_bytes;
  KILN_ASSIGN_OR_RETURN(void* host, pinned_scratch(ScratchSlot::kTokenMasks, bytes));
  KILN_ASSIGN_OR_RETURN(void* dev, device_scratch(ctx.device, ScratchSlot::kTokenMasks, bytes));
  auto* h = static_cast<uint8_t*>(host);
  std::memcpy(h, batch.mask_row.data(), static_cast<size_t>(m) * sizeof(int32_t));
  if (words_bytes > 0) std::memcpy(h + rows_bytes, batch.mask_words.data(), words_bytes);
  KILN_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(dev, host, bytes, cudaMemcpyHostToDevice, stream));
  auto* d = static_cast<uint8_t*>(dev);
  const dim3 grid(static_cast<unsigned>((wpr + kMaskThreads - 1) / kMaskThreads), static_cast<unsigned>(m));
  mask_logits_kernel<<<grid, kMaskThreads, 0, stream>>>(logits.data<float>(), reinterpret_cast<const int32_t*>(d),
                                                         reinterpret_cast<const uint32_t*>(d + rows_bytes), vocab, wpr);
  return launch_status("mask_logits_kernel");
}

}  // namespace kiln::runtime::cuda
