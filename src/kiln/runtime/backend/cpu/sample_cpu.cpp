#include <algorithm>
#include <cmath>
#include <numeric>
#include <unordered_map>
#include <vector>

#include "kiln/runtime/backend/cpu/isa_cpu.h"
#include "kiln/runtime/backend/cpu/kernels_cpu.h"
#include "kiln/runtime/backend/cpu/lanes16_cpu.h"
#include "kiln/runtime/backend/cpu/parallel_cpu.h"
#include "kiln/runtime/philox.h"

namespace kiln::runtime::cpu {
namespace {

// Masses of an untruncated draw are 64-bit fixed point, as on the GPU (backend/cuda/sample.cu):
// a vocabulary of up to 2^19 weights of at most 1 sums below 2^63.
constexpr double kFixedScale = 17592186044416.0;  // 2^44

// Truncated draws sort at most this many candidates at once (top-p over a whole vocabulary sorts
// only the best-first prefix it needs, in chunks of this size and doubling).
constexpr size_t kSortAll = 1024;

#define KILN_LANES_KERNEL "kiln/runtime/backend/cpu/sample_kernel_cpu.inc"
#include "kiln/runtime/backend/cpu/lanes16_each_isa_cpu.inc"
#undef KILN_LANES_KERNEL

struct RowKernels {
  float (*max)(const float*, int64_t);
  uint64_t (*masses)(const float*, int64_t, float, float, float, uint64_t*);
};

RowKernels row_kernels(CpuIsa isa) {
  switch (isa) {
#ifdef KILN_LANES_X86
    case CpuIsa::kAvx512: return {avx512::row_max, avx512::row_masses};
    case CpuIsa::kAvx2: return {avx2::row_max, avx2::row_masses};
#endif
    default: return {portable::row_max, portable::row_masses};
  }
}

// Better-first order: higher logit, then lower id. Total, so every sort is deterministic.
struct Better {
  const float* l;
  bool operator()(int32_t a, int32_t b) const { return l[a] > l[b] || (l[a] == l[b] && a < b); }
};

void apply_bias_and_penalties(const SamplingParams& sp, const ops::SamplingBatch& batch, size_t row, float* l) {
  for (const auto& [token, bias] : sp.logit_bias) l[token] += bias;
  if (!sp.needs_history()) return;
  const int32_t b = batch.history_start[row], e = batch.history_start[row + 1];
  const int32_t out_begin = b + batch.prompt_len[row];
  if (sp.repetition_penalty != 1.0f) {
    std::vector<int32_t> seen(batch.history_tokens.begin() + b, batch.history_tokens.begin() + e);
    std::sort(seen.begin(), seen.end());
    seen.erase(std::unique(seen.begin(), seen.end()), seen.end());
    for (int32_t t : seen) l[t] = l[t] > 0.0f ? l[t] / sp.repetition_penalty : l[t] * sp.repetition_penalty;
  }
  if (sp.presence_penalty != 0.0f || sp.frequency_penalty != 0.0f) {
    std::unordered_map<int32_t, int32_t> counts;
    for (int32_t j = out_begin; j < e; ++j) ++counts[batch.history_tokens[static_cast<size_t>(j)]];
    for (const auto& [t, c] : counts)
      l[t] -= sp.presence_penalty + sp.frequency_penalty * static_cast<float>(c);
  }
}

// Vocabulary-sized working arrays, kept per thread: allocating them for every row (a quarter of
// a megabyte of doubles) costs fresh pages from the kernel at every step.
struct Scratch {
  std::vector<float> logits;
  std::vector<int32_t> cand;
  std::vector<double> prob;
  std::vector<uint64_t> mass;
};

// The token of an untruncated draw (temperature, optionally min_p): the first whose cumulative
// fixed-point mass passes floor(u * total), as the GPU sampler draws. -1 when no token has mass.
int32_t draw_untruncated(const RowKernels& kernels, const SamplingParams& sp, const ops::SamplingBatch& batch,
                         size_t row, const float* l, int64_t vocab, std::vector<uint64_t>& mass) {
  const float mx = kernels.max(l, vocab);
  if (mx == -INFINITY) return -1;
  mass.resize(static_cast<size_t>(vocab));
  // p / p_max is unchanged by normalisation, and the best token's weight is 1: min_p compares weights.
  const uint64_t total = kernels.masses(l, vocab, mx, 1.0f / sp.temperature, sp.min_p, mass.data());
  if (total == 0) return -1;
  const Philox4x32 r = philox_at(sp.seed, batch.positions[row]);
  const auto target =
      static_cast<uint64_t>(std::floor(static_cast<double>(philox_uniform(r.v[0])) * static_cast<double>(total)));
  uint64_t cum = 0;
  for (int64_t i = 0; i < vocab; ++i) {
    cum += mass[static_cast<size_t>(i)];
    if (cum > target) return static_cast<int32_t>(i);
  }
  for (int64_t i = vocab - 1; i >= 0; --i) if (mass[static_cast<size_t>(i)] > 0) return static_cast<int32_t>(i);
  return -1;
}

SampledToken sample_row(const RowKernels& kernels, const SamplingParams& sp, const ops::SamplingBatch& batch,
                        size_t row, const float* raw, int64_t vocab) {
  thread_local Scratch scratch;
  std::vector<float>& l = scratch.logits;
  l.assign(raw, raw + vocab);
  apply_bias_and_penalties(sp, batch, row, l.data());
  const Better better{l.data()};

  SampledToken result;
  // Log-softmax of the biased, penalised logits (before temperature and truncation).
  double log_z = 0.0;
  if (sp.num_logprobs >= 0) {
    const float mx = *std::max_element(l.begin(), l.end());
    double z = 0.0;
    for (int64_t i = 0; i < vocab; ++i) z += std::exp(static_cast<double>(l[static_cast<size_t>(i)]) - mx);
    log_z = static_cast<double>(mx) + std::log(z);
  }

  const bool truncates = sp.top_k > 0 || sp.top_p < 1.0f;
  if (!sp.greedy() && !truncates) {
    result.token = draw_untruncated(kernels, sp, batch, row, l.data(), vocab, scratch.mass);
  }
  if (sp.greedy() || (!truncates && result.token < 0)) {
    // Greedy, or an untruncated draw where no token has weight: the best logit (the raw logits'
    // when every token was biased to -inf).
    const float* best_of = l.data();
    if (!sp.greedy() && std::all_of(l.begin(), l.end(), [](float x) { return std::isinf(x) && x < 0; })) best_of = raw;
    const Better b{best_of};
    int32_t best = 0;
    for (int32_t i = 1; i < vocab; ++i) if (b(i, best)) best = i;
    result.token = best;
  } else if (truncates) {
    std::vector<int32_t>& cand = scratch.cand;
    cand.resize(static_cast<size_t>(vocab));
    std::iota(cand.begin(), cand.end(), 0);
    // Candidates: tokens with a logit above -inf (never NaN, which no order can place).
    cand.erase(std::remove_if(cand.begin(), cand.end(), [&](int32_t t) { return !(l[t] > -INFINITY); }), cand.end());
    if (cand.empty()) {  // every token was biased to -inf: fall back to the raw argmax
      int32_t best = 0;
      for (int32_t i = 1; i < vocab; ++i) if (raw[i] > raw[best]) best = i;
      result.token = best;
    } else {
      if (sp.top_k > 0 && static_cast<size_t>(sp.top_k) < cand.size()) {
        std::nth_element(cand.begin(), cand.begin() + sp.top_k - 1, cand.end(), better);
        const float kth = l[cand[static_cast<size_t>(sp.top_k) - 1]];
        // Ties with the k-th logit stay, as transformers' top-k keeps them.
        cand.erase(std::remove_if(cand.begin(), cand.end(), [&](int32_t t) { return l[t] < kth; }), cand.end());
      }
      const double inv_t = 1.0 / static_cast<double>(sp.temperature);
      float mx = -INFINITY;
      for (int32_t t : cand) mx = std::max(mx, l[t]);
      const auto weight = [&](int32_t t) { return std::exp((static_cast<double>(l[t]) - mx) * inv_t); };
      // prob[i]: the weight of cand[i], filled best first for (at least) the candidates kept.
      std::vector<double>& prob = scratch.prob;
      prob.clear();
      size_t keep = cand.size();
      if (sp.top_p < 1.0f && cand.size() > kSortAll) {
        // Top-p over many candidates (the whole vocabulary): the total in candidate order, then
        // only as long a best-first prefix as the mass needs, sorted in doubling chunks.
        double total = 0.0;
        for (int32_t t : cand) total += weight(t);
        double mass = 0.0;
        for (size_t done = 0, chunk = kSortAll; prob.size() < keep && done < cand.size(); chunk *= 2) {
          const size_t end = std::min(cand.size(), done + chunk);
          const auto first = cand.begin() + static_cast<std::ptrdiff_t>(done);
          const auto last = cand.begin() + static_cast<std::ptrdiff_t>(end);
          if (end < cand.size()) std::nth_element(first, last, cand.end(), better);
          std::sort(first, last, better);
          for (size_t i = done; i < end && prob.size() < keep; ++i) {
            prob.push_back(weight(cand[i]));
            mass += prob.back() / total;
            if (mass >= static_cast<double>(sp.top_p)) keep = i + 1;
          }
          done = end;
        }
      } else {
        std::sort(cand.begin(), cand.end(), better);
        for (int32_t t : cand) prob.push_back(weight(t));
        if (sp.top_p < 1.0f) {
          // Smallest prefix (best first) whose mass reaches top_p.
          double total = 0.0;
          for (double w : prob) total += w;
          double mass = 0.0;
          for (size_t i = 0; i < cand.size(); ++i) {
            mass += prob[i] / total;
            if (mass >= static_cast<double>(sp.top_p)) {
              keep = i + 1;
              break;
            }
          }
        }
      }
      if (sp.min_p > 0.0f) {
        // p / p_max is unchanged by renormalisation; unnormalised, the best candidate's mass is 1.
        const double pmax = 1.0;
        size_t kept = 0;
        for (size_t i = 0; i < keep; ++i)
          if (prob[i] >= static_cast<double>(sp.min_p) * pmax) {
            cand[kept] = cand[i];
            prob[kept] = prob[i];
            ++kept;
          }
        keep = std::max<size_t>(kept, 1);
      }
      double kept_total = 0.0;
      for (size_t i = 0; i < keep; ++i) kept_total += prob[i];
      const Philox4x32 r = philox_at(sp.seed, batch.positions[row]);
      const double u = static_cast<double>(philox_uniform(r.v[0])) * kept_total;
      double acc = 0.0;
      result.token = cand[keep - 1];
      for (size_t i = 0; i < keep; ++i) {
        acc += prob[i];
        if (u < acc) {
          result.token = cand[i];
          break;
        }
      }
    }
  }

  if (sp.num_logprobs >= 0) {
    result.logprob = static_cast<float>(static_cast<double>(l[static_cast<size_t>(result.token)]) - log_z);
    if (sp.num_logprobs > 0) {
      std::vector<int32_t> ids(static_cast<size_t>(vocab));
      std::iota(ids.begin(), ids.end(), 0);
      const auto k = static_cast<size_t>(sp.num_logprobs);
      std::partial_sort(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(k), ids.end(), better);
      for (size_t i = 0; i < k; ++i)
        result.top.push_back({ids[i], static_cast<float>(static_cast<double>(l[static_cast<size_t>(ids[i])]) - log_z)});
    }
  }
  return result;
}

}  // namespace

Status sample(const DeviceContext& ctx, const Tensor& logits, const ops::SamplingBatch& batch,
              std::vector<SampledToken>* out, CpuIsa isa) {
  const RowKernels kernels = row_kernels(isa);
  const int64_t m = logits.dim(0), vocab = logits.dim(1);
  out->assign(static_cast<size_t>(m), SampledToken{});
  const float* base = logits.data<float>();
  parallel_for(ctx, m, 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const auto row = static_cast<size_t>(i);
      (*out)[row] = sample_row(kernels, batch.params[row], batch, row, base + i * vocab, vocab);
    }
  });
  return Status::ok();
}

void mask_logits(const DeviceContext& ctx, const Tensor& logits, const ops::SamplingBatch& batch) {
  const int64_t m = logits.dim(0), vocab = logits.dim(1);
  const auto wpr = static_cast<int64_t>(batch.mask_words_per_row);
  float* base = logits.data<float>();
  parallel_for(ctx, m, 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const int32_t r = batch.mask_row[static_cast<size_t>(i)];
      if (r < 0) continue;
      const uint32_t* words = batch.mask_words.data() + static_cast<int64_t>(r) * wpr;
      float* l = base + i * vocab;
      for (int64_t w = 0; w < wpr; ++w) {
        const uint32_t bits = words[w];
        if (bits == ~0u) continue;  // most words of a permissive mask
        const int64_t end = std::min<int64_t>(vocab, w * 32 + 32);
        for (int64_t t = w * 32; t < end; ++t)
          if (((bits >> (t - w * 32)) & 1u) == 0) l[t] = -INFINITY;
      }
    }
  });
}

}  // namespace kiln::runtime::cpu
