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
#include <cstdlib>

#include "kiln/runtime/backend/cuda/cuda_util.cuh"
#include "kiln/runtime/backend/cuda/decoder_fused.h"
#include "kiln/runtime/backend/cuda/norm_rows.cuh"

namespace kiln::runtime::cuda {
namespace {

using dev::bf16;
using dev::Bf16x8;

constexpr int kWarps = 16;                 // consumer warps
constexpr int kConsumers = 32 * kWarps;
constexpr int kThreads = kConsumers + 32;  // and the producer warp, the block's last
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

__device__ __forceinline__ void consume_sync() { dev::sync_block<kConsumers>(); }

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
  consume_sync();
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
  consume_sync();
}

// ---- The weight ring ----------------------------------------------------------------------
// Every projection row this block computes streams through a ring of `stages` shared-memory
// stages filled by the block's producer warp with cp.async.bulk (the TMA engine), each completing
// on its stage's `full` mbarrier; the consumer warps release a stage on its `empty` mbarrier once
// they have summed it. The weights never depend on the activations, so the producer runs ahead of
// the consumers through every phase and layer, bounded only by the ring: while the consumers wait
// at a grid barrier or compute the attention, the next projections' weights are already arriving.
//
// A stage holds up to kWarps rows of a matrix, one per consumer warp, each a slice of up to
// kChunk columns (kChunk * 2 bytes apart). Producer and consumers walk the same sequence of
// stages (for_each_stage), so they agree on every stage's contents without exchanging anything.
constexpr int kStageBytes = 32 * 1024;
constexpr int kChunk = kStageBytes / (2 * kWarps);  // columns of a row slice: 1,024
constexpr int kMaxStages = 8;

struct Ring {
  unsigned char* base;  // stages * kStageBytes of shared memory
  uint64_t* full;       // [stages]
  uint64_t* empty;      // [stages]
  int stages;
  unsigned t = 0;  // stages used so far by this thread's role
  __device__ __forceinline__ int slot() const { return static_cast<int>(t % static_cast<unsigned>(stages)); }
  __device__ __forceinline__ unsigned round() const { return t / static_cast<unsigned>(stages); }
};

__device__ __forceinline__ uint32_t smem_u32(const void* p) { return static_cast<uint32_t>(__cvta_generic_to_shared(p)); }

__device__ __forceinline__ void mbar_init(uint64_t* b, unsigned count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(smem_u32(b)), "r"(count) : "memory");
}
__device__ __forceinline__ void mbar_arrive(uint64_t* b) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" ::"r"(smem_u32(b)) : "memory");
}
__device__ __forceinline__ void mbar_expect(uint64_t* b, unsigned bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(smem_u32(b)), "r"(bytes) : "memory");
}
// Waits until the phase of parity `parity` of *b has completed.
__device__ __forceinline__ void mbar_wait(uint64_t* b, unsigned parity) {
  uint32_t done = 0;
  while (!done) {
    asm volatile(
        "{ .reg .pred p; mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2; selp.u32 %0, 1, 0, p; }"
        : "=r"(done)
        : "r"(smem_u32(b)), "r"(parity)
        : "memory");
  }
}
// bytes (a multiple of 16) from global src to shared dst, completing on *b.
__device__ __forceinline__ void bulk_copy(void* dst, const void* src, unsigned bytes, uint64_t* b) {
  asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];" ::"r"(
                   smem_u32(dst)),
               "l"(src), "r"(bytes), "r"(smem_u32(b))
               : "memory");
}

// The stages of this block's rows of an [n, k] product, in order: the block takes an equal
// contiguous range of rows, kWarps rows at a time, each group in slices of kChunk columns.
// f(first row, rows, first column, columns, last slice of the group).
template <typename F>
__device__ __forceinline__ void for_each_stage(int64_t n, int64_t k, F f) {
  const int64_t per = (n + gridDim.x - 1) / gridDim.x;
  const int64_t r0 = static_cast<int64_t>(blockIdx.x) * per, r1 = min(n, r0 + per);
  const int64_t kc = min(k, static_cast<int64_t>(kChunk));
  for (int64_t base = r0; base < r1; base += kWarps) {
    const int rows = static_cast<int>(min(static_cast<int64_t>(kWarps), r1 - base));
    for (int64_t k0 = 0; k0 < k; k0 += kc) f(base, rows, k0, static_cast<int>(min(kc, k - k0)), k0 + kc >= k);
  }
}

// The producer warp: requests every stage of w [n, k] into the ring as soon as it is free.
__device__ __forceinline__ void produce(Ring& r, const bf16* w, int64_t n, int64_t k) {
  const int lane = threadIdx.x & 31;
  for_each_stage(n, k, [&](int64_t base, int rows, int64_t k0, int len, bool) {
    const int s = r.slot();
    if (lane == 0) {
      if (r.round() > 0) mbar_wait(r.empty + s, (r.round() - 1) & 1);
      mbar_expect(r.full + s, static_cast<unsigned>(rows * len * 2));
    }
    __syncwarp();
    if (lane < rows) {
      bulk_copy(r.base + static_cast<size_t>(s) * kStageBytes + static_cast<size_t>(lane) * kChunk * 2,
                w + (base + lane) * k + k0, static_cast<unsigned>(len * 2), r.full + s);
    }
    ++r.t;
  });
}

// The consumers: every row of w [n, k] this block computes, against xs (shared memory), from the
// ring. Each lane sums its vectors (lane, lane + 32, ...) in ascending order and the warp then
// reduces, the small-m GEMV's order, so the result is bitwise that kernel's. On lane 0,
// fetch(row) (what the epilogue reads from global memory, requested before the row's weights are
// summed) and epi(row, acc, fetched).
template <typename Fetch, typename Epi>
__device__ __forceinline__ void gemv(Ring& r, int64_t n, int64_t k, const Bf16x8* xs, Fetch fetch, Epi epi,
                                     unsigned long long* waited = nullptr) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  float acc = 0.0f;
  float2 pre{};
  unsigned long long wait_ns = 0;
  for_each_stage(n, k, [&](int64_t base, int rows, int64_t k0, int len, bool last) {
    if (k0 == 0 && lane == 0 && warp < rows) pre = fetch(base + warp);
    const int s = r.slot();
    const unsigned long long t0 = waited != nullptr && threadIdx.x == 0 ? global_ns() : 0;
    mbar_wait(r.full + s, r.round() & 1);
    if (waited != nullptr && threadIdx.x == 0) wait_ns += global_ns() - t0;
    if (warp < rows) {
      const auto* row = reinterpret_cast<const Bf16x8*>(r.base + static_cast<size_t>(s) * kStageBytes +
                                                        static_cast<size_t>(warp) * kChunk * 2);
      const Bf16x8* x = xs + k0 / 8;
      for (int v = lane; v < len / 8; v += 32) {
        float wf[8], xf[8];
        dev::unpack8(row[v], wf);
        dev::unpack8(x[v], xf);
#pragma unroll
        for (int j = 0; j < 8; ++j) acc += wf[j] * xf[j];
      }
    }
    __syncwarp();
    if (lane == 0) mbar_arrive(r.empty + s);
    ++r.t;
    if (last) {
      if (warp < rows) {
        const float sum = dev::warp_sum(acc);
        if (lane == 0) epi(base + warp, sum, pre);
      }
      acc = 0.0f;
    }
  });
  if (waited != nullptr && threadIdx.x == 0) atomicAdd(waited, wait_ns);
}

__device__ __forceinline__ float bias_at(const bf16* b, int64_t i) { return b != nullptr ? dev::to_f(b[i]) : 0.0f; }

// The epilogues' reads: {residual[r] or 0, bias[r] or 0}.
__device__ __forceinline__ float2 fetch_bias(const bf16* bias, int64_t r) { return {0.0f, bias_at(bias, r)}; }
__device__ __forceinline__ float2 fetch_residual(const bf16* residual, const bf16* bias, int64_t r) {
  return {ldcg_f(residual + r), bias_at(bias, r)};
}
// residual[r] += bf16(acc + bias[r]), rounded as a separate bf16 add would.
__device__ __forceinline__ void add_into(bf16* residual, int64_t r, float acc, float2 pre) {
  residual[r] = dev::to_bf(pre.x + dev::to_f(dev::to_bf(acc + pre.y)));
}

// xs = the n bf16 values of src (written by other blocks), for the block.
__device__ __forceinline__ void stage(Bf16x8* xs, const bf16* src, int64_t n) {
  const auto* sv = reinterpret_cast<const Bf16x8*>(src);
  for (int64_t i = threadIdx.x; i < n / 8; i += kConsumers) xs[i] = ldcg8(sv + i);
  consume_sync();
}

// xs = silu(gate) * up of the [gate; up] products (bf16, written by other blocks), rounded as the
// small-m kernel's SwiGLU epilogue rounds them.
__device__ __forceinline__ void stage_swiglu(Bf16x8* xs, const bf16* gate_up, int64_t inter) {
  const auto* gv = reinterpret_cast<const Bf16x8*>(gate_up);
  for (int64_t i = threadIdx.x; i < inter / 8; i += kConsumers) {
    float g[8], u[8];
    dev::unpack8(ldcg8(gv + i), g);
    dev::unpack8(ldcg8(gv + inter / 8 + i), u);
#pragma unroll
    for (int j = 0; j < 8; ++j) g[j] = dev::to_f(dev::to_bf(dev::silu(g[j]) * u[j]));
    xs[i] = dev::pack8(g);
  }
  consume_sync();
}

// xs = rms_norm(residual) by norm_w, exactly as ops::rms_norm; xraw is scratch.
__device__ __forceinline__ void norm_into(Bf16x8* xs, Bf16x8* xraw, const bf16* residual, const bf16* norm_w,
                                          int64_t hidden, float eps, float* red) {
  const auto* nw = reinterpret_cast<const Bf16x8*>(norm_w);
  const int64_t kv = hidden / 8;
  Bf16x8 first{};
  if (threadIdx.x < kv) first = nw[threadIdx.x];
  stage(xraw, residual, hidden);
  dev::rms_norm_rows<1, kConsumers>(xraw, nw, first, kv, eps, xs, red);
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
  const int kpw = a.keys_per_warp;
  const int wanted = min(w.nb, (span + R * kpw - 1) / (R * kpw));
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
  consume_sync();
  // The block's warps of each query head merged; with one block, the head's output.
  const int R = max(1, kWarps / G);
  auto* attn = reinterpret_cast<bf16*>(a.attn);
  const int64_t pstride = D + 2;
  float* mine = a.partials + (static_cast<int64_t>(w.kvh) * w.nb + w.j) * G * pstride;
  for (int idx = threadIdx.x; idx < G * D; idx += kConsumers) {
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
  consume_sync();
  if (threadIdx.x == 0) {
    __threadfence();
    *last_block = atomicAdd(count, 1u) == static_cast<unsigned>(w.nba - 1);
  }
  consume_sync();
  if (!*last_block) return;
  __threadfence();
  const float* all = a.partials + static_cast<int64_t>(w.kvh) * w.nb * G * pstride;
  for (int idx = threadIdx.x; idx < G * D; idx += kConsumers) {
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
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  extern __shared__ __align__(128) unsigned char smem[];
  __shared__ uint64_t full[kMaxStages], empty[kMaxStages];
  __shared__ float red[32];
  __shared__ int last_block;
  const FusedShape& s = a.shape;
  const int64_t hidden = s.hidden, inter = s.inter, q_size = static_cast<int64_t>(s.heads) * s.head_dim;
  const int64_t qkv_n = q_size + 2 * static_cast<int64_t>(s.kv_heads) * s.head_dim;
  const int64_t xs_len = max(max(hidden, q_size), inter);
  Ring ring{smem, full, empty, a.stages};
  auto* xraw = reinterpret_cast<Bf16x8*>(smem + static_cast<size_t>(a.stages) * kStageBytes);
  Bf16x8* xs = xraw + hidden / 8;
  float* wo = reinterpret_cast<float*>(xs + xs_len / 8);
  float* wm = wo + kWarps * s.head_dim;
  float* wl = wm + kWarps;
  const auto B = [](const uint16_t* x) { return reinterpret_cast<const bf16*>(x); };
  const auto W = [&](int phase) { return a.waits != nullptr ? a.waits + phase : nullptr; };

  if (threadIdx.x == 0) {
    for (int i = 0; i < a.stages; ++i) {
      mbar_init(full + i, 1);
      mbar_init(empty + i, kWarps);
    }
    asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
  }
  __syncthreads();
  if (threadIdx.x >= kConsumers) {
    // The producer: every layer's weights, in the consumers' order, from before the PDL wait on.
    for (int layer = 0; layer < a.num_layers; ++layer) {
      const FusedLayer& L = a.layers[layer];
      produce(ring, B(L.qkv_w), qkv_n, hidden);
      produce(ring, B(L.o_w), hidden, q_size);
      produce(ring, B(L.gate_up_w), 2 * inter, hidden);
      produce(ring, B(L.down_w), hidden, inter);
    }
    return;
  }

  unsigned* bar = a.counters;
  unsigned goal = 0;
  auto* residual = reinterpret_cast<bf16*>(a.residual);
  auto* qkv = reinterpret_cast<bf16*>(a.qkv);
  auto* gate_up = reinterpret_cast<bf16*>(a.gate_up);
  asm volatile("griddepcontrol.wait;" ::: "memory");
  const AttnWork work = attn_work(a);
  {
    int64_t tok = a.token[0];
    tok = tok < 0 ? 0 : (tok >= s.vocab ? s.vocab - 1 : tok);
    const auto* row = reinterpret_cast<const Bf16x8*>(a.embedding) + tok * (hidden / 8);
    auto* out = reinterpret_cast<Bf16x8*>(residual);
    for (int64_t i = static_cast<int64_t>(blockIdx.x) * kConsumers + threadIdx.x; i < hidden / 8;
         i += static_cast<int64_t>(gridDim.x) * kConsumers)
      out[i] = row[i];
  }
  grid_sync(bar, goal, a.trace);

  for (int layer = 0; layer < a.num_layers; ++layer) {
    const FusedLayer& L = a.layers[layer];
    // 1. QKV of the normalised residual; the attention's first keys (from earlier steps) first.
    KvBatch<kP> kb;
    if (work.w0 < work.end) load_kv<kP>(a, L, work, work.w0, kb);
    norm_into(xs, xraw, residual, B(L.input_norm), hidden, s.eps, red);
    gemv(
        ring, qkv_n, hidden, xs, [&](int64_t r) { return fetch_bias(B(L.qkv_b), r); },
        [&](int64_t r, float acc, float2 pre) { qkv[r] = dev::to_bf(acc + pre.y); }, W(0));
    grid_sync(bar, goal, a.trace);
    // 2. Attention.
    attention<kP>(a, L, work, kb, wo, wm, wl, &last_block);
    grid_sync(bar, goal, a.trace);
    // 3. O projection into the residual.
    const auto fetch_o = [&](int64_t r) { return fetch_residual(residual, B(L.o_b), r); };
    const auto fetch_down = [&](int64_t r) { return fetch_residual(residual, B(L.down_b), r); };
    const auto add = [&](int64_t r, float acc, float2 pre) { add_into(residual, r, acc, pre); };
    stage(xs, reinterpret_cast<const bf16*>(a.attn), q_size);
    gemv(ring, hidden, q_size, xs, fetch_o, add, W(2));
    grid_sync(bar, goal, a.trace);
    // 4. Gate/up of the normalised residual (bf16, as the separate product rounds it).
    norm_into(xs, xraw, residual, B(L.post_norm), hidden, s.eps, red);
    gemv(
        ring, 2 * inter, hidden, xs, [&](int64_t r) { return fetch_bias(B(L.gate_up_b), r); },
        [&](int64_t r, float acc, float2 pre) { gate_up[r] = dev::to_bf(acc + pre.y); }, W(3));
    grid_sync(bar, goal, a.trace);
    // 5. SwiGLU and the down projection into the residual.
    stage_swiglu(xs, gate_up, inter);
    gemv(ring, hidden, inter, xs, fetch_down, add, W(4));
    if (layer + 1 < a.num_layers) grid_sync(bar, goal, a.trace);
  }
  // The last block out resets the barrier for the next launch (every block has passed it).
  consume_sync();
  if (threadIdx.x == 0) {
    __threadfence();
    if (atomicAdd(bar + 1, 1u) == gridDim.x - 1) {
      bar[0] = 0;
      bar[1] = 0;
    }
  }
#endif
}

// Shared memory besides the ring: the raw and normalised input rows and the attention's per-warp
// results.
size_t smem_bytes(const FusedShape& s) {
  const int64_t q_size = static_cast<int64_t>(s.heads) * s.head_dim;
  const int64_t xs_len = std::max<int64_t>(std::max<int64_t>(s.hidden, q_size), s.inter);
  return static_cast<size_t>((s.hidden + xs_len) * 2 + (kWarps * s.head_dim + 2 * kWarps) * 4);
}

struct DeviceLimits {
  int sms = 0, smem_optin = 0, major = 0;
};
Status device_limits(int device, DeviceLimits* out) {
  KILN_CUDA_RETURN_IF_ERROR(cudaDeviceGetAttribute(&out->sms, cudaDevAttrMultiProcessorCount, device));
  KILN_CUDA_RETURN_IF_ERROR(cudaDeviceGetAttribute(&out->smem_optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  KILN_CUDA_RETURN_IF_ERROR(cudaDeviceGetAttribute(&out->major, cudaDevAttrComputeCapabilityMajor, device));
  return Status::ok();
}

// Ring stages that fit beside the rest of the kernel's shared memory (1 KiB kept for its static
// arrays).
int ring_stages(const FusedShape& s, const DeviceLimits& lim) {
  const int64_t left = static_cast<int64_t>(lim.smem_optin) - static_cast<int64_t>(smem_bytes(s)) - 1024;
  return static_cast<int>(std::min<int64_t>(kMaxStages, std::max<int64_t>(0, left / kStageBytes)));
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
  if (lim.major < 9) return unimplemented("fused decode: needs the TMA engine (sm_90 or later)");
  if (ring_stages(s, lim) < 2)
    return unimplemented(str_cat("fused decode: ", smem_bytes(s), " bytes of shared memory leave no room for the ring"));
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
  FusedDecodeArgs args = a;
  args.stages = ring_stages(a.shape, lim);
  args.keys_per_warp = kKeysPerWarp;
  if (const char* kp = std::getenv("KILN_CUDA_FUSED_KEYS"); kp != nullptr) args.keys_per_warp = std::max(1, std::atoi(kp));
  if (const char* cap = std::getenv("KILN_CUDA_FUSED_STAGES"); cap != nullptr)
    args.stages = std::max(2, std::min(args.stages, std::atoi(cap)));
  const size_t smem = smem_bytes(a.shape) + static_cast<size_t>(args.stages) * kStageBytes;
  const int pairs = (a.shape.head_dim / 2 + 31) / 32;
  void (*kernel)(FusedDecodeArgs) = pairs <= 1   ? fused_decode_kernel<1>
                                    : pairs <= 2 ? fused_decode_kernel<2>
                                                 : fused_decode_kernel<kMaxPairs>;
  KILN_CUDA_RETURN_IF_ERROR(
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
  KILN_CUDA_RETURN_IF_ERROR(cudaFuncSetAttribute(kernel, cudaFuncAttributePreferredSharedMemoryCarveout, 100));
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
  return cuda_status(cudaLaunchKernelEx(&cfg, kernel, args), "fused_decode_kernel");
}

}  // namespace kiln::runtime::cuda
