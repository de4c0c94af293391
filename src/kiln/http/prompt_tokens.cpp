#include "kiln/http/prompt_tokens.h"

#include "kiln/core/str.h"

namespace kiln::http {

Result<std::vector<int32_t>> tokenize_prompt(const pool::ModelLease& lease, std::string_view text,
                                             bool add_special_tokens, bool chat) {
  const int64_t max_len = lease.max_model_len();
  auto ids = lease.tokenizer().encode(text, add_special_tokens, static_cast<size_t>(std::max<int64_t>(max_len, 0)));
  if (ids.is_ok() || ids.status().code() != StatusCode::kTooLong) return ids;
  return too_long(str_cat("This model's maximum context length is ", max_len, " tokens. However, your ",
                          chat ? "messages" : "prompt", " resulted in more than ", max_len,
                          " tokens. Please reduce the length of the ", chat ? "messages." : "prompt."));
}

}  // namespace kiln::http
