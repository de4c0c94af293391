// The GPU sampler's shared device code (sample.cu, sample_parts.cu): block reductions, the radix
// select over the logits' order-preserving keys and its ordered scan, a draw's weights, the
// one-block truncated draw, and the vocabulary slices of a row. Included only by .cu files of this
// folder.
#pragma once

#include <algorithm>
#include <climits>
#include <cmath>

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

// Top-k's key: the k-th best key among the finite tokens, or 0 when there are at most k of them
// (every finite token is kept).
__device__ uint32_t top_k_key(const float* l, int64_t n, int k, Shared& sh) {
  u64 count = 0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) count += l[i] > -INFINITY ? 1 : 0;
  count = block_sum_u64(count, sh);
  uint32_t key = 0;
  if (static_cast<u64>(k) < count) {
    int unused = 0;
    select_better(
        l, n, [](int64_t, float x) { return x > -INFINITY; }, [](float) -> u64 { return 1; }, static_cast<u64>(k),
        false, sh, &key, &unused);
  }
  return key;
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
  auto mass = [=](float x) -> u64 { return dw.mass(x); };

  const uint32_t k1 = p.top_k > 0 ? top_k_key(l, n, p.top_k, sh) : 0;  // NaN is never a candidate
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
// The row's max from its parts, in every lane (fmaxf skips NaN, as the single-block pass does).
__device__ float parts_max(const SampleLaunch& a, int64_t row) {
  const int lane = threadIdx.x & 31;
  float v = lane < a.num_parts ? a.parts[row * a.num_parts + lane].value : -INFINITY;
  return dev::warp_max(v);
}

}  // namespace
}  // namespace kiln::runtime::cuda
