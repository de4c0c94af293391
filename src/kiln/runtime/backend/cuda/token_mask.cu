// Token masks on the device: one thread per 32-bit word of a masked row; a word with every bit
// set (most of a permissive mask) costs one load.
#include "kiln/runtime/backend/cuda/cuda_util.cuh"
#include "kiln/runtime/backend/cuda/sample_kernels.h"

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

}  // namespace

Status launch_mask_logits(float* logits, const int32_t* mask_row, const uint32_t* words, int64_t m, int64_t vocab,
                          int64_t words_per_row, Stream stream) {
  if (m == 0 || words_per_row == 0) return Status::ok();
  const dim3 grid(static_cast<unsigned>((words_per_row + kMaskThreads - 1) / kMaskThreads), static_cast<unsigned>(m));
  mask_logits_kernel<<<grid, kMaskThreads, 0, static_cast<cudaStream_t>(stream)>>>(logits, mask_row, words, vocab,
                                                                                    words_per_row);
  return launch_status("mask_logits_kernel");
}

}  // namespace kiln::runtime::cuda
