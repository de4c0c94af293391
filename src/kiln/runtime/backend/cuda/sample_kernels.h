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

// The best token of one slice of a row's vocabulary (id -1: none).
struct ArgmaxPart {
  float value = 0.0f;
  int32_t id = -1;
};

struct SampleLaunch {
  const float* logits = nullptr;        // [m, vocab]
  float* work = nullptr;                // [rows with work_row >= 0, vocab]
  const SampleRowParams* params = nullptr;
  const SampleAdjust* adjusts = nullptr;
  const float* bias_values = nullptr;
  SampleRowResult* results = nullptr;   // [m]
  // With num_parts > 0, the argmax of each greedy row without logprobs or adjustments is taken by
  // num_parts blocks over slices of its vocabulary into parts ([m, num_parts]) first.
  ArgmaxPart* parts = nullptr;
  int num_parts = 0;
  int64_t m = 0;
  int64_t vocab = 0;
};

// The argmax parts for a batch of m rows (0: none; at most 32).
int sample_argmax_parts(int64_t m);

Status launch_sample(const SampleLaunch& args, Stream stream);

}  // namespace kiln::runtime::cuda
