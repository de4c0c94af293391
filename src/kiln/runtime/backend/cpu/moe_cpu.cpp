// Mixture-of-experts routing on the CPU (ops/moe.h).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "kiln/core/str.h"
#include "kiln/runtime/backend/cpu/kernels_cpu.h"
#include "kiln/runtime/backend/cpu/parallel_cpu.h"

namespace kiln::runtime::cpu {

Status moe_route(const DeviceContext& ctx, const Tensor& router_logits, const ops::MoeRouting& r,
                 const Tensor& topk_ids, const Tensor& topk_weights) {
  const int64_t n = router_logits.dim(0), e = r.num_experts, k = r.top_k;
  const float* logits = router_logits.data<float>();
  int32_t* ids = topk_ids.data<int32_t>();
  float* weights = topk_weights.data<float>();
  parallel_for(ctx, n, std::max<int64_t>(1, 4096 / e), [&](int64_t b, int64_t end) {
    std::vector<float> prob(static_cast<size_t>(e));
    std::vector<char> taken(static_cast<size_t>(e));
    for (int64_t t = b; t < end; ++t) {
      const float* l = logits + t * e;
      const float m = *std::max_element(l, l + e);
      double z = 0;
      for (int64_t i = 0; i < e; ++i) {
        prob[static_cast<size_t>(i)] = std::exp(l[i] - m);
        z += prob[static_cast<size_t>(i)];
      }
      const auto zf = static_cast<float>(z);
      for (float& p : prob) p /= zf;
      // k rounds of arg-max: k is small (2..8) and the lower id wins ties.
      std::fill(taken.begin(), taken.end(), 0);
      float sum = 0;
      for (int64_t j = 0; j < k; ++j) {
        int64_t best = -1;
        for (int64_t i = 0; i < e; ++i)
          if (!taken[static_cast<size_t>(i)] && (best < 0 || prob[static_cast<size_t>(i)] > prob[static_cast<size_t>(best)]))
            best = i;
        taken[static_cast<size_t>(best)] = 1;
        ids[t * k + j] = static_cast<int32_t>(best);
        weights[t * k + j] = prob[static_cast<size_t>(best)];
        sum += prob[static_cast<size_t>(best)];
      }
      if (r.normalize)
        for (int64_t j = 0; j < k; ++j) weights[t * k + j] /= sum;
    }
  });
  return Status::ok();
}

Status moe_permute(const DeviceContext& ctx, const Tensor& topk_ids, int64_t num_experts, const Tensor& expert_start,
                   const Tensor& sorted_tokens, const Tensor& pair_row) {
  (void)ctx;
  const int64_t k = topk_ids.dim(1), pairs = topk_ids.dim(0) * k;
  const int32_t* ids = topk_ids.data<int32_t>();
  int32_t* start = expert_start.data<int32_t>();
  int32_t* tokens = sorted_tokens.data<int32_t>();
  int32_t* row_of = pair_row.data<int32_t>();
  std::fill(start, start + num_experts + 1, 0);
  for (int64_t p = 0; p < pairs; ++p) {
    if (ids[p] < 0 || ids[p] >= num_experts)
      return invalid_argument(str_cat("moe_permute: expert id ", ids[p], " at pair ", p, " is outside [0, ", num_experts, ")"));
    ++start[ids[p] + 1];
  }
  for (int64_t x = 0; x < num_experts; ++x) start[x + 1] += start[x];
  std::vector<int32_t> cursor(start, start + num_experts);
  for (int64_t p = 0; p < pairs; ++p) {
    const int32_t row = cursor[static_cast<size_t>(ids[p])]++;
    tokens[row] = static_cast<int32_t>(p / k);
    row_of[p] = row;
  }
  return Status::ok();
}

Status moe_combine(const DeviceContext& ctx, const Tensor& expert_out, const Tensor& pair_row,
                   const Tensor& topk_weights, const Tensor& out) {
  const int64_t n = topk_weights.dim(0), k = topk_weights.dim(1), h = out.dim(1), rows = expert_out.dim(0);
  const int32_t* row_of = pair_row.data<int32_t>();
  for (int64_t p = 0; p < n * k; ++p)
    if (row_of[p] < 0 || row_of[p] >= rows)
      return invalid_argument(str_cat("moe_combine: row ", row_of[p], " of pair ", p, " is outside [0, ", rows, ")"));
  const float* y = expert_out.data<float>();
  const float* w = topk_weights.data<float>();
  float* o = out.data<float>();
  parallel_for(ctx, n, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, h * k)), [&](int64_t b, int64_t e) {
    std::vector<float> acc(static_cast<size_t>(h));
    std::vector<int64_t> order(static_cast<size_t>(k));
    for (int64_t t = b; t < e; ++t) {
      // The weighted sum first, then one add into the residual, as transformers sums the experts
      // into a zeroed buffer in pair-row order (the experts' order) before its residual add.
      for (int64_t j = 0; j < k; ++j) order[static_cast<size_t>(j)] = j;
      std::sort(order.begin(), order.end(), [&](int64_t a, int64_t c) { return row_of[t * k + a] < row_of[t * k + c]; });
      std::fill(acc.begin(), acc.end(), 0.0f);
      for (int64_t j : order) {
        const float wj = w[t * k + j];
        const float* yr = y + static_cast<int64_t>(row_of[t * k + j]) * h;
        for (int64_t i = 0; i < h; ++i) acc[static_cast<size_t>(i)] += yr[i] * wj;
      }
      for (int64_t i = 0; i < h; ++i) o[t * h + i] += acc[static_cast<size_t>(i)];
    }
  });
  return Status::ok();
}

}  // namespace kiln::runtime::cpu
