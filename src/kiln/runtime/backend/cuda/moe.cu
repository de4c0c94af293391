// The mixture-of-experts routing kernels: top-k routing, the expert permutation and the weighted
// combine, to the numerics of the CPU reference (backend/cpu/moe_cpu.cpp).
#include <algorithm>

#include "kiln/core/str.h"
#include "kiln/runtime/backend/cuda/cuda_util.cuh"
#include "kiln/runtime/backend/cuda/kernels.h"

namespace kiln::runtime::cuda {
namespace {

using dev::bf16;

// One warp routes token t: the probabilities p = expf(l - max) / z (z summed in double, as the CPU
// does) are computed once into the warp's slice p of shared memory; each of the k arg-max rounds
// then reads them there, and the round's winner is marked taken by setting its p to -1 (every p is
// >= 0, so a taken expert never wins again). The arg-max prefers the higher probability, then the
// lower expert id, as the CPU's ascending strict-greater scan does. Writes ids[t, :] and
// weights[t, :], and the ids to sids[t, :] too where sids is given (shared memory of the fused
// kernel).
__device__ void route_token(const bf16* __restrict__ l, int e, int k, bool normalize, float* p, int32_t* tid,
                            float* tw, int32_t* sids) {
  const int lane = threadIdx.x & 31;
  float m = -INFINITY;
  for (int i = lane; i < e; i += 32) m = fmaxf(m, dev::to_f(l[i]));
  m = dev::warp_max(m);
  double z = 0;
  for (int i = lane; i < e; i += 32) z += static_cast<double>(expf(dev::to_f(l[i]) - m));
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) z += __shfl_xor_sync(0xffffffffu, z, o);
  const auto zf = static_cast<float>(z);
  for (int i = lane; i < e; i += 32) p[i] = expf(dev::to_f(l[i]) - m) / zf;
  __syncwarp();
  float sum = 0;
  for (int j = 0; j < k; ++j) {
    float best_p = -1.0f;
    int best = e;
    for (int i = lane; i < e; i += 32) {
      if (p[i] > best_p) {  // i ascends within a lane: the lower id keeps a tie
        best_p = p[i];
        best = i;
      }
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
      const float op = __shfl_xor_sync(0xffffffffu, best_p, o);
      const int oi = __shfl_xor_sync(0xffffffffu, best, o);
      if (op > best_p || (op == best_p && oi < best)) {
        best_p = op;
        best = oi;
      }
    }
    if (lane == 0) {
      tid[j] = best;
      if (sids != nullptr) sids[j] = best;
      tw[j] = best_p;
      if (best < e) p[best] = -1.0f;
    }
    __syncwarp();  // the next round sees the taken expert
    sum += best_p;
  }
  if (normalize && lane == 0)
    for (int j = 0; j < k; ++j) tw[j] /= sum;
}

// One warp per token, 8 warps a block.
__global__ void moe_route_kernel(const bf16* __restrict__ logits, int64_t n, int e, int k, bool normalize,
                                 int32_t* __restrict__ ids, float* __restrict__ weights) {
  dev::pdl_begin();
  extern __shared__ float probs[];  // [warps][e]
  const int warp = threadIdx.x >> 5;
  const int64_t t = static_cast<int64_t>(blockIdx.x) * (blockDim.x >> 5) + warp;
  if (t >= n) return;
  route_token(logits + t * e, e, k, normalize, probs + static_cast<size_t>(warp) * e, ids + t * k, weights + t * k,
              nullptr);
}

constexpr int kPermuteThreads = 1024;
constexpr int kPermuteChunk = 4096;

// The whole block: a stable counting sort of the (token, slot) pairs by expert. Pass 1 counts each
// expert in shared memory (cursor, [E]) and warp 0 scans the counts into expert_start, each lane
// a contiguous slice of experts; pass 2 walks the pairs in chunks, each thread owning experts
// x = tid, tid + blockDim..., so every expert's pairs are placed in pair order by one thread.
// Skewed routing (every pair to one expert) leaves one thread doing the placing, which is still
// one pass over the pairs. The ids are in global memory, staged through `chunk` (kPermuteChunk at
// a time), or, staged false, all already in shared memory (the fused kernel).
// Expert ids outside [0, E) are clamped: checking them would need a host round trip, and
// moe_route only writes ids in range.
__device__ void permute_block(const int32_t* ids, int64_t pairs, int k, int e, int32_t* __restrict__ expert_start,
                              int32_t* __restrict__ sorted_tokens, int32_t* __restrict__ pair_row, int32_t* cursor,
                              int32_t* chunk, bool staged) {
  for (int x = threadIdx.x; x < e; x += blockDim.x) cursor[x] = 0;
  __syncthreads();
  for (int64_t p = threadIdx.x; p < pairs; p += blockDim.x) atomicAdd(&cursor[min(max(ids[p], 0), e - 1)], 1);
  __syncthreads();
  if (threadIdx.x < 32) {
    const int lane = threadIdx.x, per = (e + 31) / 32;
    const int e0 = min(lane * per, e), e1 = min(e0 + per, e);
    int32_t mine = 0;
    for (int x = e0; x < e1; ++x) mine += cursor[x];
    int32_t incl = mine;
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
      const int32_t v = __shfl_up_sync(0xffffffffu, incl, o);
      if (lane >= o) incl += v;
    }
    int32_t run = incl - mine;
    for (int x = e0; x < e1; ++x) {
      const int32_t c = cursor[x];
      expert_start[x] = run;
      cursor[x] = run;
      run += c;
    }
    if (lane == 31) expert_start[e] = incl;
  }
  __syncthreads();
  for (int64_t base = 0; base < pairs; base += kPermuteChunk) {
    const int64_t rest = pairs - base;
    const int len = rest < kPermuteChunk ? static_cast<int>(rest) : kPermuteChunk;
    const int32_t* c = ids + base;
    if (staged) {
      for (int i = threadIdx.x; i < len; i += blockDim.x) chunk[i] = ids[base + i];
      __syncthreads();
      c = chunk;
    }
    for (int x = threadIdx.x; x < e; x += blockDim.x) {
      int32_t row = cursor[x];
      for (int i = 0; i < len; ++i) {
        if (min(max(c[i], 0), e - 1) != x) continue;
        const int64_t p = base + i;
        sorted_tokens[row] = static_cast<int32_t>(p / k);
        pair_row[p] = row;
        ++row;
      }
      cursor[x] = row;
    }
    __syncthreads();  // the chunk is overwritten next
  }
}

__global__ void moe_permute_kernel(const int32_t* __restrict__ topk_ids, int64_t pairs, int k, int e,
                                   int32_t* __restrict__ expert_start, int32_t* __restrict__ sorted_tokens,
                                   int32_t* __restrict__ pair_row) {
  dev::pdl_begin();
  extern __shared__ int32_t smem[];  // cursor [E], chunk [kPermuteChunk]
  permute_block(topk_ids, pairs, k, e, expert_start, sorted_tokens, pair_row, smem, smem + e, true);
}

// Decode-sized steps: the routing and the permutation in one block. The block's warps route the
// tokens (a warp each, in turns), keeping the ids in shared memory, then sort them as above.
__global__ void moe_route_permute_kernel(const bf16* __restrict__ logits, int64_t n, int e, int k, bool normalize,
                                         int32_t* __restrict__ ids, float* __restrict__ weights,
                                         int32_t* __restrict__ expert_start, int32_t* __restrict__ sorted_tokens,
                                         int32_t* __restrict__ pair_row) {
  dev::pdl_begin();
  extern __shared__ int32_t smem[];  // cursor [E], ids [n * k], probabilities [warps][E]
  int32_t* cursor = smem;
  int32_t* sids = smem + e;
  float* probs = reinterpret_cast<float*>(sids + n * k);
  const int warps = static_cast<int>(blockDim.x >> 5), warp = static_cast<int>(threadIdx.x >> 5);
  for (int64_t t = warp; t < n; t += warps)
    route_token(logits + t * e, e, k, normalize, probs + static_cast<size_t>(warp) * e, ids + t * k, weights + t * k,
                sids + t * k);
  __syncthreads();
  permute_block(sids, n * k, k, e, expert_start, sorted_tokens, pair_row, cursor, nullptr, false);
}

// Block (t, c): token t's k rows in sorted-row order (the experts' order, as the CPU sums them),
// weighted, summed in f32, then added to out once, for kCombineThreads * 8 columns from c: each
// thread takes 8 neighbouring columns, so its k loads are independent (16-byte loads where the rows
// allow). Rows outside [0, rows) are clamped (see moe_permute_kernel).
constexpr int kCombineThreads = 256;

__global__ void moe_combine_kernel(const bf16* __restrict__ expert_out, int64_t rows, const int32_t* __restrict__ pair_row,
                                   const float* __restrict__ topk_weights, int k, int64_t h, bool vec,
                                   bf16* __restrict__ out) {
  dev::pdl_begin();
  extern __shared__ int32_t order[];  // [k] slots by their row, then [k] their clamped rows
  const int64_t t = blockIdx.x;
  const int32_t* rr = pair_row + t * k;
  if (threadIdx.x == 0) {
    for (int j = 0; j < k; ++j) order[j] = j;
    for (int a = 1; a < k; ++a) {  // insertion sort: stable, k is small
      const int32_t v = order[a];
      int b = a - 1;
      while (b >= 0 && rr[order[b]] > rr[v]) {
        order[b + 1] = order[b];
        --b;
      }
      order[b + 1] = v;
    }
    for (int q = 0; q < k; ++q) {
      const int64_t r = rr[order[q]];
      order[k + q] = static_cast<int32_t>(r < 0 ? 0 : (r >= rows ? rows - 1 : r));
    }
  }
  __syncthreads();
  const int64_t i0 = (static_cast<int64_t>(blockIdx.y) * kCombineThreads + threadIdx.x) * 8;
  if (i0 >= h) return;
  float acc[8] = {};
  if (vec) {  // h a multiple of 8 and expert_out 16-byte aligned
    for (int q = 0; q < k; ++q) {
      float v[8];
      dev::unpack8(*reinterpret_cast<const dev::Bf16x8*>(expert_out + order[k + q] * h + i0), v);
      const float wq = topk_weights[t * k + order[q]];
#pragma unroll
      for (int c = 0; c < 8; ++c) acc[c] += v[c] * wq;
    }
  } else {
    for (int q = 0; q < k; ++q) {
      const float wq = topk_weights[t * k + order[q]];
      for (int c = 0; c < 8 && i0 + c < h; ++c) acc[c] += dev::to_f(expert_out[order[k + q] * h + i0 + c]) * wq;
    }
  }
  for (int c = 0; c < 8 && i0 + c < h; ++c) out[t * h + i0 + c] = dev::to_bf(dev::to_f(out[t * h + i0 + c]) + acc[c]);
}

}  // namespace

Status launch_moe_route(const uint16_t* logits, int64_t n, int num_experts, int top_k, bool normalize, int32_t* ids,
                        float* weights, Stream stream) {
  if (n == 0) return Status::ok();
  // Up to 8 warps (tokens) a block, as many as 48 KiB of probabilities allow (one warp past 12,288
  // experts would need more: moe_permute refuses more than 8192 experts anyway).
  const size_t row_bytes = static_cast<size_t>(num_experts) * sizeof(float);
  if (row_bytes > (48u << 10)) return invalid_argument(str_cat("moe_route: ", num_experts, " experts exceed 12288"));
  const int warps = static_cast<int>(std::min<size_t>((48u << 10) / row_bytes, 8));
  return launch("moe_route_kernel", moe_route_kernel, dim3(static_cast<unsigned>((n + warps - 1) / warps)),
                dim3(32 * warps), static_cast<size_t>(warps) * row_bytes, stream, reinterpret_cast<const bf16*>(logits), n,
                num_experts, top_k, normalize, ids, weights);
}

namespace {
size_t moe_permute_smem_bytes(int num_experts) {
  return (static_cast<size_t>(num_experts) + kPermuteChunk) * sizeof(int32_t);
}
}  // namespace

Status launch_moe_permute(const int32_t* topk_ids, int64_t pairs, int top_k, int num_experts, int32_t* expert_start,
                          int32_t* sorted_tokens, int32_t* pair_row, Stream stream) {
  const size_t smem = moe_permute_smem_bytes(num_experts);
  if (smem > 48 * 1024) {
    KILN_RETURN_IF_ERROR(cuda_status(cudaFuncSetAttribute(moe_permute_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                          static_cast<int>(smem)),
                                     "moe_permute smem"));
  }
  return launch("moe_permute_kernel", moe_permute_kernel, dim3(1), dim3(kPermuteThreads), smem, stream, topk_ids, pairs,
                top_k, num_experts, expert_start, sorted_tokens, pair_row);
}

Status launch_moe_route_permute(const uint16_t* logits, int64_t n, int num_experts, int top_k, bool normalize,
                                int32_t* ids, float* weights, int32_t* expert_start, int32_t* sorted_tokens,
                                int32_t* pair_row, Stream stream) {
  // Up to 32 warps (tokens at once), at least 4 (the permutation's threads), as many as 48 KiB of
  // shared memory allows next to the counts and ids.
  const size_t fixed = (static_cast<size_t>(num_experts) + static_cast<size_t>(n * top_k)) * sizeof(int32_t);
  const size_t row_bytes = static_cast<size_t>(num_experts) * sizeof(float);
  const size_t limit = 48u << 10;
  const int64_t warps = std::clamp<int64_t>(n, 4, 32);
  const size_t smem = fixed + static_cast<size_t>(warps) * row_bytes;
  if (n == 0 || n > kMoeFusedRouteTokens || smem > limit) {
    KILN_RETURN_IF_ERROR(launch_moe_route(logits, n, num_experts, top_k, normalize, ids, weights, stream));
    return launch_moe_permute(ids, n * top_k, top_k, num_experts, expert_start, sorted_tokens, pair_row, stream);
  }
  return launch("moe_route_permute_kernel", moe_route_permute_kernel, dim3(1), dim3(static_cast<unsigned>(32 * warps)),
                smem, stream, reinterpret_cast<const bf16*>(logits), n, num_experts, top_k, normalize, ids, weights,
                expert_start, sorted_tokens, pair_row);
}

Status launch_moe_combine(const uint16_t* expert_out, int64_t rows, const int32_t* pair_row, const float* topk_weights,
                          int64_t n, int top_k, int64_t hidden, uint16_t* out, Stream stream) {
  if (n == 0) return Status::ok();
  const int64_t col_blocks = (hidden + kCombineThreads * 8 - 1) / (kCombineThreads * 8);
  const bool vec = hidden % 8 == 0 && (reinterpret_cast<uintptr_t>(expert_out) & 15) == 0;
  const dim3 grid(static_cast<unsigned>(n), static_cast<unsigned>(col_blocks));
  return launch("moe_combine_kernel", moe_combine_kernel, grid, dim3(kCombineThreads),
                2 * static_cast<size_t>(top_k) * sizeof(int32_t), stream, reinterpret_cast<const bf16*>(expert_out),
                rows, pair_row, topk_weights, top_k, hidden, vec, reinterpret_cast<bf16*>(out));
}

}  // namespace kiln::runtime::cuda
