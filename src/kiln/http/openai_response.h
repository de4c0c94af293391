// Rendering of OpenAI responses and stream chunks from plain values.
//
// Chat and completions differ in their logprobs: chat gives {"content": [{token, logprob, bytes,
// top_logprobs: [...]}]}, completions give parallel arrays {tokens, token_logprobs, top_logprobs
// (one {token: logprob} object per position), text_offset}.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "kiln/pool/model_pool.h"

namespace kiln::http {

struct TokenAlt {
  std::string token;  // the token's text
  float logprob = 0.0f;
};

struct LogprobEntry {
  std::string token;
  float logprob = 0.0f;
  std::vector<TokenAlt> top;  // most likely first
};

struct Usage {
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  int64_t cached_tokens = 0;
};

struct ResponseMeta {
  std::string id;     // chatcmpl-... / cmpl-...
  int64_t created = 0;
  std::string model;
  std::string system_fingerprint;
};

struct ChoiceOutput {
  int index = 0;
  std::string text;
  std::string finish_reason;          // "stop" / "length"
  bool with_logprobs = false;
  std::vector<LogprobEntry> logprobs;
  int64_t text_offset = 0;            // completions: where `text` starts in the returned text (echo)
};

std::string render_chat_completion(const ResponseMeta& meta, const std::vector<ChoiceOutput>& choices,
                                   const Usage& usage);
// One chunk for one choice. `role` adds "role":"assistant"; `content` absent gives an empty delta.
struct ChatDelta {
  int index = 0;
  bool role = false;
  std::optional<std::string> content;
  bool with_logprobs = false;
  std::vector<LogprobEntry> logprobs;
  std::string finish_reason;  // empty: null
};
std::string render_chat_chunk(const ResponseMeta& meta, const ChatDelta& delta, bool usage_null);
// The last chunk with stream_options.include_usage: no choices, the usage.
std::string render_chat_usage_chunk(const ResponseMeta& meta, const Usage& usage);

std::string render_completion(const ResponseMeta& meta, const std::vector<ChoiceOutput>& choices, const Usage& usage);
// `choice.text` is the delta; `choice.text_offset` is where it starts within the choice's text.
std::string render_completion_chunk(const ResponseMeta& meta, const ChoiceOutput& choice, bool usage_null);
std::string render_completion_usage_chunk(const ResponseMeta& meta, const Usage& usage);

std::string render_model(const pool::ModelInfo& m);
std::string render_model_list(const std::vector<pool::ModelInfo>& models);

// "chatcmpl-" / "cmpl-" followed by 24 random alphanumerics.
std::string make_completion_id(const char* prefix);

}  // namespace kiln::http
