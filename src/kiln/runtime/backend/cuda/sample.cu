// GPU sampling, one block per row (after blocks over slices of the vocabulary where a batch has
// few rows), without sorting the vocabulary.
//
// Every "k-th best" question (top-k's k-th logit, top-p's boundary, the draw itself when the
// candidates are ordered best first) is answered by a radix select over the logits' order-
// preserving 32-bit keys: four passes of 8 bits with a histogram of counts or of probability mass,
// then an ordered scan among the tokens that share the chosen key (lower id first). Probability
// mass is summed in 64-bit fixed point, so the result does not depend on the order of atomics:
// a row samples the same token on every run. The order of operations is ops/sample.h's.
#include <algorithm>
#include <cmath>
#include <climits>

#include "kiln/runtime/backend/cuda/cuda_util.cuh"
#include "kiln/runtime/backend/cuda/sample_kernels.h"
#include "kiln/runtime/philox.h"

namespace kiln::runtime::cuda {
namespace {

using u64 = unsigned long long;

constexpr int kThreads = 1024;
constexpr int kWarps = kThreads / 32;
constexpr int kArgmaxUnroll = 16;
constexpr double kFixedScale = 17592186044416.0;  // 2^44: a vocabulary of 2^19 sums below 2^63

struct Shared {
  u64 hist[256];
  u64 u_scratch[kWarps];
  double d_scratch[kWarps];
  float f_scratch[kWarps];
  int i_scratch[kWarps];
  uint32_t sel_prefix;
  u64 sel_remaining;
  int sel_strict;
  int sel_id;
};

__device__ __forceinline__ uint32_t order_key(float x) {
  const uint32_t b = __float_as_uint(x);
  return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}

__device__ __forceinline__ u64 warp_sum_u64(u64 v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ u64 block_sum_u64(u64 v, Shared& sh) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  v = warp_sum_u64(v);
  __syncthreads();
  if (lane == 0) sh.u_scratch[warp] = v;
  __syncthreads();
  v = lane < kWarps ? sh.u_scratch[lane] : 0;
  return warp_sum_u64(v);
}

__device__ double block_sum_f64(double v, Shared& sh) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  __syncthreads();
  if (lane == 0) sh.d_scratch[warp] = v;
  __syncthreads();
  v = lane < kWarps ? sh.d_scratch[lane] : 0.0;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ float block_max_f(float v, Shared& sh) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  v = dev::warp_max(v);
  __syncthreads();
  if (lane == 0) sh.f_scratch[warp] = v;
  __syncthreads();
  v = lane < kWarps ? sh.f_scratch[lane] : -INFINITY;
  return dev::warp_max(v);
}

__device__ int block_max_i(int v, Shared& sh) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = max(v, __shfl_xor_sync(0xffffffffu, v, o));
  __syncthreads();
  if (lane == 0) sh.i_scratch[warp] = v;
  __syncthreads();
  v = lane < kWarps ? sh.i_scratch[lane] : INT_MIN;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = max(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Better-first order: higher value, then lower id. Ids of -1 lose to everything.
__device__ __forceinline__ bool better(float av, int ai, float bv, int bi) {
  if (bi < 0) return ai >= 0;
  if (ai < 0) return false;
  return av > bv || (av == bv && ai < bi);
}

// Every lane gets the best (better-first) of the warp's (bv, bi).
__device__ __forceinline__ void warp_best(float& bv, int& bi) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const float ov = __shfl_xor_sync(0xffffffffu, bv, o);
    const int oi = __shfl_xor_sync(0xffffffffu, bi, o);
    if (better(ov, oi, bv, bi)) {
      bv = ov;
      bi = oi;
    }
  }
}

// The best token (better-first) among those with pred(i, x); -1 when none.
template <typename Pred>
__device__ int block_argmax(const float* l, int64_t n, Pred pred, Shared& sh) {
  float bv = -INFINITY;
  int bi = -1;
  const auto consider = [&](int64_t i, float x) {
    if (!isnan(x) && pred(i, x) && better(x, static_cast<int>(i), bv, bi)) {
      bv = x;
      bi = static_cast<int>(i);
    }
  };
  // One block reads the whole row: kArgmaxUnroll loads in flight per thread keep it from waiting
  // on one load at a time (a 128k vocabulary took 60 us at batch 1 that way).
  const int64_t stride = blockDim.x;
  int64_t i = threadIdx.x;
  for (; i + (kArgmaxUnroll - 1) * stride < n; i += kArgmaxUnroll * stride) {
    float x[kArgmaxUnroll];
#pragma unroll
    for (int u = 0; u < kArgmaxUnroll; ++u) x[u] = l[i + u * stride];
#pragma unroll
    for (int u = 0; u < kArgmaxUnroll; ++u) consider(i + u * stride, x[u]);
  }
  for (; i < n; i += stride) consider(i, l[i]);
  warp_best(bv, bi);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  __syncthreads();
  if (lane == 0) {
    sh.f_scratch[warp] = bv;
    sh.i_scratch[warp] = bi;
  }
  __syncthreads();
  bv = lane < kWarps ? sh.f_scratch[lane] : -INFINITY;
  bi = lane < kWarps ? sh.i_scratch[lane] : -1;
  warp_best(bv, bi);
  return bi;
}

// Exclusive prefix sum over the block's threads (in thread order).
__device__ u64 block_exclusive_scan(u64 v, Shared& sh) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  u64 inc = v;
#pragma unroll
  for (int o = 1; o < 32; o <<= 1) {
    const u64 up = __shfl_up_sync(0xffffffffu, inc, o);
    if (lane >= o) inc += up;
  }
  __syncthreads();
  if (lane == 31) sh.u_scratch[warp] = inc;
  __syncthreads();
  if (warp == 0) {
    u64 t = lane < kWarps ? sh.u_scratch[lane] : 0;
    u64 ti = t;
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
      const u64 up = __shfl_up_sync(0xffffffffu, ti, o);
      if (lane >= o) ti += up;
    }
    if (lane < kWarps) sh.u_scratch[lane] = ti - t;  // exclusive over warps
  }
  __syncthreads();
  return sh.u_scratch[warp] + inc - v;
}

// In increasing id order among tokens with pred: the first whose inclusive cumulative weight
// reaches `target` (> when strict, >= otherwise); the last such token when none does.
template <typename Pred, typename Weight>
__device__ int ordered_scan(const float* l, int64_t n, Pred pred, Weight wt, u64 target, bool strict, Shared& sh) {
  const int64_t chunk = (n + blockDim.x - 1) / blockDim.x;
  const int64_t b = min(n, static_cast<int64_t>(threadIdx.x) * chunk), e = min(n, b + chunk);
  u64 local = 0;
  int last = -1;
  for (int64_t i = b; i < e; ++i) {
    const float x = l[i];
    if (pred(i, x)) {
      local += wt(x);
      last = static_cast<int>(i);
    }
  }
  const u64 excl = block_exclusive_scan(local, sh);
  if (threadIdx.x == 0) sh.sel_id = -1;
  __syncthreads();
  const bool crosses = strict ? (excl <= target && excl + local > target) : (excl < target && excl + local >= target);
  if (crosses) {
    u64 cum = excl;
    for (int64_t i = b; i < e; ++i) {
      const float x = l[i];
      if (!pred(i, x)) continue;
      cum += wt(x);
      if (strict ? cum > target : cum >= target) {
        sh.sel_id = static_cast<int>(i);
        break;
      }
    }
  }
  const int last_all = block_max_i(last, sh);  // also orders the sel_id write before the read
  const int id = sh.sel_id;
  return id >= 0 ? id : last_all;
}

// hist[bin] += w for the warp's lanes, one shared-memory atomic per distinct bin (bin 256: none).
// Weights are at most 2^44 (kFixedScale), so 22-bit halves of 32 of them sum in 32 bits.
__device__ __forceinline__ void warp_add_to_bin(u64* hist, unsigned bin, u64 w) {
  const unsigned peers = __match_any_sync(0xffffffffu, bin);
  const unsigned lo = __reduce_add_sync(peers, static_cast<unsigned>(w & ((1u << 22) - 1)));
  const unsigned hi = __reduce_add_sync(peers, static_cast<unsigned>(w >> 22));
  if (bin < 256 && static_cast<int>(threadIdx.x & 31) == __ffs(peers) - 1) {
    atomicAdd(&hist[bin], (static_cast<u64>(hi) << 22) + lo);
  }
}

// sh.hist = the weights of the tokens with pred whose keys match prefix under mask, by their 8
// key bits at shift (the block's threads; whole warps iterate together so that their lanes can
// combine the adds of one bin: the first passes put nearly every logit in one or two bins).
template <typename Pred, typename Weight>
__device__ void radix_histogram(const float* l, int64_t n, Pred pred, Weight wt, uint32_t prefix, uint32_t mask,
                                int shift, Shared& sh) {
  for (int bin = threadIdx.x; bin < 256; bin += blockDim.x) sh.hist[bin] = 0;
  __syncthreads();
  const int64_t n_warps = (n + 31) / 32 * 32;
  for (int64_t i = threadIdx.x; i < n_warps; i += blockDim.x) {
    unsigned bin = 256;  // none
    u64 w = 0;
    if (i < n) {
      const float x = l[i];
      const uint32_t k = order_key(x);
      if ((k & mask) == prefix && pred(i, x)) {
        w = wt(x);
        if (w != 0) bin = (k >> shift) & 255u;
      }
    }
    warp_add_to_bin(sh.hist, bin, w);
  }
  __syncthreads();
}

// One radix pass's choice, by one whole warp (every lane gets it): walking the bins of hist best
// first, the first non-empty bin in which the cumulative weight reaches `remaining` (> when
// strict, >= otherwise); the key bits chosen so far and what is left to reach inside the bin. Not
// reached (rounding): the last non-empty bin, aiming at its last token. Lane j holds bins
// 255 - 8j down to 248 - 8j, so the lanes' prefix sums give each bin the weight before it.
struct RadixChoice {
  uint32_t prefix;
  u64 remaining;
  bool strict;
};
__device__ RadixChoice choose_bin(const u64* hist, uint32_t prefix, int shift, u64 remaining, bool strict) {
  const int lane = threadIdx.x & 31;
  u64 h[8], sum = 0;
#pragma unroll
  for (int t = 0; t < 8; ++t) {
    h[t] = hist[255 - 8 * lane - t];
    sum += h[t];
  }
  u64 incl = sum;
#pragma unroll
  for (int o = 1; o < 32; o <<= 1) {
    const u64 y = __shfl_up_sync(0xffffffffu, incl, o);
    if (lane >= o) incl += y;
  }
  u64 cum = incl - sum, before = 0;
  int found = -1, last = -1;
#pragma unroll
  for (int t = 0; t < 8; ++t) {
    if (h[t] == 0) continue;
    if (found < 0 && (strict ? cum + h[t] > remaining : cum + h[t] >= remaining)) {
      found = t;
      before = cum;
    }
    cum += h[t];
    last = t;
  }
  RadixChoice c{0, 0, strict};
  int chosen = 0;
  const unsigned crossing = __ballot_sync(0xffffffffu, found >= 0);
  const unsigned nonempty = __ballot_sync(0xffffffffu, last >= 0);
  if (crossing != 0) {
    const int src = __ffs(crossing) - 1;
    chosen = 255 - 8 * src - __shfl_sync(0xffffffffu, found, src);
    c.remaining = remaining - __shfl_sync(0xffffffffu, before, src);
  } else if (nonempty != 0) {
    const int src = 31 - __clz(nonempty);
    chosen = 255 - 8 * src - __shfl_sync(0xffffffffu, last, src);
    c.remaining = hist[chosen];
    c.strict = false;
  } else {
    c.strict = false;
  }
  c.prefix = prefix | (static_cast<uint32_t>(chosen) << shift);
  return c;
}

// Radix select in better-first order among tokens with pred: the token at which the cumulative
// weight reaches `target` (see ordered_scan); returns its key and id.
template <typename Pred, typename Weight>
__device__ void select_better(const float* l, int64_t n, Pred pred, Weight wt, u64 target, bool strict, Shared& sh,
                              uint32_t* key_out, int* id_out) {
  uint32_t prefix = 0, mask = 0;
  u64 remaining = target;
  for (int pass = 0; pass < 4; ++pass) {
    const int shift = 24 - 8 * pass;
    radix_histogram(l, n, pred, wt, prefix, mask, shift, sh);
    if (threadIdx.x < 32) {
      const RadixChoice c = choose_bin(sh.hist, prefix, shift, remaining, strict);
      if (threadIdx.x == 0) {
        sh.sel_prefix = c.prefix;
        sh.sel_remaining = c.remaining;
        sh.sel_strict = c.strict ? 1 : 0;
      }
    }
    __syncthreads();
    prefix = sh.sel_prefix;
    remaining = sh.sel_remaining;
    strict = sh.sel_strict != 0;
    mask |= 0xffu << shift;
    __syncthreads();
  }
  const uint32_t key = prefix;
  *key_out = key;
  *id_out = ordered_scan(
      l, n, [&](int64_t i, float x) { return order_key(x) == key && pred(i, x); }, wt, remaining, strict, sh);
}

// A draw's weights: e^((x - max) / T) in 2^-44 units, and min-p's cut (the best token weighs 1).
struct DrawWeights {
  float mx, inv_t, min_p;
  __device__ DrawWeights(const SampleRowParams& p, float max_logit)
      : mx(max_logit), inv_t(1.0f / p.temperature), min_p(p.min_p) {}
  __device__ __forceinline__ u64 mass(float x) const {
    return static_cast<u64>(static_cast<double>(expf((x - mx) * inv_t)) * kFixedScale);
  }
  __device__ __forceinline__ bool above_min_p(float x) const {
    return min_p <= 0.0f || expf((x - mx) * inv_t) >= min_p;
  }
  // A token of an untruncated draw: finite (never NaN) and not cut by min-p.
  __device__ __forceinline__ bool kept(float x) const { return x > -INFINITY && above_min_p(x); }
};

// The draw's target: floor(u * total) for the row's Philox uniform u.
__device__ __forceinline__ u64 draw_target(const SampleRowParams& p, u64 total) {
  const Philox4x32 r = philox_at(p.seed, p.position);
  return static_cast<u64>(floor(static_cast<double>(philox_uniform(r.v[0])) * static_cast<double>(total)));
}

// Top-p's target: the weight its set must reach, ceil(top_p * total), at least 1.
__device__ __forceinline__ u64 top_p_target(const SampleRowParams& p, u64 total) {
  const u64 target = static_cast<u64>(ceil(static_cast<double>(p.top_p) * static_cast<double>(total)));
  return target == 0 ? 1 : target;
}

// A truncated draw's tokens: finite, at least top-k's k-th best key k1, inside top-p's set (no
// worse than its last token, key kp and id idp) and not cut by min-p.
struct TruncatedKept {
  DrawWeights dw;
  uint32_t k1, kp;
  int idp;
  __device__ __forceinline__ bool operator()(int64_t i, float x) const {
    if (!(x > -INFINITY)) return false;
    const uint32_t k = order_key(x);
    if (k < k1 || k < kp || (k == kp && i > idp)) return false;
    return dw.above_min_p(x);
  }
};

__device__ int sample_truncated(const float* l, int64_t n, const SampleRowParams& p, float mx, Shared& sh) {
  const DrawWeights dw(p, mx);
  auto is_cand = [](int64_t, float x) { return x > -INFINITY; };  // NaN is never a candidate
  auto one = [](float) -> u64 { return 1; };
  auto mass = [=](float x) -> u64 { return dw.mass(x); };

  uint32_t k1 = 0;
  if (p.top_k > 0) {
    u64 count = 0;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) count += l[i] > -INFINITY ? 1 : 0;
    count = block_sum_u64(count, sh);
    if (static_cast<u64>(p.top_k) < count) {
      int unused = 0;
      select_better(l, n, is_cand, one, static_cast<u64>(p.top_k), false, sh, &k1, &unused);
    }
  }
  auto kept1 = [=](int64_t, float x) { return x > -INFINITY && order_key(x) >= k1; };

  uint32_t kp = 0;
  int idp = INT_MAX;
  if (p.top_p < 1.0f) {
    u64 total = 0;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
      const float x = l[i];
      if (kept1(i, x)) total += mass(x);
    }
    total = block_sum_u64(total, sh);
    select_better(l, n, kept1, mass, top_p_target(p, total), false, sh, &kp, &idp);
  }
  const TruncatedKept kept{dw, k1, kp, idp};
  u64 total = 0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    const float x = l[i];
    if (kept(i, x)) total += mass(x);
  }
  total = block_sum_u64(total, sh);
  const u64 target = draw_target(p, total);
  if (p.top_k > 0 || p.top_p < 1.0f) {
    uint32_t key = 0;
    int id = 0;
    select_better(l, n, kept, mass, target, true, sh, &key, &id);
    return id;
  }
  return ordered_scan(l, n, kept, mass, target, true, sh);
}

// One block reading a whole row of a small batch leaves the rest of the GPU idle (a 152k
// vocabulary took 25 us at batch 1, 14 us with the parts; an untruncated draw over 128k tokens took
// 120 us), so a.num_parts blocks take a slice each first.
__device__ __forceinline__ bool sliced(const SampleRowParams& p) {
  return sample_argmax_only(p) || sample_untruncated_draw(p);
}

// Slice j of a row: vocabulary ids [begin, end), empty past the vocabulary's end.
struct Slice {
  int64_t begin, end;
  __device__ Slice(const SampleLaunch& a, int j) {
    const int64_t per = (a.vocab + a.num_parts - 1) / a.num_parts;
    begin = min(a.vocab, j * per);
    end = min(a.vocab, begin + per);
  }
};

// Each slice's best token. better() is a total order, so the best of the parts is the token a
// single block would pick, and their best value is the row's max.
__global__ void __launch_bounds__(kThreads) argmax_parts_kernel(SampleLaunch a) {
  __shared__ Shared sh;
  const int64_t row = blockIdx.x, n = a.vocab;
  if (!sliced(a.params[row]) && !(a.topp != nullptr && sample_top_p_slices(a.params[row]))) return;  // uniform
  const Slice sl(a, static_cast<int>(blockIdx.y));
  const int64_t b = sl.begin, e = sl.end;
  const float* l = a.logits + row * n + b;
  const int id = e > b ? block_argmax(l, e - b, [](int64_t, float) { return true; }, sh) : -1;
  if (threadIdx.x == 0) {
    SamplePart& out = a.parts[row * a.num_parts + blockIdx.y];
    out.value = id >= 0 ? l[id] : -INFINITY;
    out.id = id >= 0 ? static_cast<int32_t>(b + id) : -1;
  }
}

// The row's max from its parts, in every lane (fmaxf skips NaN, as the single-block pass does).
__device__ float parts_max(const SampleLaunch& a, int64_t row) {
  const int lane = threadIdx.x & 31;
  float v = lane < a.num_parts ? a.parts[row * a.num_parts + lane].value : -INFINITY;
  return dev::warp_max(v);
}

// Each slice's total weight for an untruncated draw (after argmax_parts_kernel).
__global__ void __launch_bounds__(kThreads) mass_parts_kernel(SampleLaunch a) {
  __shared__ Shared sh;
  const int64_t row = blockIdx.x, n = a.vocab;
  const SampleRowParams p = a.params[row];
  if (!sample_untruncated_draw(p)) return;  // uniform over the block
  const float mx = parts_max(a, row);
  const Slice sl(a, static_cast<int>(blockIdx.y));
  const float* l = a.logits + row * n;
  u64 total = 0;
  if (mx > -INFINITY) {
    const DrawWeights dw(p, mx);
    for (int64_t i = sl.begin + threadIdx.x; i < sl.end; i += blockDim.x) {
      const float x = l[i];
      if (dw.kept(x)) total += dw.mass(x);
    }
  }
  total = block_sum_u64(total, sh);
  if (threadIdx.x == 0) a.parts[row * a.num_parts + blockIdx.y].mass = total;
}

// A top-k row's candidates from one slice (SampleTopKSlice): the slice's k-th best key by the same
// radix select a whole row uses, then every finite token at least that good, in id order. The
// row's k-th best key is at least every slice's, so the candidates hold every token the row keeps.
__global__ void __launch_bounds__(kThreads) topk_parts_kernel(SampleLaunch a) {
  __shared__ Shared sh;
  const int64_t row = blockIdx.x, n = a.vocab;
  const SampleRowParams p = a.params[row];
  if (!sample_top_k_candidates(p)) return;  // uniform over the block
  const Slice sl(a, static_cast<int>(blockIdx.y));
  const int64_t b = sl.begin, len = sl.end - sl.begin;
  const float* l = a.logits + row * n + b;
  u64 count = 0;
  for (int64_t i = threadIdx.x; i < len; i += blockDim.x) count += l[i] > -INFINITY ? 1 : 0;
  count = block_sum_u64(count, sh);
  uint32_t k1 = 0;
  if (static_cast<u64>(p.top_k) < count) {
    int unused = 0;
    select_better(
        l, len, [](int64_t, float x) { return x > -INFINITY; }, [](float) -> u64 { return 1; },
        static_cast<u64>(p.top_k), false, sh, &k1, &unused);
  }
  const auto kept = [=](float x) { return x > -INFINITY && order_key(x) >= k1; };
  const int64_t chunk = (len + blockDim.x - 1) / blockDim.x;
  const int64_t tb = min(len, static_cast<int64_t>(threadIdx.x) * chunk), te = min(len, tb + chunk);
  u64 local = 0;
  for (int64_t i = tb; i < te; ++i) local += kept(l[i]) ? 1 : 0;
  const u64 before = block_exclusive_scan(local, sh);
  const u64 total = block_sum_u64(local, sh);
  SampleTopKSlice& out = a.topk[row * a.num_parts + blockIdx.y];
  if (total > static_cast<u64>(kTopKSliceCandidates)) {
    if (threadIdx.x == 0) out.count = -1;
    return;
  }
  int at = static_cast<int>(before);
  for (int64_t i = tb; i < te; ++i) {
    const float x = l[i];
    if (!kept(x)) continue;
    out.values[at] = x;
    out.ids[at] = static_cast<int32_t>(b + i);
    ++at;
  }
  if (threadIdx.x == 0) out.count = static_cast<int32_t>(total);
}

// A top-p row's two radix selects (sample_top_p_slices) over its slices, one pass per launch
// (after argmax_parts_kernel): stage 0 finds the last token of top-p's set, stage 1 draws from the
// set. Each slice adds its histogram to the row's (SampleTopPState, zero before stage 0), and the
// last slice to finish makes the pass's choice exactly as select_better's one block would, so the
// token is the one-block token. After the fourth pass it scans the tokens of the chosen key in id
// order over the whole row (usually one token).
__global__ void __launch_bounds__(kThreads) topp_pass_kernel(SampleLaunch a, int stage, int pass) {
  __shared__ Shared sh;
  __shared__ int last;
  const int64_t row = blockIdx.x, n = a.vocab;
  const SampleRowParams p = a.params[row];
  if (!sample_top_p_slices(p)) return;  // uniform over the block
  const float mx = parts_max(a, row);
  if (!(mx > -INFINITY)) return;  // sample_kernel takes the raw argmax
  SampleTopPState& st = a.topp[row];
  const float* l = a.logits + row * n;
  const DrawWeights dw(p, mx);
  const TruncatedKept kept = stage == 0 ? TruncatedKept{dw, 0, 0, INT_MAX}
                                        : TruncatedKept{dw, 0, st.boundary_key, st.boundary_id};
  // Stage 0 selects among the finite tokens, before min-p; stage 1 among the kept ones.
  const auto pred = [=](int64_t i, float x) { return stage == 0 ? x > -INFINITY : kept(i, x); };
  const auto mass = [=](float x) -> u64 { return dw.mass(x); };
  const int shift = 24 - 8 * pass;
  const uint32_t mask = pass == 0 ? 0u : ~0u << (32 - 8 * pass);
  const uint32_t prefix = pass == 0 ? 0u : st.prefix;

  const Slice sl(a, static_cast<int>(blockIdx.y));
  radix_histogram(
      l + sl.begin, sl.end - sl.begin, [=](int64_t i, float x) { return pred(sl.begin + i, x); }, mass, prefix, mask,
      shift, sh);
  for (int bin = threadIdx.x; bin < 256; bin += blockDim.x) {
    if (sh.hist[bin] != 0) atomicAdd(reinterpret_cast<u64*>(&st.hist[bin]), sh.hist[bin]);
  }
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0) last = atomicAdd(&st.arrived, 1u) == static_cast<unsigned>(a.num_parts - 1);
  __syncthreads();
  if (!last) return;
  __threadfence();
  for (int bin = threadIdx.x; bin < 256; bin += blockDim.x) {
    sh.hist[bin] = __ldcg(reinterpret_cast<const u64*>(&st.hist[bin]));
    st.hist[bin] = 0;  // for the next pass
  }
  __syncthreads();
  if (threadIdx.x < 32) {
    u64 remaining = st.remaining;
    bool strict = st.strict != 0;
    if (pass == 0) {  // the pass's histogram holds every weight the select ranges over
      u64 total = 0;
      for (int bin = threadIdx.x; bin < 256; bin += 32) total += sh.hist[bin];
      total = warp_sum_u64(total);
      remaining = stage == 0 ? top_p_target(p, total) : draw_target(p, total);
      strict = stage == 1;
    }
    const RadixChoice c = choose_bin(sh.hist, prefix, shift, remaining, strict);
    if (threadIdx.x == 0) {
      st.prefix = c.prefix;
      st.remaining = c.remaining;
      st.strict = c.strict ? 1 : 0;
      st.arrived = 0;
      sh.sel_prefix = c.prefix;
      sh.sel_remaining = c.remaining;
      sh.sel_strict = c.strict ? 1 : 0;
    }
  }
  __syncthreads();
  if (pass < 3) return;
  const uint32_t key = sh.sel_prefix;
  const int id = ordered_scan(
      l, n, [=](int64_t i, float x) { return order_key(x) == key && pred(i, x); }, mass, sh.sel_remaining,
      sh.sel_strict != 0, sh);
  if (threadIdx.x == 0) {
    if (stage == 0) {
      st.boundary_key = key;
      st.boundary_id = id;
    } else {
      st.token = id;
    }
  }
}

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

int sample_parts(int64_t m, bool draws) {
  constexpr int kMaxParts = 32;  // one per lane of best_part and draw_from_parts
  if (m < 1) return 0;
  // Argmax rows alone: up to 8 rows (H100, greedy decode of Llama-3.2-1B and Qwen3-0.6B: 1-2%
  // faster at one row, 2% at eight); at 64 rows the extra kernel cost about 1%.
  if (!draws) return m <= 8 ? kMaxParts : 0;
  // A draw takes one block about 120 us over a 128k vocabulary: slice rows until about 512
  // blocks share the work.
  if (m > 256) return 0;
  return static_cast<int>(std::clamp<int64_t>((512 + m - 1) / m, 2, kMaxParts));
}

Status launch_sample(const SampleLaunch& a, Stream stream) {
  if (a.m == 0) return Status::ok();
  if (a.vocab <= 0 || a.vocab > (int64_t{1} << 30)) return invalid_argument(str_cat("sample: vocab ", a.vocab, " is not usable"));
  if (a.num_parts > 0) {
    if (a.parts == nullptr || a.num_parts > 32) return invalid_argument("sample: parts need a buffer, 32 at most");
    const dim3 grid(static_cast<unsigned>(a.m), static_cast<unsigned>(a.num_parts));
    argmax_parts_kernel<<<grid, kThreads, 0, stream>>>(a);
    KILN_RETURN_IF_ERROR(launch_status("argmax_parts_kernel"));
    if (a.draw_parts) {
      mass_parts_kernel<<<grid, kThreads, 0, stream>>>(a);
      KILN_RETURN_IF_ERROR(launch_status("mass_parts_kernel"));
    }
    if (a.topk != nullptr) {
      topk_parts_kernel<<<grid, kThreads, 0, stream>>>(a);
      KILN_RETURN_IF_ERROR(launch_status("topk_parts_kernel"));
    }
    if (a.topp != nullptr) {
      for (int stage = 0; stage < 2; ++stage) {
        for (int pass = 0; pass < 4; ++pass) {
          topp_pass_kernel<<<grid, kThreads, 0, stream>>>(a, stage, pass);
          KILN_RETURN_IF_ERROR(launch_status("topp_pass_kernel"));
        }
      }
    }
  }
  sample_kernel<<<static_cast<unsigned>(a.m), kThreads, 0, stream>>>(a);
  return launch_status("sample_kernel");
}

}  // namespace kiln::runtime::cuda
