// GPU sampling, one block per row (after blocks over slices of the vocabulary where a batch has
// few rows), without sorting the vocabulary.
//
// Every "k-th best" question (top-k's k-th logit, top-p's boundary, the draw itself when the
// candidates are ordered best first) is answered by a radix select over the logits' order-
// preserving 32-bit keys: four passes of 8 bits with a histogram of counts or of probability mass,
// then an ordered scan among the tokens that share the chosen key (lower id first). Probability
// mass is summed in 64-bit fixed point, so the result does not depend on the order of atomics:
// a row samples the same token on every run. The order of operations is ops/sample.h's.

#include "kiln/runtime/backend/cuda/sample_select.cuh"

namespace kiln::runtime::cuda {
namespace {

// The row's top-k candidates from its slices, in id order, into v/ids (shared memory); -1 when a
// slice had too many (the row then takes the whole vocabulary).
constexpr int kMaxCandidates = 32 * kTopKSliceCandidates;
__device__ int gather_candidates(const SampleLaunch& a, int64_t row, float* v, int* ids, Shared& sh) {
  if (threadIdx.x == 0) {
    int at = 0;
    for (int j = 0; j < a.num_parts && at >= 0; ++j) {
      const int c = a.topk[row * a.num_parts + j].count;
      sh.i_scratch[j] = at;
      at = c < 0 || at + c > kMaxCandidates ? -1 : at + c;
    }
    sh.sel_id = at;
  }
  __syncthreads();
  const int total = sh.sel_id;
  if (total >= 0) {
    for (int j = 0; j < a.num_parts; ++j) {
      const SampleTopKSlice& s = a.topk[row * a.num_parts + j];
      const int at = sh.i_scratch[j];
      for (int t = threadIdx.x; t < s.count; t += blockDim.x) {
        v[at + t] = s.values[t];
        ids[at + t] = s.ids[t];
      }
    }
  }
  __syncthreads();
  return total;
}

// The best of a row's parts (at most 32): lane j reads part j, then every warp reduces them.
__device__ int best_part(const SampleLaunch& a, int64_t row) {
  const int lane = threadIdx.x & 31;
  float bv = -INFINITY;
  int bi = -1;
  if (lane < a.num_parts) {
    const SamplePart q = a.parts[row * a.num_parts + lane];
    bv = q.value;
    bi = q.id;
  }
  warp_best(bv, bi);
  return bi;
}

// An untruncated draw from the parts' weights: the part where the cumulative weight passes the
// target, then ordered_scan inside it. Integer sums do not depend on how they are split, so this
// is the token the single-block scan draws.
__device__ int draw_from_parts(const SampleLaunch& a, int64_t row, const SampleRowParams& p, float mx, Shared& sh) {
  const int lane = threadIdx.x & 31;
  const u64 h = lane < a.num_parts ? a.parts[row * a.num_parts + lane].mass : 0;
  u64 incl = h;
#pragma unroll
  for (int o = 1; o < 32; o <<= 1) {
    const u64 y = __shfl_up_sync(0xffffffffu, incl, o);
    if (lane >= o) incl += y;
  }
  const u64 total = __shfl_sync(0xffffffffu, incl, 31);
  const u64 target = draw_target(p, total), excl = incl - h;
  const unsigned crosses = __ballot_sync(0xffffffffu, h > 0 && excl <= target && incl > target);
  const unsigned nonempty = __ballot_sync(0xffffffffu, h > 0);
  // Not reached (rounding): the last token of the last part with weight, as ordered_scan falls back.
  const int j = crosses != 0 ? __ffs(crosses) - 1 : (nonempty != 0 ? 31 - __clz(nonempty) : 0);
  const u64 before = __shfl_sync(0xffffffffu, excl, j);
  const Slice sl(a, j);
  const DrawWeights dw(p, mx);
  const int id = ordered_scan(
      a.logits + row * a.vocab + sl.begin, sl.end - sl.begin, [=](int64_t, float x) { return dw.kept(x); },
      [=](float x) -> u64 { return dw.mass(x); }, target - before, true, sh);
  return id >= 0 ? static_cast<int>(sl.begin + id) : -1;
}

__global__ void __launch_bounds__(kThreads) sample_kernel(SampleLaunch a) {
  __shared__ Shared sh;
  const int64_t row = blockIdx.x, n = a.vocab;
  const SampleRowParams p = a.params[row];
  const float* raw = a.logits + row * n;
  const float* l = raw;
  if (p.work_row >= 0) {
    float* w = a.work + static_cast<int64_t>(p.work_row) * n;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) w[i] = raw[i];
    __syncthreads();
    for (int e = p.adjust_begin + threadIdx.x; e < p.adjust_end; e += blockDim.x) {
      const SampleAdjust adj = a.adjusts[e];
      float x = w[adj.token];
      for (int b = adj.bias_begin; b < adj.bias_end; ++b) x += a.bias_values[b];
      if (adj.in_history && p.repetition_penalty != 1.0f) {
        x = x > 0.0f ? x / p.repetition_penalty : x * p.repetition_penalty;
      }
      if (adj.output_count > 0) {
        x -= p.presence_penalty + p.frequency_penalty * static_cast<float>(adj.output_count);
      }
      w[adj.token] = x;
    }
    __syncthreads();
    l = w;
  }

  // Greedy rows without logprobs need only the argmax: one pass over the vocabulary, not two.
  // (p is the same for the whole block, so the block-wide reductions stay uniform.)
  const bool from_parts = a.num_parts > 0 && sliced(p);
  // Top-k rows sample among their slices' candidates (unless a slice overflowed).
  __shared__ float cand_v[kMaxCandidates];
  __shared__ int cand_i[kMaxCandidates];
  const int n_cand = a.topk != nullptr && sample_top_k_candidates(p) ? gather_candidates(a, row, cand_v, cand_i, sh) : -1;
  // Top-p rows without top-k were drawn by topp_pass_kernel.
  const bool top_p_drawn = a.topp != nullptr && a.num_parts > 0 && sample_top_p_slices(p);
  const bool need_max = p.temperature > 0.0f || p.num_logprobs >= 0;
  float mx = -INFINITY;
  if (from_parts || top_p_drawn) {
    mx = parts_max(a, row);
  } else if (n_cand >= 0) {
    for (int i = threadIdx.x; i < n_cand; i += blockDim.x) mx = fmaxf(mx, cand_v[i]);
    mx = block_max_f(mx, sh);
  } else if (need_max) {
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) mx = fmaxf(mx, l[i]);  // fmaxf skips NaN
    mx = block_max_f(mx, sh);
  }

  double log_z = 0.0;
  if (p.num_logprobs >= 0) {
    double z = 0.0;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) z += static_cast<double>(expf(l[i] - mx));
    z = block_sum_f64(z, sh);
    log_z = static_cast<double>(mx) + log(z);
  }

  auto all = [](int64_t, float) { return true; };
  int token;
  if (p.temperature <= 0.0f) {
    token = from_parts ? best_part(a, row) : block_argmax(l, n, all, sh);
  } else if (mx == -INFINITY) {
    token = block_argmax(raw, n, all, sh);  // every token was biased away: the raw argmax
  } else {
    if (from_parts) {
      token = draw_from_parts(a, row, p, mx, sh);
    } else if (top_p_drawn) {
      token = a.topp[row].token;
    } else if (n_cand >= 0) {
      const int at = sample_truncated(cand_v, n_cand, p, mx, sh);
      token = at >= 0 ? cand_i[at] : -1;
    } else {
      token = sample_truncated(l, n, p, mx, sh);
    }
  }
  if (token < 0) token = 0;

  SampleRowResult* out = a.results + row;
  if (threadIdx.x == 0) {
    out->token = token;
    out->logprob = static_cast<float>(static_cast<double>(l[token]) - log_z);
  }
  const int top = min(p.num_logprobs, kMaxDeviceTopLogprobs);
  float pv = 0.0f;
  int pi = -1;
  for (int j = 0; j < top; ++j) {
    const float fpv = pv;
    const int fpi = pi;
    const int id = block_argmax(l, n, [=](int64_t i, float x) {
      return fpi < 0 || x < fpv || (x == fpv && i > fpi);
    }, sh);
    if (id < 0) break;
    pv = l[id];
    pi = id;
    if (threadIdx.x == 0) {
      out->top_ids[j] = id;
      out->top_logprobs[j] = static_cast<float>(static_cast<double>(pv) - log_z);
    }
  }
}
}  // namespace

Status launch_sample(const SampleLaunch& a, Stream stream) {
  if (a.m == 0) return Status::ok();
  if (a.vocab <= 0 || a.vocab > (int64_t{1} << 30)) return invalid_argument(str_cat("sample: vocab ", a.vocab, " is not usable"));
  if (a.num_parts > 0) KILN_RETURN_IF_ERROR(launch_sample_parts(a, stream));
  sample_kernel<<<static_cast<unsigned>(a.m), kThreads, 0, stream>>>(a);
  return launch_status("sample_kernel");
}

}  // namespace kiln::runtime::cuda
