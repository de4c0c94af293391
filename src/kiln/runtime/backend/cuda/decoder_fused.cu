// The fused one-token decoder (decoder_fused.h). One block of kWarps warps per SM, launched
// cooperatively so that every block is resident and grid barriers cannot deadlock. A layer is
// five phases, each ending at a grid barrier:
//   1. RMSNorm (every block normalises the residual itself) and the QKV projection;
//   2. attention: the blocks of kv head h (blockIdx % KV == h) split its keys, each warp one query
//      head and one key range (q/k norm, RoPE and the cache write of the new key done in place);
//      warps merge in shared memory, blocks through partials that the last block to finish merges;
//   3. the O projection, added into the residual;
//   4. RMSNorm and the gate/up projection with SwiGLU;
//   5. the down projection, added into the residual.
// The projections are one warp per output row, with the small-m GEMV's loads and summation order
// (gemm.cu), so their results are bitwise those of the separate kernels. Data written by other
// blocks during the kernel is read with ld.global.cg (L2), never through L1.
#include <algorithm>

#include "kiln/runtime/backend/cuda/cuda_util.cuh"
#include "kiln/runtime/backend/cuda/decoder_fused.h"
#include "kiln/runtime/backend/cuda/norm_rows.cuh"

namespace kiln::runtime::cuda {
namespace {

using dev::bf16;
using dev::Bf16x8;

constexpr int kWarps = 16;
constexpr int kThreads = 32 * kWarps;
constexpr int kUnroll = 8;        // weight vectors per lane in a chunk of the projections
constexpr int kMaxPairs = 4;      // rotation pairs per lane (the kernel's kP): head_dim <= 256
constexpr int kKeysPerWarp = 4;   // fewest keys a warp's range starts with before more blocks join

// Keys whose K and V a warp loads together: 32 registers' worth whatever kP.
template <int kP>
constexpr int kKeyBatch = kP <= 2 ? 4 : 2;

__device__ __forceinline__ Bf16x8 ldcg8(const Bf16x8* p) {
  const uint4 v = __ldcg(reinterpret_cast<const uint4*>(p));
  return *reinterpret_cast<const Bf16x8*>(&v);
}
__device__ __forceinline__ float ldcg_f(const bf16* p) {
  return dev::to_f(__ushort_as_bfloat16(__ldcg(reinterpret_cast<const unsigned short*>(p))));
}

__device__ __forceinline__ unsigned ld_acquire(const unsigned* p) {
  unsigned v;
  asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");
  return v;
}

__device__ __forceinline__ unsigned long long global_ns() {
  unsigned long long t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}

// Every block of the grid arrives here before any leaves; `goal` counts arrivals per launch.
// With a trace, barrier i records the first and last arrival and block 0's release (ns).
__device__ __forceinline__ void grid_sync(unsigned* bar, unsigned& goal, unsigned long long* trace) {
  __syncthreads();
  goal += gridDim.x;
  if (threadIdx.x == 0) {
    unsigned long long* tr = trace != nullptr ? trace + 3 * (goal / gridDim.x - 1) : nullptr;
    if (tr != nullptr) {
      const unsigned long long t = global_ns();
      atomicMin(tr, t);
      atomicMax(tr + 1, t);
    }
    __threadfence();
    atomicAdd(bar, 1u);
    while (ld_acquire(bar) < goal) {
    }
    if (tr != nullptr && blockIdx.x == 0) tr[2] = global_ns();
  }
  __syncthreads();
}

// The rows of an [n, k] product that this warp computes: each block takes an equal contiguous
// range of rows (so an SM streams one region of the matrix, as the small-m GEMV's resident
// blocks do), its warps every kWarps-th row of that range.
struct Rows {
  int64_t first, end;
  __device__ __forceinline__ Rows(int64_t n) {
    const int64_t per_block = (n + gridDim.x - 1) / gridDim.x;
    const int64_t start = blockIdx.x * per_block;
    first = start + (threadIdx.x >> 5);
    end = min(n, start + per_block);
  }
};

// A warp streams kRowsAtOnce of its rows together, kVecs vectors of each per lane and chunk:
// more rows in flight per SM than one row at a time with the same registers.
constexpr int kRowsAtOnce = 1;
constexpr int kVecs = kUnroll / kRowsAtOnce;
using Chunk = Bf16x8[kUnroll];  // [row of the group][vector]

// The chunk `step` of the rows base + kWarps i (i < kRowsAtOnce) below `end`: lane's vectors
// lane + 32 (kVecs step + u).
__device__ __forceinline__ void load_chunk(const Bf16x8* __restrict__ w, int64_t kv, int64_t base, int64_t end,
                                           int step, Chunk& b) {
  const int lane = threadIdx.x & 31;
#pragma unroll
  for (int i = 0; i < kRowsAtOnce; ++i) {
    const int64_t r = base + static_cast<int64_t>(kWarps) * i;
#pragma unroll
    for (int u = 0; u < kVecs; ++u) {
      const int64_t v = lane + 32 * (static_cast<int64_t>(kVecs) * step + u);
      if (r < end && v < kv) b[i * kVecs + u] = w[r * kv + v];
    }
  }
}

// A position in a warp's sequence of chunks: its row group and the step within the rows.
struct Cursor {
  int64_t base;
  int step;
  __device__ __forceinline__ void next(int steps) {
    if (++step == steps) {
      step = 0;
      base += static_cast<int64_t>(kWarps) * kRowsAtOnce;
    }
  }
};

__device__ __forceinline__ int chunk_steps(int64_t kv) { return static_cast<int>((kv + 32 * kVecs - 1) / (32 * kVecs)); }

// Loads this warp's first two chunks of w [n, k]: the weights of a phase do not depend on the
// phase before, so they are requested before the barrier between them.
__device__ __forceinline__ void prefetch(const bf16* w, int64_t n, int64_t k, Chunk& b0, Chunk& b1) {
  const Rows rows(n);
  const auto* W = reinterpret_cast<const Bf16x8*>(w);
  Cursor c{rows.first, 0};
  load_chunk(W, k / 8, c.base, rows.end, c.step, b0);
  c.next(chunk_steps(k / 8));
  load_chunk(W, k / 8, c.base, rows.end, c.step, b1);
}

// Every row of w [n, k] against xs (shared memory): the warp's rows (Rows), kRowsAtOnce at a
// time, stream through two chunk buffers, each refilled with the chunk after next as soon as it
// is summed. Each lane sums a row's vectors in ascending order and the warp then reduces, the
// small-m GEMV's order, so the result is bitwise that kernel's. epi(row, acc) runs on lane 0;
// b0 and b1 hold the first two chunks (prefetch()).
template <typename Epi>
__device__ __forceinline__ void gemv(const bf16* w, int64_t n, int64_t k, const Bf16x8* xs, Chunk& b0, Chunk& b1,
                                     Epi epi) {
  const Rows rows(n);
  const int lane = threadIdx.x & 31;
  const int64_t kv = k / 8;
  const int steps = chunk_steps(kv);
  const auto* W = reinterpret_cast<const Bf16x8*>(w);
  Cursor at{rows.first, 0}, ahead = at;
  ahead.next(steps);
  ahead.next(steps);
  float acc[kRowsAtOnce] = {};
  // Sums the chunk `at` in `cur`, then requests the chunk two ahead into it; false at the end.
  const auto advance = [&](Chunk& cur) {
#pragma unroll
    for (int u = 0; u < kVecs; ++u) {
      const int64_t v = lane + 32 * (static_cast<int64_t>(kVecs) * at.step + u);
      if (v < kv) {
        float xf[8];
        dev::unpack8(xs[v], xf);
#pragma unroll
        for (int i = 0; i < kRowsAtOnce; ++i) {
          if (at.base + static_cast<int64_t>(kWarps) * i < rows.end) {
            float wf[8];
            dev::unpack8(cur[i * kVecs + u], wf);
#pragma unroll
            for (int j = 0; j < 8; ++j) acc[i] += wf[j] * xf[j];
          }
        }
      }
    }
    if (ahead.base < rows.end) load_chunk(W, kv, ahead.base, rows.end, ahead.step, cur);
    ahead.next(steps);
    if (at.step == steps - 1) {
#pragma unroll
      for (int i = 0; i < kRowsAtOnce; ++i) {
        const int64_t r = at.base + static_cast<int64_t>(kWarps) * i;
        if (r < rows.end) {
          const float sum = dev::warp_sum(acc[i]);
          if (lane == 0) epi(r, sum);
        }
        acc[i] = 0.0f;
      }
    }
    at.next(steps);
    return at.base < rows.end;
  };
  if (at.base >= rows.end) return;
  while (advance(b0) && advance(b1)) {
  }
}

__device__ __forceinline__ float bias_at(const bf16* b, int64_t i) { return b != nullptr ? dev::to_f(b[i]) : 0.0f; }

// residual[r] += bf16(acc + bias[r]), rounded as a separate bf16 add would.
__device__ __forceinline__ void add_into(bf16* residual, int64_t r, float acc, const bf16* bias) {
  residual[r] = dev::to_bf(ldcg_f(residual + r) + dev::to_f(dev::to_bf(acc + bias_at(bias, r))));
}

// xs = the n bf16 values of src (written by other blocks), for the block.
__device__ __forceinline__ void stage(Bf16x8* xs, const bf16* src, int64_t n) {
  const auto* sv = reinterpret_cast<const Bf16x8*>(src);
  for (int64_t i = threadIdx.x; i < n / 8; i += kThreads) xs[i] = ldcg8(sv + i);
  __syncthreads();
}

// xs = silu(gate) * up of the [gate; up] products (bf16, written by other blocks), rounded as the
// small-m kernel's SwiGLU epilogue rounds them.
__device__ __forceinline__ void stage_swiglu(Bf16x8* xs, const bf16* gate_up, int64_t inter) {
  const auto* gv = reinterpret_cast<const Bf16x8*>(gate_up);
  for (int64_t i = threadIdx.x; i < inter / 8; i += kThreads) {
    float g[8], u[8];
    dev::unpack8(ldcg8(gv + i), g);
    dev::unpack8(ldcg8(gv + inter / 8 + i), u);
#pragma unroll
    for (int j = 0; j < 8; ++j) g[j] = dev::to_f(dev::to_bf(dev::silu(g[j]) * u[j]));
    xs[i] = dev::pack8(g);
  }
  __syncthreads();
}

// xs = rms_norm(residual) by norm_w, exactly as ops::rms_norm; xraw is scratch.
__device__ __forceinline__ void norm_into(Bf16x8* xs, Bf16x8* xraw, const bf16* residual, const bf16* norm_w,
                                          int64_t hidden, float eps, float* red) {
  const auto* nw = reinterpret_cast<const Bf16x8*>(norm_w);
  const int64_t kv = hidden / 8;
  Bf16x8 first{};
  if (threadIdx.x < kv) first = nw[threadIdx.x];
  stage(xraw, residual, hidden);
  dev::rms_norm_rows<1>(xraw, nw, first, kv, eps, xs, red);
}

// One head's rotation pairs (j, j + D/2), j = lane + 32 t, of bf16 `x` (written by other blocks).
template <int kP>
__device__ __forceinline__ void load_pairs(const bf16* x, int D, float (&lo)[kP], float (&hi)[kP]) {
  const int lane = threadIdx.x & 31, half = D / 2;
#pragma unroll
  for (int t = 0; t < kP; ++t) {
    const int j = lane + 32 * t;
    lo[t] = j < half ? ldcg_f(x + j) : 0.0f;
    hi[t] = j < half ? ldcg_f(x + j + half) : 0.0f;
  }
}

// The pairs of load_pairs with optional RMSNorm by norm_w, then RoPE by cos c and sin sn, each
// result rounded to bf16 (as qkv_rope_kernel).
template <int kP>
__device__ __forceinline__ void norm_rope(const bf16* norm_w, const float (&c)[kP], const float (&sn)[kP], int D,
                                          float eps, float (&lo)[kP], float (&hi)[kP]) {
  const int lane = threadIdx.x & 31, half = D / 2;
  if (norm_w != nullptr) {
    float ss = 0.0f;
#pragma unroll
    for (int t = 0; t < kP; ++t) ss += lo[t] * lo[t] + hi[t] * hi[t];
    ss = dev::warp_sum(ss);
    const float rs = rsqrtf(ss / static_cast<float>(D) + eps);
#pragma unroll
    for (int t = 0; t < kP; ++t) {
      const int j = lane + 32 * t;
      if (j < half) {
        lo[t] = lo[t] * rs * dev::to_f(norm_w[j]);
        hi[t] = hi[t] * rs * dev::to_f(norm_w[j + half]);
      }
    }
  }
#pragma unroll
  for (int t = 0; t < kP; ++t) {
    const float l = lo[t], h = hi[t];
    lo[t] = dev::to_f(dev::to_bf(l * c[t] - h * sn[t]));
    hi[t] = dev::to_f(dev::to_bf(h * c[t] + l * sn[t]));
  }
}

// Online softmax state of one query head over a warp's keys; lanes hold the pairs of rope_head.
template <int kP>
struct Softmax {
  float m = -INFINITY, l = 0.0f, lo[kP] = {}, hi[kP] = {};

  __device__ __forceinline__ void add(float score, const float (&vlo)[kP], const float (&vhi)[kP]) {
    const float m_new = fmaxf(m, score);
    const float corr = __expf(m - m_new), p = __expf(score - m_new);
    l = l * corr + p;
#pragma unroll
    for (int t = 0; t < kP; ++t) {
      lo[t] = lo[t] * corr + p * vlo[t];
      hi[t] = hi[t] * corr + p * vhi[t];
    }
    m = m_new;
  }
};

template <int kP>
__device__ __forceinline__ float head_dot(const float (&qlo)[kP], const float (&qhi)[kP], const float (&klo)[kP],
                                          const float (&khi)[kP]) {
  float s = 0.0f;
#pragma unroll
  for (int t = 0; t < kP; ++t) s += qlo[t] * klo[t] + qhi[t] * khi[t];
  return dev::warp_sum(s);
}

// Which keys of the step's one sequence this warp scores in phase 2: the blocks of kv head h
// (blockIdx % KV == h) take equal spans of the keys, each warp of a block one query head of the
// group and one range of its block's span, so that short contexts use few blocks and long ones
// all of them.
struct AttnWork {
  int kvh, j, nb, nba, g;
  int w0, w1;  // the warp's keys [w0, w1); empty when w0 >= w1
  int end;     // keys below end come from the cache; key len - 1 is the step's own, from qkv
  int len;
};

__device__ __forceinline__ AttnWork attn_work(const FusedDecodeArgs& a) {
  const FusedShape& s = a.shape;
  const int KV = s.kv_heads, G = s.heads / KV;
  AttnWork w;
  w.kvh = blockIdx.x % KV;
  w.j = blockIdx.x / KV;
  w.nb = gridDim.x / KV;
  w.len = a.kv_len[0];
  const int k_lo = s.sliding_window > 0 ? max(0, w.len - static_cast<int>(s.sliding_window)) : 0;
  const int span = w.len - k_lo;
  const int R = max(1, kWarps / G);  // key ranges per block
  const int wanted = min(w.nb, (span + R * kKeysPerWarp - 1) / (R * kKeysPerWarp));
  const int cb = (span + wanted - 1) / wanted;  // keys per block
  w.nba = (span + cb - 1) / cb;                 // blocks with keys
  const int warp = threadIdx.x >> 5;
  w.g = warp % G;
  const int r = warp / G;
  const int b0 = k_lo + w.j * cb, b1 = min(w.len, b0 + cb);
  const int cw = (b1 - b0 + R - 1) / R;
  w.w0 = b0 + r * cw;
  w.w1 = (w.j < w.nba && r < R) ? min(b1, w.w0 + cw) : w.w0;
  w.end = w.w1 == w.len ? w.len - 1 : w.w1;
  return w;
}

template <int kP>
struct KvBatch {
  float klo[kKeyBatch<kP>][kP], khi[kKeyBatch<kP>][kP], vlo[kKeyBatch<kP>][kP], vhi[kKeyBatch<kP>][kP];
};

// K and V of keys [p0, p0 + kKeyBatch) below w.end, from the cache.
template <int kP>
__device__ __forceinline__ void load_kv(const FusedDecodeArgs& a, const FusedLayer& L, const AttnWork& w, int p0,
                                        KvBatch<kP>& kb) {
  const int D = a.shape.head_dim, half = D / 2, lane = threadIdx.x & 31;
  const int64_t row = static_cast<int64_t>(a.shape.kv_heads) * D, bs = a.shape.block_size;
  const auto* cache = reinterpret_cast<const bf16*>(L.kv_cache);
#pragma unroll
  for (int b = 0; b < kKeyBatch<kP>; ++b) {
    const int p = p0 + b;
    const int64_t blk = p < w.end ? a.block_ids[p / bs] : 0;
    const bf16* k = cache + ((blk * 2) * bs + p % bs) * row + static_cast<int64_t>(w.kvh) * D;
    const bf16* v = k + bs * row;
#pragma unroll
    for (int t = 0; t < kP; ++t) {
      const int jj = lane + 32 * t;
      const bool ok = p < w.end && jj < half;
      kb.klo[b][t] = ok ? dev::to_f(k[jj]) : 0.0f;
      kb.khi[b][t] = ok ? dev::to_f(k[jj + half]) : 0.0f;
      kb.vlo[b][t] = ok ? dev::to_f(v[jj]) : 0.0f;
      kb.vhi[b][t] = ok ? dev::to_f(v[jj + half]) : 0.0f;
    }
  }
}

// Phase 2 for this block (see the file comment); kb holds the warp's first keys (loaded before the
// barrier: the cache's old keys do not depend on this layer's projections). wo/wm/wl: per-warp
// results in shared memory.
template <int kP>
__device__ void attention(const FusedDecodeArgs& a, const FusedLayer& L, const AttnWork& w, KvBatch<kP>& kb,
                          float* wo, float* wm, float* wl, int* last_block) {
  const FusedShape& s = a.shape;
  const int KV = s.kv_heads, D = s.head_dim, G = s.heads / KV, half = D / 2;
  if (w.j >= w.nba) return;  // uniform over the block
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int64_t row = static_cast<int64_t>(KV) * D, bs = s.block_size;
  Softmax<kP> sm;
  if (w.w0 < w.w1) {
    // Every load of q, of the step's own key and value and of the rotation first, then the math.
    const auto* qkv = reinterpret_cast<const bf16*>(a.qkv);
    const bool own = w.end < w.w1;  // the step's own key is this warp's last
    float qlo[kP], qhi[kP], klo[kP], khi[kP], vlo[kP], vhi[kP], c[kP], sn[kP];
    load_pairs<kP>(qkv + static_cast<int64_t>(w.kvh * G + w.g) * D, D, qlo, qhi);
    if (own) {
      load_pairs<kP>(qkv + static_cast<int64_t>(s.heads + w.kvh) * D, D, klo, khi);
      load_pairs<kP>(qkv + static_cast<int64_t>(s.heads + KV + w.kvh) * D, D, vlo, vhi);
    }
    int pos = a.position[0];
    pos = pos < 0 ? 0 : (pos >= s.max_positions ? static_cast<int>(s.max_positions) - 1 : pos);
    const float* cs = a.rope_table + static_cast<int64_t>(pos) * D;
#pragma unroll
    for (int t = 0; t < kP; ++t) {
      const int j = lane + 32 * t;
      c[t] = j < half ? cs[j] : 0.0f;
      sn[t] = j < half ? cs[half + j] : 0.0f;
    }
    norm_rope<kP>(reinterpret_cast<const bf16*>(L.q_norm), c, sn, D, s.eps, qlo, qhi);
    for (int p0 = w.w0; p0 < w.end; p0 += kKeyBatch<kP>) {
      if (p0 != w.w0) load_kv<kP>(a, L, w, p0, kb);
#pragma unroll
      for (int b = 0; b < kKeyBatch<kP>; ++b) {
        if (p0 + b < w.end) sm.add(head_dot<kP>(qlo, qhi, kb.klo[b], kb.khi[b]) * s.scale, kb.vlo[b], kb.vhi[b]);
      }
    }
    if (own) {
      norm_rope<kP>(reinterpret_cast<const bf16*>(L.k_norm), c, sn, D, s.eps, klo, khi);
      const int32_t slot = a.slot[0];
      if (w.g == 0 && slot >= 0) {
        bf16* dk = reinterpret_cast<bf16*>(L.kv_cache) + ((slot / bs) * 2 * bs + slot % bs) * row +
                   static_cast<int64_t>(w.kvh) * D;
        bf16* dv = dk + bs * row;
#pragma unroll
        for (int t = 0; t < kP; ++t) {
          const int jj = lane + 32 * t;
          if (jj < half) {
            dk[jj] = dev::to_bf(klo[t]);
            dk[jj + half] = dev::to_bf(khi[t]);
            dv[jj] = dev::to_bf(vlo[t]);
            dv[jj + half] = dev::to_bf(vhi[t]);
          }
        }
      }
      sm.add(head_dot<kP>(qlo, qhi, klo, khi) * s.scale, vlo, vhi);
    }
  }
  if (lane == 0) {
    wm[warp] = sm.m;
    wl[warp] = sm.l;
  }
#pragma unroll
  for (int t = 0; t < kP; ++t) {
    const int jj = lane + 32 * t;
    if (jj < half) {
      wo[warp * D + jj] = sm.lo[t];
      wo[warp * D + jj + half] = sm.hi[t];
    }
  }
  __syncthreads();
  // The block's warps of each query head merged; with one block, the head's output.
  const int R = max(1, kWarps / G);
  auto* attn = reinterpret_cast<bf16*>(a.attn);
  const int64_t pstride = D + 2;
  float* mine = a.partials + (static_cast<int64_t>(w.kvh) * w.nb + w.j) * G * pstride;
  for (int idx = threadIdx.x; idx < G * D; idx += kThreads) {
    const int gg = idx / D, d = idx % D;
    float M = -INFINITY;
    for (int rr = 0; rr < R; ++rr) M = fmaxf(M, wm[rr * G + gg]);
    float O = 0.0f, Ls = 0.0f;
    for (int rr = 0; rr < R; ++rr) {
      const int ww = rr * G + gg;
      if (wm[ww] == -INFINITY) continue;
      const float e = __expf(wm[ww] - M);
      O += wo[ww * D + d] * e;
      Ls += wl[ww] * e;
    }
    if (w.nba == 1) {
      attn[static_cast<int64_t>(w.kvh * G + gg) * D + d] = dev::to_bf(O / Ls);
    } else {
      mine[gg * pstride + d] = O;
      if (d == 0) {
        mine[gg * pstride + D] = M;
        mine[gg * pstride + D + 1] = Ls;
      }
    }
  }
  if (w.nba == 1) return;
  // Several blocks: the last to finish merges their partials.
  unsigned* count = a.counters + 2 + w.kvh;
  __syncthreads();
  if (threadIdx.x == 0) {
    __threadfence();
    *last_block = atomicAdd(count, 1u) == static_cast<unsigned>(w.nba - 1);
  }
  __syncthreads();
  if (!*last_block) return;
  __threadfence();
  const float* all = a.partials + static_cast<int64_t>(w.kvh) * w.nb * G * pstride;
  for (int idx = threadIdx.x; idx < G * D; idx += kThreads) {
    const int gg = idx / D, d = idx % D;
    float M = -INFINITY;
    for (int jb = 0; jb < w.nba; ++jb) M = fmaxf(M, __ldcg(all + (jb * G + gg) * pstride + D));
    float O = 0.0f, Ls = 0.0f;
    for (int jb = 0; jb < w.nba; ++jb) {
      const float* pp = all + (jb * G + gg) * pstride;
      const float e = __expf(__ldcg(pp + D) - M);
      O += __ldcg(pp + d) * e;
      Ls += __ldcg(pp + D + 1) * e;
    }
    attn[static_cast<int64_t>(w.kvh * G + gg) * D + d] = dev::to_bf(O / Ls);
  }
  if (threadIdx.x == 0) *count = 0;
}

template <int kP>
__global__ void __launch_bounds__(kThreads, 1) fused_decode_kernel(FusedDecodeArgs a) {
  extern __shared__ __align__(16) unsigned char smem[];
  __shared__ float red[32];
  __shared__ int last_block;
  const FusedShape& s = a.shape;
  const int64_t hidden = s.hidden, inter = s.inter, q_size = static_cast<int64_t>(s.heads) * s.head_dim;
  const int64_t qkv_n = q_size + 2 * static_cast<int64_t>(s.kv_heads) * s.head_dim;
  const int64_t xs_len = max(max(hidden, q_size), inter);
  auto* xraw = reinterpret_cast<Bf16x8*>(smem);
  Bf16x8* xs = xraw + hidden / 8;
  float* wo = reinterpret_cast<float*>(xs + xs_len / 8);
  float* wm = wo + kWarps * s.head_dim;
  float* wl = wm + kWarps;

  unsigned* bar = a.counters;
  unsigned goal = 0;
  auto* residual = reinterpret_cast<bf16*>(a.residual);
  auto* qkv = reinterpret_cast<bf16*>(a.qkv);
  auto* gate_up = reinterpret_cast<bf16*>(a.gate_up);
  const auto B = [](const uint16_t* x) { return reinterpret_cast<const bf16*>(x); };

  Chunk wa, wb;
  prefetch(B(a.layers[0].qkv_w), qkv_n, hidden, wa, wb);
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
  const AttnWork work = attn_work(a);
  {
    int64_t tok = a.token[0];
    tok = tok < 0 ? 0 : (tok >= s.vocab ? s.vocab - 1 : tok);
    const auto* row = reinterpret_cast<const Bf16x8*>(a.embedding) + tok * (hidden / 8);
    auto* out = reinterpret_cast<Bf16x8*>(residual);
    for (int64_t i = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x; i < hidden / 8;
         i += static_cast<int64_t>(gridDim.x) * kThreads)
      out[i] = row[i];
  }
  grid_sync(bar, goal, a.trace);

  for (int layer = 0; layer < a.num_layers; ++layer) {
    const FusedLayer& L = a.layers[layer];
    // 1. QKV of the normalised residual.
    norm_into(xs, xraw, residual, B(L.input_norm), hidden, s.eps, red);
    gemv(B(L.qkv_w), qkv_n, hidden, xs, wa, wb,
         [&](int64_t r, float acc) { qkv[r] = dev::to_bf(acc + bias_at(B(L.qkv_b), r)); });
    KvBatch<kP> kb;
    if (work.w0 < work.end) load_kv<kP>(a, L, work, work.w0, kb);
    grid_sync(bar, goal, a.trace);
    // 2. Attention.
    attention<kP>(a, L, work, kb, wo, wm, wl, &last_block);
    prefetch(B(L.o_w), hidden, q_size, wa, wb);
    grid_sync(bar, goal, a.trace);
    // 3. O projection into the residual.
    stage(xs, reinterpret_cast<const bf16*>(a.attn), q_size);
    gemv(B(L.o_w), hidden, q_size, xs, wa, wb, [&](int64_t r, float acc) { add_into(residual, r, acc, B(L.o_b)); });
    prefetch(B(L.gate_up_w), 2 * inter, hidden, wa, wb);
    grid_sync(bar, goal, a.trace);
    // 4. Gate/up of the normalised residual (bf16, as the separate product rounds it).
    norm_into(xs, xraw, residual, B(L.post_norm), hidden, s.eps, red);
    gemv(B(L.gate_up_w), 2 * inter, hidden, xs, wa, wb,
         [&](int64_t r, float acc) { gate_up[r] = dev::to_bf(acc + bias_at(B(L.gate_up_b), r)); });
    prefetch(B(L.down_w), hidden, inter, wa, wb);
    grid_sync(bar, goal, a.trace);
    // 5. SwiGLU and the down projection into the residual.
    stage_swiglu(xs, gate_up, inter);
    gemv(B(L.down_w), hidden, inter, xs, wa, wb, [&](int64_t r, float acc) { add_into(residual, r, acc, B(L.down_b)); });
    if (layer + 1 < a.num_layers) {
      prefetch(B(a.layers[layer + 1].qkv_w), qkv_n, hidden, wa, wb);
      grid_sync(bar, goal, a.trace);
    }
  }
  // The last block out resets the barrier for the next launch (every block has passed it).
  __syncthreads();
  if (threadIdx.x == 0) {
    __threadfence();
    if (atomicAdd(bar + 1, 1u) == gridDim.x - 1) {
      bar[0] = 0;
      bar[1] = 0;
    }
  }
}

size_t smem_bytes(const FusedShape& s) {
  const int64_t q_size = static_cast<int64_t>(s.heads) * s.head_dim;
  const int64_t xs_len = std::max<int64_t>(std::max<int64_t>(s.hidden, q_size), s.inter);
  return static_cast<size_t>((s.hidden + xs_len) * 2 + (kWarps * s.head_dim + 2 * kWarps) * 4);
}

struct DeviceLimits {
  int sms = 0, smem_optin = 0;
};
Status device_limits(int device, DeviceLimits* out) {
  KILN_CUDA_RETURN_IF_ERROR(cudaDeviceGetAttribute(&out->sms, cudaDevAttrMultiProcessorCount, device));
  KILN_CUDA_RETURN_IF_ERROR(cudaDeviceGetAttribute(&out->smem_optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  return Status::ok();
}

}  // namespace

Status fused_decode_fits(const FusedShape& s, int device) {
  DeviceLimits lim;
  KILN_RETURN_IF_ERROR(device_limits(device, &lim));
  if (s.head_dim <= 0 || s.head_dim % 2 != 0 || s.head_dim > 64 * kMaxPairs)
    return unimplemented(str_cat("fused decode: head_dim ", s.head_dim));
  if (s.kv_heads <= 0 || s.heads % s.kv_heads != 0 || s.heads / s.kv_heads > kWarps)
    return unimplemented(str_cat("fused decode: ", s.heads, " heads over ", s.kv_heads, " kv heads"));
  if (s.hidden % 8 != 0 || s.inter % 8 != 0 || (s.heads * s.head_dim) % 8 != 0)
    return unimplemented("fused decode: widths must be multiples of 8");
  if (s.kv_heads > lim.sms) return unimplemented("fused decode: more kv heads than SMs");
  if (smem_bytes(s) + 64 > static_cast<size_t>(lim.smem_optin))
    return unimplemented(str_cat("fused decode: ", smem_bytes(s), " bytes of shared memory"));
  return Status::ok();
}

int64_t fused_partial_floats(const FusedShape& s, int device) {
  DeviceLimits lim;
  if (!device_limits(device, &lim).is_ok()) return 0;
  return static_cast<int64_t>(lim.sms) * (s.heads / std::max(s.kv_heads, 1)) * (s.head_dim + 2);
}

int64_t fused_counter_count(const FusedShape& s) { return 2 + s.kv_heads; }

Status launch_fused_decode(const FusedDecodeArgs& a, int device, Stream stream) {
  DeviceLimits lim;
  KILN_RETURN_IF_ERROR(device_limits(device, &lim));
  const size_t smem = smem_bytes(a.shape);
  const int pairs = (a.shape.head_dim / 2 + 31) / 32;
  void (*kernel)(FusedDecodeArgs) = pairs <= 1   ? fused_decode_kernel<1>
                                    : pairs <= 2 ? fused_decode_kernel<2>
                                                 : fused_decode_kernel<kMaxPairs>;
  KILN_CUDA_RETURN_IF_ERROR(
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
  // As little of the SM's memory as shared memory as the kernel needs: the rest is L1, which holds
  // the weight loads in flight (with the largest carve-out the projections streamed at half speed).
  const int carveout = static_cast<int>((smem + 2048) * 100 / static_cast<size_t>(lim.smem_optin)) + 1;
  KILN_CUDA_RETURN_IF_ERROR(
      cudaFuncSetAttribute(kernel, cudaFuncAttributePreferredSharedMemoryCarveout, std::min(carveout, 100)));
  int per_sm = 0;
  KILN_CUDA_RETURN_IF_ERROR(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, kThreads, smem));
  if (per_sm < 1) return resource_exhausted("fused decode: the kernel does not fit on an SM");
  cudaLaunchConfig_t cfg{};
  cfg.gridDim = dim3(static_cast<unsigned>(lim.sms));
  cfg.blockDim = dim3(kThreads);
  cfg.dynamicSmemBytes = smem;
  cfg.stream = stream;
  cudaLaunchAttribute attr[2];
  attr[0].id = cudaLaunchAttributeCooperative;
  attr[0].val.cooperative = 1;
  attr[1].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[1].val.programmaticStreamSerializationAllowed = 1;
  cfg.attrs = attr;
  cfg.numAttrs = pdl_enabled() ? 2 : 1;
  return cuda_status(cudaLaunchKernelEx(&cfg, kernel, a), "fused_decode_kernel");
}

}  // namespace kiln::runtime::cuda
