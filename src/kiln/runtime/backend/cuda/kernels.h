// Raw-pointer launchers of the CUDA kernels. Every launcher enqueues on `stream`, never
// synchronises, and returns the launch status. bf16 data is passed as uint16_t bit patterns.
// Plain C++ header: no CUDA header.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kiln/core/status.h"
#include "kiln/runtime/backend/cuda/device.h"

namespace kiln::runtime::cuda {

// out[i, :] = table[ids[i], :]; ids must already be in [0, vocab) (clamped otherwise).
Status launch_embedding(const int32_t* ids, int64_t n, const uint16_t* table, int64_t vocab,
                        int64_t hidden, uint16_t* out, Stream stream);

// out[i, :] = x[rows[i], :] for rows of `row_bytes` bytes (any dtype).
Status launch_gather_rows(const void* x, const int32_t* rows, int64_t m, int64_t row_bytes, void* out,
                          Stream stream);

// out = weight * x / sqrt(mean(x^2) + eps), per row. x, weight, out bf16; out may alias x.
Status launch_rms_norm(const uint16_t* x, const uint16_t* weight, int64_t n, int64_t hidden, float eps,
                       uint16_t* out, Stream stream);

// out[i, j] = silu(gate_up[i, j]) * gate_up[i, I + j]; bf16.
Status launch_swiglu(const uint16_t* gate_up, int64_t n, int64_t inter, uint16_t* out, Stream stream);

// Per token: optional RMSNorm of each q and k head (weights [D]), RoPE from rope_table
// ([max_pos, D] f32: cos | sin), q and k rotated in place in qkv ([n, (H + 2 KV) * D] bf16),
// k and v written to kv_cache ([num_blocks, 2, block_size, KV, D] bf16) at slot_mapping[i]
// (negative slots are skipped). Positions must be in [0, max_pos) (clamped otherwise).
struct QkvRopeArgs {
  uint16_t* qkv = nullptr;
  const int32_t* positions = nullptr;
  const int32_t* slot_mapping = nullptr;
  const uint16_t* q_norm = nullptr;
  const uint16_t* k_norm = nullptr;
  float eps = 1e-6f;
  const float* rope_table = nullptr;
  int64_t max_positions = 0;
  uint16_t* kv_cache = nullptr;
  int64_t num_tokens = 0;
  int num_heads = 0;
  int num_kv_heads = 0;
  int head_dim = 0;
  int block_size = 16;
};
Status launch_qkv_rope_cache(const QkvRopeArgs& args, Stream stream);

// Paged causal attention (see ops/paged_attention.h). q is read from the first H * D columns of
// rows of `q_row_stride` elements. With num_splits > 1 the keys of each row are split into that
// many ranges whose partial results (partial_out [n, H, splits, D] f32, partial_lse [n, H, splits])
// are merged into out.
struct AttentionArgs {
  const uint16_t* q = nullptr;
  int64_t q_row_stride = 0;
  const uint16_t* kv_cache = nullptr;
  const int32_t* query_start = nullptr;  // [S + 1]
  const int32_t* kv_len = nullptr;       // [S]
  const int32_t* block_start = nullptr;  // [S + 1]
  const int32_t* block_ids = nullptr;
  int num_seqs = 0;
  int64_t num_tokens = 0;
  int num_heads = 0;
  int num_kv_heads = 0;
  int head_dim = 0;
  int block_size = 16;
  float scale = 1.0f;
  int64_t sliding_window = 0;
  int num_splits = 1;
  int64_t max_query_len = 0;  // the longest span of new tokens; prefill-heavy launches use tensor cores
  float* partial_out = nullptr;
  float* partial_lse = nullptr;
  uint16_t* out = nullptr;  // [n, H * D]
};
// The split count a launch should use for `num_tokens` rows with keys up to `max_kv_len`.
int attention_num_splits(int64_t num_tokens, int num_kv_heads, int64_t max_kv_len, int sm_count);
// Bytes of partial_out + partial_lse for `num_splits`.
size_t attention_partial_bytes(int64_t num_tokens, int num_heads, int head_dim, int num_splits);
Status launch_paged_attention(const AttentionArgs& args, Stream stream);

// Gemma 3 element-wise ops (pointwise.cu), bf16 unless noted, f32 math.
// out[i, j] = gelu_tanh(gate_up[i, j]) * gate_up[i, I + j].
Status launch_geglu(const uint16_t* gate_up, int64_t n, int64_t inter, uint16_t* out, Stream stream);
// x *= s over `count` elements, in place.
Status launch_scale(uint16_t* x, int64_t count, float s, Stream stream);
// x = cap * tanh(x / cap) over `count` f32 elements, in place.
Status launch_tanh_softcap(float* x, int64_t count, float cap, Stream stream);
// y += x over `count` elements.
Status launch_add_into(const uint16_t* x, uint16_t* y, int64_t count, Stream stream);

// Mixture-of-experts routing (moe.cu; contracts of ops/moe.h). Expert ids and rows out
// of range are clamped, not reported: checking them would need a host round trip.
Status launch_moe_route(const uint16_t* logits, int64_t n, int num_experts, int top_k, bool normalize, int32_t* ids,
                        float* weights, Stream stream);
Status launch_moe_permute(const int32_t* topk_ids, int64_t pairs, int top_k, int num_experts, int32_t* expert_start,
                          int32_t* sorted_tokens, int32_t* pair_row, Stream stream);
// moe_route then moe_permute: one block for both where the step is small enough
// (kMoeFusedRouteTokens tokens, the probabilities and counts in 48 KiB of shared memory), else
// the two kernels.
inline constexpr int64_t kMoeFusedRouteTokens = 64;
Status launch_moe_route_permute(const uint16_t* logits, int64_t n, int num_experts, int top_k, bool normalize,
                                int32_t* ids, float* weights, int32_t* expert_start, int32_t* sorted_tokens,
                                int32_t* pair_row, Stream stream);
Status launch_moe_combine(const uint16_t* expert_out, int64_t rows, const int32_t* pair_row, const float* topk_weights,
                          int64_t n, int top_k, int64_t hidden, uint16_t* out, Stream stream);
// The experts' grouped GEMM (moe_gemm.cu; contract of ops::moe_grouped_linear[_swiglu]): sorted
// rows grouped by expert as expert_start ([num_experts + 1], device) says, each row of x [.., k]
// bf16 read directly (x_row null: row r is x[r], x_rows == rows) or through x_row (row r is
// x[x_row[r]], the token moe_permute sorted there, clamped to x's x_rows rows); weights:
// [num_experts] device addresses of [n, k] bf16 weights; y [rows, swiglu ? n / 2 : n] bf16.
// k % 8 == 0. Two kernels: kTiles, a tiled tensor-core GEMM (32-row tiles), and kRows, a GEMV over
// runs of at most kMoeRowsMaxRun rows of one expert. max_rows bounds any expert's rows (the
// step's tokens; 0 unknown) and only picks the kernel and the run length (moe_gemm_choose_path
// under kAuto: kRows at one row an expert; KILN_MOE_GEMM=tiles|rows forces one). sm_count sizes
// the rows kernel's grid.
enum class MoeGemmPath { kAuto, kTiles, kRows };
inline constexpr int64_t kMoeRowsMaxRun = 8;
MoeGemmPath moe_gemm_choose_path(int64_t max_rows, MoeGemmPath path);
struct MoeGemmArgs {
  const uint16_t* x = nullptr;
  const int32_t* x_row = nullptr;
  int64_t x_rows = 0;
  int64_t rows = 0;
  const int32_t* expert_start = nullptr;
  int num_experts = 0;
  const int64_t* weights = nullptr;
  int64_t n = 0, k = 0;
  bool swiglu = false;
  uint16_t* y = nullptr;
  int64_t max_rows = 0;
  int sm_count = 1;
  int rows_blocks_per_sm = 0;  // the rows kernel's grid, blocks an SM; 0: its default (benchmarks sweep it)
};
Status launch_moe_grouped_gemm(const MoeGemmArgs& args, MoeGemmPath path, Stream stream);

}  // namespace kiln::runtime::cuda
