#include "kiln/runtime/static_batch.h"

#include <algorithm>

#include "kiln/core/str.h"

namespace kiln::runtime {

StaticBatch::StaticBatch(Engine& engine, int32_t max_step_tokens) : engine_(engine), max_step_tokens_(max_step_tokens) {
  const int32_t n = engine.kv_geometry().num_blocks;
  for (int32_t b = n - 1; b >= 0; --b) free_blocks_.push_back(b);
}

int StaticBatch::add(std::vector<int32_t> prompt, SamplingParams params) {
  Seq s;
  s.prompt_len = static_cast<int32_t>(prompt.size());
  s.tokens = std::move(prompt);
  s.params = std::move(params);
  seqs_.push_back(std::move(s));
  return static_cast<int>(seqs_.size()) - 1;
}

bool StaticBatch::prefilling(int i) const {
  const Seq& s = seqs_[static_cast<size_t>(i)];
  return s.computed < s.prompt_len;
}

int32_t StaticBatch::generated(int i) const {
  const Seq& s = seqs_[static_cast<size_t>(i)];
  return static_cast<int32_t>(s.tokens.size()) - s.prompt_len;
}

Result<StaticBatch::Step> StaticBatch::step(int32_t chunk, bool return_all_logits) {
  const int32_t bs = engine_.kv_geometry().block_size;
  StepPlan plan;
  plan.return_all_logits = return_all_logits;
  plan.query_start = {0};
  plan.block_start = {0};
  Step out;
  int32_t budget = max_step_tokens_;
  bool any_history = false;
  for (const Seq& s : seqs_) any_history = any_history || s.params.needs_history();
  if (any_history) plan.history_start = {0};
  for (size_t i = 0; i < seqs_.size() && budget > 0; ++i) {
    Seq& s = seqs_[i];
    const int32_t left = static_cast<int32_t>(s.tokens.size()) - s.computed;
    if (left <= 0) continue;
    const int32_t n = std::min({left, chunk > 0 ? chunk : left, budget});
    const int32_t kv_len = s.computed + n;
    if (kv_len > engine_.max_model_len())
      return out_of_range(str_cat("sequence ", i, " would reach ", kv_len, " tokens, beyond max_model_len ",
                                  engine_.max_model_len()));
    while (static_cast<int32_t>(s.blocks.size()) * bs < kv_len) {
      if (free_blocks_.empty()) return resource_exhausted(str_cat("KV cache is full at sequence ", i));
      s.blocks.push_back(free_blocks_.back());
      free_blocks_.pop_back();
    }
    for (int32_t t = s.computed; t < kv_len; ++t) {
      plan.token_ids.push_back(s.tokens[static_cast<size_t>(t)]);
      plan.positions.push_back(t);
    }
    plan.query_start.push_back(plan.query_start.back() + n);
    plan.kv_len.push_back(kv_len);
    plan.block_ids.insert(plan.block_ids.end(), s.blocks.begin(), s.blocks.end());
    plan.block_start.push_back(static_cast<int32_t>(plan.block_ids.size()));
    if (kv_len == static_cast<int32_t>(s.tokens.size())) {
      plan.sample_seqs.push_back(plan.num_seqs() - 1);
      plan.sampling.push_back(s.params);
      out.sampled.push_back(static_cast<int>(i));
      if (any_history) {
        if (s.params.needs_history()) plan.history_tokens.insert(plan.history_tokens.end(), s.tokens.begin(), s.tokens.end());
        plan.history_start.push_back(static_cast<int32_t>(plan.history_tokens.size()));
        plan.prompt_len.push_back(s.params.needs_history() ? s.prompt_len : 0);
      }
    }
    out.seqs.push_back(static_cast<int>(i));
    out.n_tokens.push_back(n);
    budget -= n;
  }
  KILN_ASSIGN_OR_RETURN(out.result, engine_.step(plan));
  for (size_t k = 0; k < out.seqs.size(); ++k) seqs_[static_cast<size_t>(out.seqs[k])].computed += out.n_tokens[k];
  for (size_t j = 0; j < out.sampled.size(); ++j)
    seqs_[static_cast<size_t>(out.sampled[j])].tokens.push_back(out.result.samples[j].token);
  return out;
}

}  // namespace kiln::runtime
