// Paged attention for rows that attend on their own (decode tokens), on tensor cores. One warp
// per (query row, kv head, split) computes the row's G query heads together as the 16 rows of an
// mma.sync m16n8k16 (heads past G are zero): S = Q K^T for a chunk of 16 keys is two mma per 16
// dims, and P V one per 8 dims, with P taken from S's accumulators without leaving registers (the
// layout FlashAttention-2 uses for query rows, here used for heads). K fragments come from
// ldmatrix, V's from ldmatrix.trans. The warp streams its split's keys through a ring of kStages
// chunks in shared memory filled by cp.async, kStages - 1 chunks in flight while one is scored;
// the first chunk's keys written by earlier steps are copied before the PDL wait. Per head it
// keeps the running max (base 2) and a per-lane partial sum, reduced once at the end.
//
// A warp has no partner to wait for and few registers, so many rows' warps stream at once: the
// scalar row kernel (attention.cu) spent most of its issue slots on the products and the
// shuffles that sum them, which here are a handful of mma per chunk.
#include "kiln/runtime/backend/cuda/attention_decode.h"

#include "kiln/runtime/backend/cuda/attention_rows.cuh"

namespace kiln::runtime::cuda {
namespace {

using dev::bf16;

constexpr int kKeys = 16;     // keys per chunk: one k-step of P V
constexpr int kStages = 3;    // chunks in shared memory
constexpr int kPad = 8;       // bf16 of padding per smem row: ldmatrix rows fall in distinct banks
constexpr int kMaxGroup = 16;

template <int D>
constexpr size_t stage_elems() { return static_cast<size_t>(2) * kKeys * (D + kPad); }
template <int D>
constexpr size_t smem_bytes() { return kStages * stage_elems<D>() * sizeof(bf16); }

// kHi: more than 8 heads per kv head, so fragment rows g + 8 hold heads too.
template <int D, bool kHi>
__global__ void __launch_bounds__(32) attention_decode_kernel(AttentionArgs a) {
  constexpr int ld = D + kPad, KS = D / 16, NB = D / 8, VPR = D / 8;  // VPR: 16-byte vectors per key
  constexpr int kKeysPerPass = 32 / VPR, kPasses = kKeys / kKeysPerPass;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  bf16* ring = reinterpret_cast<bf16*>(smem_raw);
  const int lane = threadIdx.x, g = lane >> 2, t = lane & 3;
  const int KV = a.num_kv_heads, G = a.num_heads / KV;
  const int64_t row = blockIdx.x;
  const int kvh = blockIdx.y, split = blockIdx.z;
  const dev::RowKeys r = dev::row_keys(a, row, split);
  const int32_t chunks = r.end > r.begin ? (r.end - r.begin + kKeys - 1) / kKeys : 0;

  // Copies: lane takes vector (lane % VPR) of keys lane / VPR + kKeysPerPass * pass.
  const int bs = a.block_size, vec = lane % VPR, key_in = lane / VPR;
  const int64_t kv_stride = static_cast<int64_t>(KV) * D;
  const bf16* cache = reinterpret_cast<const bf16*>(a.kv_cache) + static_cast<int64_t>(kvh) * D + vec * 8;
  const int64_t v_offset = bs * kv_stride;
  enum : int { kOld = 1, kNew = 2, kAll = 3 };
  const auto issue = [&](int32_t i, int stage, int which) {
    bf16* ks = ring + stage * stage_elems<D>();
    bf16* vs = ks + kKeys * ld;
    const int32_t c0 = r.begin + i * kKeys + key_in;
    int32_t bi = c0 / bs, off = c0 - bi * bs;
#pragma unroll
    for (int p = 0; p < kPasses; ++p) {
      const int j = key_in + p * kKeysPerPass;
      const int32_t key = c0 + p * kKeysPerPass;
      const bool valid = key < r.end, is_old = valid && key < r.first_new;
      if ((which & (is_old ? kOld : kNew)) != 0) {
        const bf16* src = valid ? cache + (static_cast<int64_t>(r.table[bi]) * 2 * bs + off) * kv_stride : cache;
        dev::cp_async16(ks + j * ld + vec * 8, src, valid);
        dev::cp_async16(vs + j * ld + vec * 8, src + (valid ? v_offset : 0), valid);
      }
      for (off += kKeysPerPass; off >= bs; off -= bs) ++bi;
    }
  };
  if (chunks > 0) issue(0, 0, kOld);
  dev::pdl_begin();
  if (chunks > 0) issue(0, 0, kNew);
  dev::cp_async_commit();
#pragma unroll
  for (int i = 1; i < kStages - 1; ++i) {
    if (i < chunks) issue(i, i, kAll);
    dev::cp_async_commit();
  }

  // Q as the A operand: row g is head g of the group, row g + 8 head g + 8.
  uint32_t qf[KS][4];
  {
    const bf16* qb = reinterpret_cast<const bf16*>(a.q) + row * a.q_row_stride + static_cast<int64_t>(kvh) * G * D;
    const bool lo_ok = g < G, hi_ok = kHi && g + 8 < G;
#pragma unroll
    for (int ks = 0; ks < KS; ++ks) {
      const int c = 16 * ks + 2 * t;
      qf[ks][0] = lo_ok ? dev::ld32(qb + g * D + c) : 0u;
      qf[ks][1] = hi_ok ? dev::ld32(qb + (g + 8) * D + c) : 0u;
      qf[ks][2] = lo_ok ? dev::ld32(qb + g * D + c + 8) : 0u;
      qf[ks][3] = hi_ok ? dev::ld32(qb + (g + 8) * D + c + 8) : 0u;
    }
  }
  const float scale = a.scale * dev::kLog2e;
  float o[NB][4];
#pragma unroll
  for (int nb = 0; nb < NB; ++nb) o[nb][0] = o[nb][1] = o[nb][2] = o[nb][3] = 0.0f;
  float m_run[2] = {-INFINITY, -INFINITY}, l_run[2] = {0.0f, 0.0f};  // rows g, g + 8; l per lane

  for (int32_t i = 0; i < chunks; ++i) {
    if (i + kStages - 1 < chunks) issue(i + kStages - 1, (i + kStages - 1) % kStages, kAll);
    dev::cp_async_commit();
    dev::cp_async_wait<kStages - 1>();  // chunk i has landed
    __syncwarp();                       // ... for every lane's copies
    const bf16* ks = ring + (i % kStages) * stage_elems<D>();
    const bf16* vs = ks + kKeys * ld;

    // S = Q K^T: sc[0] keys 0-7 of the chunk, sc[1] keys 8-15 (columns 2t, 2t + 1).
    float sc[2][4] = {};
    const int mi = lane >> 3, mr = lane & 7;  // the matrix and row this lane addresses
#pragma unroll
    for (int kk = 0; kk < KS; ++kk) {
      uint32_t b[4];
      dev::ldmatrix_x4(b, ks + ((mi >> 1) * 8 + mr) * ld + 16 * kk + (mi & 1) * 8);
      dev::mma_16816(sc[0], qf[kk], b[0], b[1]);
      dev::mma_16816(sc[1], qf[kk], b[2], b[3]);
    }
    const int32_t key0 = r.begin + i * kKeys + 2 * t;
    float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
    for (int n = 0; n < 2; ++n) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        sc[n][e] = key0 + 8 * n + (e & 1) < r.end ? sc[n][e] * scale : -INFINITY;
        mx[e >> 1] = fmaxf(mx[e >> 1], sc[n][e]);
      }
    }
    float alpha[2];
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      mx[h] = fmaxf(mx[h], __shfl_xor_sync(0xffffffffu, mx[h], 1));
      mx[h] = fmaxf(mx[h], __shfl_xor_sync(0xffffffffu, mx[h], 2));
      const float m_new = fmaxf(m_run[h], mx[h]);
      alpha[h] = m_new == -INFINITY ? 1.0f : dev::exp2_approx(m_run[h] - m_new);
      m_run[h] = m_new;
      l_run[h] *= alpha[h];
    }
    // P in bf16 as the A operand of P V (keys are its k); the sums add exactly those weights.
    uint32_t pa[4];
#pragma unroll
    for (int n = 0; n < 2; ++n) {
      bf16 p[4];
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const float mn = m_run[e >> 1];
        p[e] = dev::to_bf(mn == -INFINITY ? 0.0f : dev::exp2_approx(sc[n][e] - mn));
        l_run[e >> 1] += dev::to_f(p[e]);
      }
      pa[2 * n] = dev::pack_bf16(p[0], p[1]);
      pa[2 * n + 1] = kHi ? dev::pack_bf16(p[2], p[3]) : 0u;
    }
    dev::scale_rows(o, alpha);
    // O += P V, 16 dims (two n-blocks) per ldmatrix.trans.
#pragma unroll
    for (int nbp = 0; nbp < NB / 2; ++nbp) {
      uint32_t b[4];
      dev::ldmatrix_x4_trans(b, vs + ((mi & 1) * 8 + mr) * ld + 16 * nbp + (mi >> 1) * 8);
      dev::mma_16816(o[2 * nbp], pa, b[0], b[1]);
      dev::mma_16816(o[2 * nbp + 1], pa, b[2], b[3]);
    }
    __syncwarp();  // every lane is done with this stage before it is refilled
  }
  dev::cp_async_wait<0>();

#pragma unroll
  for (int h = 0; h < 2; ++h) {
    l_run[h] += __shfl_xor_sync(0xffffffffu, l_run[h], 1);
    l_run[h] += __shfl_xor_sync(0xffffffffu, l_run[h], 2);
  }
  const int H = a.num_heads;
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int head = g + 8 * h;
    if (head >= G || (!kHi && h == 1)) continue;
    const int hq = kvh * G + head;
    const float inv = l_run[h] > 0.0f ? 1.0f / l_run[h] : 0.0f;
    if (a.num_splits == 1) {
      bf16* out = reinterpret_cast<bf16*>(a.out) + row * H * D + static_cast<int64_t>(hq) * D + 2 * t;
#pragma unroll
      for (int nb = 0; nb < NB; ++nb) {
        *reinterpret_cast<__nv_bfloat162*>(out + 8 * nb) =
            __floats2bfloat162_rn(o[nb][2 * h] * inv, o[nb][2 * h + 1] * inv);
      }
    } else {
      const int64_t pi = (row * H + hq) * a.num_splits + split;
      float* out = a.partial_out + pi * D + 2 * t;
#pragma unroll
      for (int nb = 0; nb < NB; ++nb) {
        *reinterpret_cast<float2*>(out + 8 * nb) = make_float2(o[nb][2 * h] * inv, o[nb][2 * h + 1] * inv);
      }
      if (t == 0) a.partial_lse[pi] = l_run[h] > 0.0f ? (m_run[h] + log2f(l_run[h])) * dev::kLn2 : -INFINITY;
    }
  }
}

template <int D>
Status launch_d(const AttentionArgs& a, Stream stream) {
  const int G = a.num_heads / a.num_kv_heads;
  const auto kernel = G > 8 ? attention_decode_kernel<D, true> : attention_decode_kernel<D, false>;
  constexpr size_t smem = smem_bytes<D>();
  KILN_CUDA_RETURN_IF_ERROR(
      cudaFuncSetAttribute(kernel, cudaFuncAttributePreferredSharedMemoryCarveout, cudaSharedmemCarveoutMaxShared));
  const dim3 grid(static_cast<unsigned>(a.num_tokens), static_cast<unsigned>(a.num_kv_heads),
                  static_cast<unsigned>(a.num_splits));
  return launch("attention_decode_kernel", kernel, grid, dim3(32), smem, stream, a);
}

}  // namespace

bool attention_decode_fits(const AttentionArgs& a) {
  if (a.num_kv_heads <= 0 || a.num_heads % a.num_kv_heads != 0) return false;
  return (a.head_dim == 64 || a.head_dim == 128) && a.num_heads / a.num_kv_heads <= kMaxGroup;
}

Status launch_attention_decode(const AttentionArgs& a, Stream stream) {
  return a.head_dim == 64 ? launch_d<64>(a, stream) : launch_d<128>(a, stream);
}

}  // namespace kiln::runtime::cuda
