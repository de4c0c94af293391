#include "kiln/runtime/step.h"

#include <unordered_set>

#include "kiln/core/str.h"
#include "kiln/runtime/ops/sample.h"

namespace kiln::runtime {
namespace {

Status bad(const std::string& message) { return invalid_argument("step plan: " + message); }

}  // namespace

Status validate_step_plan(const StepPlan& plan, const KvGeometry& kv, int64_t vocab_size) {
  if (kv.block_size <= 0 || kv.num_blocks <= 0)
    return bad(str_cat("KV geometry has ", kv.num_blocks, " blocks of ", kv.block_size, " tokens"));
  const int32_t n = plan.num_tokens(), s = plan.num_seqs(), m = plan.num_samples();
  if (plan.positions.size() != plan.token_ids.size())
    return bad(str_cat(plan.positions.size(), " positions for ", n, " tokens"));
  if (plan.query_start.size() != static_cast<size_t>(s) + 1)
    return bad(str_cat("query_start has ", plan.query_start.size(), " entries for ", s, " sequences (want ", s + 1, ")"));
  if (plan.block_start.size() != static_cast<size_t>(s) + 1)
    return bad(str_cat("block_start has ", plan.block_start.size(), " entries for ", s, " sequences (want ", s + 1, ")"));
  if (plan.query_start[0] != 0) return bad(str_cat("query_start[0] is ", plan.query_start[0], ", not 0"));
  if (plan.query_start[static_cast<size_t>(s)] != n)
    return bad(str_cat("query_start ends at ", plan.query_start[static_cast<size_t>(s)], ", not at num_tokens ", n));
  if (plan.block_start[0] < 0) return bad(str_cat("block_start[0] is ", plan.block_start[0]));
  if (plan.block_start[static_cast<size_t>(s)] > static_cast<int64_t>(plan.block_ids.size()))
    return bad(str_cat("block_start ends at ", plan.block_start[static_cast<size_t>(s)], " past the ",
                       plan.block_ids.size(), " block ids"));
  for (int32_t i = 0; i < n; ++i) {
    const int32_t t = plan.token_ids[static_cast<size_t>(i)];
    if (t < 0 || t >= vocab_size) return bad(str_cat("token id ", t, " at index ", i, " is outside the vocabulary of ", vocab_size));
  }
  std::unordered_set<int64_t> slots;
  for (int32_t i = 0; i < s; ++i) {
    const auto u = static_cast<size_t>(i);
    const int32_t q0 = plan.query_start[u], q1 = plan.query_start[u + 1];
    if (q1 <= q0) return bad(str_cat("sequence ", i, " has no new tokens (query_start ", q0, " -> ", q1, ")"));
    const int32_t kv_len = plan.kv_len[u];
    if (kv_len < q1 - q0) return bad(str_cat("sequence ", i, " has kv_len ", kv_len, " < its ", q1 - q0, " new tokens"));
    const int32_t b0 = plan.block_start[u], b1 = plan.block_start[u + 1];
    if (b1 < b0) return bad(str_cat("block_start decreases at sequence ", i));
    if (static_cast<int64_t>(b1 - b0) * kv.block_size < kv_len)
      return bad(str_cat("sequence ", i, " has ", b1 - b0, " blocks of ", kv.block_size, " for kv_len ", kv_len));
    for (int32_t b = b0; b < b1; ++b) {
      const int32_t id = plan.block_ids[static_cast<size_t>(b)];
      if (id < 0 || id >= kv.num_blocks)
        return bad(str_cat("sequence ", i, " names block ", id, " outside [0, ", kv.num_blocks, ")"));
    }
    for (int32_t t = q0; t < q1; ++t) {
      const int32_t expected = kv_len - (q1 - q0) + (t - q0);
      const int32_t pos = plan.positions[static_cast<size_t>(t)];
      if (pos != expected)
        return bad(str_cat("token ", t, " of sequence ", i, " has position ", pos, ", expected ", expected,
                           " (new tokens take positions kv_len - n .. kv_len - 1)"));
      const int64_t slot = static_cast<int64_t>(plan.block_ids[static_cast<size_t>(b0 + pos / kv.block_size)]) *
                               kv.block_size + pos % kv.block_size;
      if (!slots.insert(slot).second)
        return bad(str_cat("token ", t, " of sequence ", i, " writes KV slot ", slot, " that another token of this step writes"));
    }
  }
  if (plan.sampling.size() != static_cast<size_t>(m))
    return bad(str_cat(plan.sampling.size(), " sampling params for ", m, " sampled sequences"));
  bool needs_history = false;
  for (int32_t j = 0; j < m; ++j) {
    const auto u = static_cast<size_t>(j);
    const int32_t seq = plan.sample_seqs[u];
    if (seq < 0 || seq >= s) return bad(str_cat("sample_seqs[", j, "] = ", seq, " is outside [0, ", s, ")"));
    if (j > 0 && seq <= plan.sample_seqs[u - 1]) return bad("sample_seqs must be strictly increasing");
    KILN_RETURN_IF_ERROR(ops::check_sampling_params(plan.sampling[u], vocab_size, str_cat("step plan: sampling[", j, "]")));
    needs_history = needs_history || plan.sampling[u].needs_history();
  }
  if (plan.output_kinds.size() != plan.output_seqs.size())
    return bad(str_cat(plan.output_kinds.size(), " output kinds for ", plan.output_seqs.size(), " output sequences"));
  for (size_t j = 0, k = 0; j < plan.output_seqs.size(); ++j) {
    const int32_t seq = plan.output_seqs[j];
    if (seq < 0 || seq >= s) return bad(str_cat("output_seqs[", j, "] = ", seq, " is outside [0, ", s, ")"));
    if (j > 0 && seq <= plan.output_seqs[j - 1]) return bad("output_seqs must be strictly increasing");
    if (plan.query_start[static_cast<size_t>(seq) + 1] == plan.query_start[static_cast<size_t>(seq)])
      return bad(str_cat("output sequence ", seq, " has no new tokens"));
    while (k < plan.sample_seqs.size() && plan.sample_seqs[k] < seq) ++k;
    if (k < plan.sample_seqs.size() && plan.sample_seqs[k] == seq)
      return bad(str_cat("sequence ", seq, " both samples and returns an output"));
  }
  if (!plan.history_start.empty() || needs_history) {
    if (plan.history_start.size() != static_cast<size_t>(m) + 1)
      return bad(str_cat("history_start has ", plan.history_start.size(), " entries for ", m, " samples (want ", m + 1, ")"));
    if (plan.prompt_len.size() != static_cast<size_t>(m))
      return bad(str_cat("prompt_len has ", plan.prompt_len.size(), " entries for ", m, " samples"));
    if (plan.history_start[0] != 0) return bad("history_start[0] is not 0");
    if (plan.history_start[static_cast<size_t>(m)] != static_cast<int64_t>(plan.history_tokens.size()))
      return bad(str_cat("history_start ends at ", plan.history_start[static_cast<size_t>(m)], ", not at the ",
                         plan.history_tokens.size(), " history tokens"));
    for (int32_t j = 0; j < m; ++j) {
      const auto u = static_cast<size_t>(j);
      const int32_t len = plan.history_start[u + 1] - plan.history_start[u];
      if (len < 0) return bad(str_cat("history_start decreases at sample ", j));
      if (plan.prompt_len[u] < 0 || plan.prompt_len[u] > len)
        return bad(str_cat("prompt_len[", j, "] = ", plan.prompt_len[u], " is outside its history of ", len, " tokens"));
    }
    for (size_t i = 0; i < plan.history_tokens.size(); ++i) {
      const int32_t t = plan.history_tokens[i];
      if (t < 0 || t >= vocab_size) return bad(str_cat("history token ", t, " is outside the vocabulary of ", vocab_size));
    }
  }
  if (plan.masks != nullptr) {
    const TokenMasks& mk = *plan.masks;
    const int64_t want = (vocab_size + 31) / 32;
    if (mk.words_per_row != want)
      return bad(str_cat("token masks have ", mk.words_per_row, " words per row for a vocabulary of ", vocab_size,
                         " (want ", want, ")"));
    if (mk.row_of_sample.size() != static_cast<size_t>(m))
      return bad(str_cat("token masks name ", mk.row_of_sample.size(), " samples for ", m));
    const int64_t rows = static_cast<int64_t>(mk.words.size()) / want;
    if (rows * want != static_cast<int64_t>(mk.words.size()))
      return bad(str_cat("token masks hold ", mk.words.size(), " words, not whole rows of ", want));
    for (int32_t j = 0; j < m; ++j) {
      const int32_t r = mk.row_of_sample[static_cast<size_t>(j)];
      if (r < -1 || r >= rows) return bad(str_cat("sample ", j, " names token mask row ", r, " of ", rows));
    }
  }
  return Status::ok();
}

}  // namespace kiln::runtime
