// Tokenizing a prompt against the model's context, so that an over-long prompt costs no more than
// the context to refuse (docs/prompt-length-limit.md).
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "kiln/core/status.h"
#include "kiln/pool/model_pool.h"

namespace kiln::http {

// The prompt's ids, or kTooLong with OpenAI's context-length wording as soon as they are more than
// the model's context ("your messages" when `chat`, else "your prompt"); api_error_from_status
// answers it with 400 context_length_exceeded. A prompt of exactly the context passes, for
// run_generation's check, which can name the exact count.
Result<std::vector<int32_t>> tokenize_prompt(const pool::ModelLease& lease, std::string_view text,
                                             bool add_special_tokens, bool chat);

}  // namespace kiln::http
