// A test double of runtime::Engine for scheduler and worker tests.
//
// It keeps a "KV cache" of token ids: each step writes every new token (and its position) into the
// slot its block table names, and a sampled token is a hash of the whole context read back through
// the block table. So a wrong block table, a block shared or reused while still needed, or a
// prefix-cache hit on the wrong blocks changes the tokens a sequence produces, and tests that
// compare a request's tokens alone and in a crowd catch it. Every plan is recorded.
#pragma once

#include <functional>
#include <span>
#include <string>
#include <vector>

#include "kiln/core/str.h"
#include "kiln/runtime/engine.h"
#include "kiln/runtime/ops/sample.h"
#include "kiln/runtime/step_inputs.h"

namespace kiln::serve::testing {

class FakeEngine final : public runtime::Engine {
 public:
  struct Options {
    int32_t num_blocks = 64;
    int32_t block_size = 4;
    int64_t vocab_size = 1000;
    int64_t max_model_len = 4096;
    int32_t max_seqs = 256;
    int32_t max_batched_tokens = 8192;
    int32_t prefill_chunk = 8192;  // no chunking by default: tests set it
    std::vector<int32_t> eos_token_ids = {2};
  };

  explicit FakeEngine(Options o) : o_(std::move(o)) {
    config_.vocab_size = o_.vocab_size;
    config_.max_position_embeddings = o_.max_model_len;
    config_.eos_token_ids = o_.eos_token_ids;
    plan_.limits = {o_.max_seqs, o_.max_batched_tokens, o_.max_model_len, o_.block_size, o_.num_blocks,
                    o_.prefill_chunk};
    kv_tokens_.assign(static_cast<size_t>(o_.num_blocks) * static_cast<size_t>(o_.block_size), -1);
    kv_pos_.assign(kv_tokens_.size(), -1);
  }

  // The token a sequence samples after `context` (its tokens so far). Default: a hash of the
  // context (and of the seed and position when not greedy), never an EOS id.
  std::function<int32_t(std::span<const int32_t> context, const runtime::SamplingParams& p)> next_token;
  // Called first on every step; a non-ok status fails the step.
  std::function<Status(const runtime::StepPlan&)> fail_step;
  // Called at the start of every step (after fail_step), e.g. to slow steps down in worker tests.
  std::function<void()> on_step;

  std::vector<runtime::StepPlan> plans;
  int abandoned_steps = 0;  // steps whose StepPlan::abandon said stop

  static int32_t default_next(std::span<const int32_t> context, const runtime::SamplingParams& p,
                              int64_t vocab, std::span<const int32_t> eos) {
    uint64_t h = 1469598103934665603ull;
    for (int32_t t : context) h = (h ^ static_cast<uint32_t>(t)) * 1099511628211ull;
    if (!p.greedy()) h ^= (p.seed + 0x9e3779b97f4a7c15ull * context.size()) * 0xbf58476d1ce4e5b9ull;
    h ^= h >> 29;
    for (;;) {
      const int32_t t = static_cast<int32_t>(h % static_cast<uint64_t>(vocab));
      bool is_eos = false;
      for (int32_t e : eos) is_eos |= e == t;
      if (!is_eos) return t;
      h = h * 6364136223846793005ull + 1442695040888963407ull;
    }
  }

  Result<runtime::StepResult> step(const runtime::StepPlan& plan) override {
    plans.push_back(plan);
    if (fail_step) KILN_RETURN_IF_ERROR(fail_step(plan));
    if (on_step) on_step();
    KILN_RETURN_IF_ERROR(runtime::validate_step_plan(plan, kv_geometry(), o_.vocab_size));
    KILN_RETURN_IF_ERROR(check_shapes(plan));
    // An abandoned step leaves its new tokens' slots written with junk, as a real engine stopped
    // between layers leaves them partly written: a later step must write them again.
    const bool abandoned = plan.abandon && plan.abandon();
    // Write every new token into its slot first, as the real engine writes K/V before attention.
    for (int32_t i = 0; i < plan.num_seqs(); ++i) {
      const int32_t begin = plan.query_start[static_cast<size_t>(i)];
      const int32_t end = plan.query_start[static_cast<size_t>(i) + 1];
      const int32_t kv_len = plan.kv_len[static_cast<size_t>(i)];
      for (int32_t j = begin; j < end; ++j) {
        const int32_t pos = plan.positions[static_cast<size_t>(j)];
        if (pos != kv_len - (end - begin) + (j - begin)) return internal_error(str_cat("seq ", i, ": position ", pos, " out of order"));
        KILN_ASSIGN_OR_RETURN(size_t slot, slot_of(plan, i, pos));
        kv_tokens_[slot] = abandoned ? -1 - plan.token_ids[static_cast<size_t>(j)] : plan.token_ids[static_cast<size_t>(j)];
        kv_pos_[slot] = pos;
      }
    }
    runtime::StepResult result;
    result.vocab_size = o_.vocab_size;
    if (abandoned) {
      ++abandoned_steps;
      result.abandoned = true;
      return result;
    }
    KILN_RETURN_IF_ERROR(runtime::await_step_masks(plan));
    for (int32_t k = 0; k < plan.num_samples(); ++k) {
      const int32_t i = plan.sample_seqs[static_cast<size_t>(k)];
      const int32_t kv_len = plan.kv_len[static_cast<size_t>(i)];
      std::vector<int32_t> context;
      for (int32_t pos = 0; pos < kv_len; ++pos) {
        KILN_ASSIGN_OR_RETURN(size_t slot, slot_of(plan, i, pos));
        if (kv_pos_[slot] != pos) {
          return internal_error(str_cat("seq ", i, ": slot for position ", pos, " holds position ", kv_pos_[slot]));
        }
        context.push_back(kv_tokens_[slot]);
      }
      const runtime::SamplingParams& p = plan.sampling[static_cast<size_t>(k)];
      runtime::SampledToken st;
      st.token = next_token ? next_token(context, p) : default_next(context, p, o_.vocab_size, o_.eos_token_ids);
      // A token mask moves the token to the next allowed id (cyclically), as masking moves a
      // sampler to the best allowed token.
      if (plan.masks != nullptr && plan.masks->row_of_sample[static_cast<size_t>(k)] >= 0) {
        const uint32_t* w = plan.masks->words.data() + static_cast<size_t>(plan.masks->row_of_sample[static_cast<size_t>(k)]) *
                                                           static_cast<size_t>(plan.masks->words_per_row);
        int32_t pick = runtime::ops::kNoAllowedToken;
        for (int64_t d = 0; d < o_.vocab_size && pick < 0; ++d) {
          const auto t = static_cast<int32_t>((st.token + d) % o_.vocab_size);
          if ((w[t / 32] >> (t % 32)) & 1u) pick = t;
        }
        st.token = pick;
      }
      st.logprob = -0.01f * static_cast<float>(st.token % 100);
      for (int32_t t = 0; t < p.num_logprobs; ++t) st.top.push_back({(st.token + t) % static_cast<int32_t>(o_.vocab_size), st.logprob - static_cast<float>(t)});
      result.samples.push_back(std::move(st));
    }
    return result;
  }

  const model::ModelConfig& config() const override { return config_; }
  const runtime::MemoryPlan& memory_plan() const override { return plan_; }
  runtime::MemoryUsage memory_usage() const override { return {}; }
  std::string device_name() const override { return "fake"; }

 private:
  Result<size_t> slot_of(const runtime::StepPlan& plan, int32_t seq, int32_t pos) const {
    const int32_t b0 = plan.block_start[static_cast<size_t>(seq)];
    const int32_t b1 = plan.block_start[static_cast<size_t>(seq) + 1];
    const int32_t idx = pos / o_.block_size;
    if (idx >= b1 - b0) return internal_error(str_cat("seq ", seq, ": no block for position ", pos));
    const int32_t block = plan.block_ids[static_cast<size_t>(b0 + idx)];
    if (block < 0 || block >= o_.num_blocks) return internal_error(str_cat("seq ", seq, ": block ", block, " out of range"));
    return static_cast<size_t>(block) * static_cast<size_t>(o_.block_size) + static_cast<size_t>(pos % o_.block_size);
  }

  Status check_shapes(const runtime::StepPlan& p) const {
    const size_t n = static_cast<size_t>(p.num_seqs());
    if (p.query_start.size() != n + 1 || p.block_start.size() != n + 1) return internal_error("CSR sizes");
    if (p.positions.size() != p.token_ids.size()) return internal_error("positions size");
    if (p.query_start.front() != 0 || p.query_start.back() != p.num_tokens()) return internal_error("query_start ends");
    if (p.block_start.front() != 0 || p.block_start.back() != static_cast<int32_t>(p.block_ids.size())) return internal_error("block_start ends");
    for (size_t i = 0; i < n; ++i) {
      if (p.query_start[i + 1] <= p.query_start[i]) return internal_error(str_cat("seq ", i, " has no new tokens"));
    }
    if (p.sampling.size() != p.sample_seqs.size() || p.prompt_len.size() != p.sample_seqs.size() ||
        p.history_start.size() != p.sample_seqs.size() + 1) {
      return internal_error("sampling array sizes");
    }
    for (size_t k = 0; k < p.sample_seqs.size(); ++k) {
      if (p.sample_seqs[k] < 0 || p.sample_seqs[k] >= p.num_seqs() || (k > 0 && p.sample_seqs[k] <= p.sample_seqs[k - 1])) {
        return internal_error("sample_seqs not increasing in range");
      }
    }
    for (int32_t t : p.token_ids) {
      if (t < 0 || t >= o_.vocab_size) return internal_error(str_cat("token ", t, " outside the vocabulary"));
    }
    return Status::ok();
  }

  Options o_;
  runtime::MemoryPlan plan_;
  model::ModelConfig config_;
  std::vector<int32_t> kv_tokens_;  // [num_blocks * block_size]
  std::vector<int32_t> kv_pos_;
};

}  // namespace kiln::serve::testing
