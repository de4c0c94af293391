// The GPU sampler's raw launcher and the plain structs it reads (uploaded per step).
// Plain C++ header: no CUDA header.
#pragma once

#include <cstdint>

#include "kiln/core/status.h"
#include "kiln/runtime/backend/cuda/device.h"

namespace kiln::runtime::cuda {

// Top logprobs computed on the device per row; more are computed on the host from the row.
inline constexpr int kMaxDeviceTopLogprobs = 32;

struct SampleRowParams {
  float temperature = 0.0f;  // <= 0: greedy
  int32_t top_k = 0;
  float top_p = 1.0f;
  float min_p = 0.0f;
  uint64_t seed = 0;
  int64_t position = 0;        // keys Philox with seed
  int32_t num_logprobs = -1;   // -1 none; top logprobs on the device: min(num_logprobs, kMax...)
  int32_t adjust_begin = 0;    // this row's entries in the adjustment list
  int32_t adjust_end = 0;
  int32_t work_row = -1;       // >= 0: the row is copied there and adjusted; -1: read as is
  float repetition_penalty = 1.0f;
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
};

// One distinct token of a row whose logit changes before sampling: its logit biases (applied in
// order), then the repetition penalty if it is in the history, then presence/frequency for its
// count in the output.
struct SampleAdjust {
  int32_t token = 0;
  int32_t bias_begin = 0;  // into the bias value list
  int32_t bias_end = 0;
  int32_t in_history = 0;
  int32_t output_count = 0;
};

struct SampleRowResult {
  int32_t token = -1;
  float logprob = 0.0f;
  int32_t top_ids[kMaxDeviceTopLogprobs];
  float top_logprobs[kMaxDeviceTopLogprobs];
};

// One slice of a row's vocabulary: its best token (id -1: none) and, for a draw, its tokens'
// fixed-point weight.
struct SamplePart {
  float value = 0.0f;
  int32_t id = -1;
  uint64_t mass = 0;
};

// A top-k row's candidates from one slice of its vocabulary: every token at least as good as the
// slice's k-th best (ties included), in id order; count -1 when they are more than fit.
inline constexpr int kTopKSliceCandidates = 64;
struct SampleTopKSlice {
  int32_t count = 0;
  int32_t ids[kTopKSliceCandidates];
  float values[kTopKSliceCandidates];
};

// A top-p row's radix selects over the slices of its vocabulary (sample.cu, topp_pass_kernel): the
// histogram of the pass under way summed over the slices, how many slices have added to it, the
// choice so far, then the last token of top-p's set (stage 0) and the drawn token (stage 1).
// Zero before the first pass.
struct SampleTopPState {
  uint64_t hist[256];
  uint64_t remaining;
  uint32_t prefix;
  int32_t strict;
  uint32_t arrived;
  uint32_t boundary_key;
  int32_t boundary_id;
  int32_t token;
};

#ifdef __CUDACC__
#define KILN_HOST_DEVICE __host__ __device__
#else
#define KILN_HOST_DEVICE
#endif

// Rows whose token is their argmax and nothing else: greedy, no logprobs, logits read as they are.
KILN_HOST_DEVICE inline bool sample_argmax_only(const SampleRowParams& p) {
  return p.temperature <= 0.0f && p.num_logprobs < 0 && p.work_row < 0;
}
// Top-k rows (k up to kTopKSliceCandidates; with or without top-p and min-p) without logprobs, the
// logits read as they are: the global top k lie among the slices' candidates.
KILN_HOST_DEVICE inline bool sample_top_k_candidates(const SampleRowParams& p) {
  return p.temperature > 0.0f && p.top_k > 0 && p.top_k <= kTopKSliceCandidates && p.num_logprobs < 0 &&
         p.work_row < 0;
}
// Rows drawn from the whole vocabulary (no top-k or top-p; min-p allowed), without logprobs, the
// logits read as they are: their weights can be summed by slices.
KILN_HOST_DEVICE inline bool sample_untruncated_draw(const SampleRowParams& p) {
  return p.temperature > 0.0f && p.top_k <= 0 && p.top_p >= 1.0f && p.num_logprobs < 0 && p.work_row < 0;
}

// Top-p rows without top-k (min-p allowed), without logprobs, the logits read as they are: their
// radix selects run over slices of the vocabulary.
KILN_HOST_DEVICE inline bool sample_top_p_slices(const SampleRowParams& p) {
  return p.temperature > 0.0f && p.top_k <= 0 && p.top_p < 1.0f && p.num_logprobs < 0 && p.work_row < 0;
}

struct SampleLaunch {
  const float* logits = nullptr;        // [m, vocab]
  float* work = nullptr;                // [rows with work_row >= 0, vocab]
  const SampleRowParams* params = nullptr;
  const SampleAdjust* adjusts = nullptr;
  const float* bias_values = nullptr;
  SampleRowResult* results = nullptr;   // [m]
  // With num_parts > 0, rows of sample_argmax_only or sample_untruncated_draw are first reduced
  // by num_parts blocks over slices of their vocabulary into parts ([m, num_parts]).
  SamplePart* parts = nullptr;
  int num_parts = 0;
  bool draw_parts = false;  // some row is an untruncated draw: the parts' weights are summed too
  // [m, num_parts] when some row is sample_top_k_candidates (and num_parts > 0), else null.
  SampleTopKSlice* topk = nullptr;
  // [m], zeroed, when some row is sample_top_p_slices (and num_parts > 0), else null.
  SampleTopPState* topp = nullptr;
  int64_t m = 0;
  int64_t vocab = 0;
};

// The slices per row for a batch of m rows, `draws` when some row is an untruncated draw, a
// top-k or a top-p row (0: none; at most 32).
int sample_parts(int64_t m, bool draws);

Status launch_sample(const SampleLaunch& args, Stream stream);

// Token masks (token_mask.cu): sets logits[i, t] to -inf where row i's mask (mask_row[i] >= 0)
// clears bit t of words[mask_row[i] * words_per_row ..]. logits: [m, vocab] on the device.
Status launch_mask_logits(float* logits, const int32_t* mask_row, const uint32_t* words, int64_t m, int64_t vocab,
                          int64_t words_per_row, Stream stream);
// The kernels over slices (num_parts > 0) that launch_sample runs first (sample_parts.cu).
Status launch_sample_parts(const SampleLaunch& args, Stream stream);

}  // namespace kiln::runtime::cuda
