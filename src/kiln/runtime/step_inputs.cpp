#include "kiln/runtime/step_inputs.h"

#include <algorithm>

#include "kiln/core/str.h"

namespace kiln::runtime {

Result<StepExtent> check_step_limits(const StepPlan& plan, const EngineLimits& limits) {
  if (plan.num_tokens() > limits.max_batched_tokens)
    return invalid_argument(
        str_cat("step plan: ", plan.num_tokens(), " tokens exceed max_batched_tokens ", limits.max_batched_tokens));
  if (plan.num_seqs() > limits.max_seqs)
    return invalid_argument(str_cat("step plan: ", plan.num_seqs(), " sequences exceed max_seqs ", limits.max_seqs));
  StepExtent e;
  for (int32_t i = 0; i < plan.num_seqs(); ++i) {
    const int32_t kv_len = plan.kv_len[static_cast<size_t>(i)];
    if (kv_len > limits.max_model_len)
      return invalid_argument(
          str_cat("step plan: sequence ", i, " has kv_len ", kv_len, " beyond max_model_len ", limits.max_model_len));
    e.max_query_len = std::max(e.max_query_len, plan.query_start[static_cast<size_t>(i) + 1] -
                                                    plan.query_start[static_cast<size_t>(i)]);
    e.max_kv_len = std::max(e.max_kv_len, kv_len);
  }
  return e;
}

void step_slots(const StepPlan& plan, int32_t block_size, int32_t* slots) {
  for (int32_t i = 0; i < plan.num_seqs(); ++i) {
    const int32_t b0 = plan.block_start[static_cast<size_t>(i)];
    for (int32_t t = plan.query_start[static_cast<size_t>(i)]; t < plan.query_start[static_cast<size_t>(i) + 1]; ++t) {
      const int32_t pos = plan.positions[static_cast<size_t>(t)];
      slots[t] = plan.block_ids[static_cast<size_t>(b0 + pos / block_size)] * block_size + pos % block_size;
    }
  }
}

Status await_step_masks(const StepPlan& plan) {
  if (plan.masks == nullptr || !plan.masks->wait) return Status::ok();
  return plan.masks->wait();
}

ops::SamplingBatch step_sampling_batch(const StepPlan& plan, std::vector<int32_t>* positions) {
  positions->resize(static_cast<size_t>(plan.num_samples()));
  for (int32_t j = 0; j < plan.num_samples(); ++j)
    (*positions)[static_cast<size_t>(j)] = plan.kv_len[static_cast<size_t>(plan.sample_seqs[static_cast<size_t>(j)])];
  ops::SamplingBatch batch;
  batch.params = plan.sampling;
  batch.positions = *positions;
  batch.history_start = plan.history_start;
  batch.history_tokens = plan.history_tokens;
  batch.prompt_len = plan.prompt_len;
  if (plan.masks != nullptr) {
    batch.mask_row = plan.masks->row_of_sample;
    batch.mask_words = plan.masks->words;
    batch.mask_words_per_row = plan.masks->words_per_row;
  }
  return batch;
}

OutputRows step_output_rows(const StepPlan& plan) {
  OutputRows r;
  for (int32_t j = 0; j < plan.num_outputs(); ++j) {
    const auto seq = static_cast<size_t>(plan.output_seqs[static_cast<size_t>(j)]);
    const int32_t first = plan.query_start[seq], last = plan.query_start[seq + 1] - 1;
    switch (plan.output_kinds[static_cast<size_t>(j)]) {
      case StepOutputKind::kLastLogits: r.logit_rows.push_back(last); break;
      case StepOutputKind::kLastHidden: r.hidden_rows.push_back(last); break;
      case StepOutputKind::kSumHidden:
        for (int32_t t = first; t <= last; ++t) r.hidden_rows.push_back(t);
        break;
    }
  }
  return r;
}

std::vector<std::vector<float>> step_outputs(const StepPlan& plan, const float* logits, int64_t vocab,
                                             const float* hidden, int64_t hidden_size) {
  std::vector<std::vector<float>> out(static_cast<size_t>(plan.num_outputs()));
  int64_t logit_row = 0, hidden_row = 0;
  for (int32_t j = 0; j < plan.num_outputs(); ++j) {
    const auto seq = static_cast<size_t>(plan.output_seqs[static_cast<size_t>(j)]);
    std::vector<float>& o = out[static_cast<size_t>(j)];
    switch (plan.output_kinds[static_cast<size_t>(j)]) {
      case StepOutputKind::kLastLogits:
        o.assign(logits + logit_row * vocab, logits + (logit_row + 1) * vocab);
        ++logit_row;
        break;
      case StepOutputKind::kLastHidden:
        o.assign(hidden + hidden_row * hidden_size, hidden + (hidden_row + 1) * hidden_size);
        ++hidden_row;
        break;
      case StepOutputKind::kSumHidden: {
        // Summed in double, so a long prompt's mean does not depend on how it was chunked
        // beyond the last f32 rounding of each chunk.
        std::vector<double> sum(static_cast<size_t>(hidden_size), 0.0);
        for (int32_t t = plan.query_start[seq]; t < plan.query_start[seq + 1]; ++t, ++hidden_row)
          for (int64_t d = 0; d < hidden_size; ++d) sum[static_cast<size_t>(d)] += hidden[hidden_row * hidden_size + d];
        o.assign(sum.begin(), sum.end());
        break;
      }
    }
  }
  return out;
}

}  // namespace kiln::runtime
