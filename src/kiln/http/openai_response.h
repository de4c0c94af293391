// Rendering of answers and stream events from plain values.
//
// Chat and completions differ in their logprobs: chat gives {"content": [{token, logprob, bytes,
// top_logprobs: [...]}]}, completions give parallel arrays {tokens, token_logprobs, top_logprobs
// (one {token: logprob} object per position), text_offset}.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/http/errors.h"
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
  int64_t reasoning_tokens = 0;  // chat: completion tokens inside reasoning
};

// A tool call of a chat answer.
struct ToolCallOut {
  std::string id;         // call_...
  std::string name;
  std::string arguments;  // JSON text
};

// A streamed piece of a tool call: the first one of a call opens it (id, type, name, arguments
// ""), the following ones carry argument text.
struct ToolCallDelta {
  int index = 0;
  bool opens = false;
  std::string id, name;
  std::string arguments;
};

struct ResponseMeta {
  std::string id;     // chatcmpl-... / cmpl-...
  int64_t created = 0;
  std::string model;
  std::string system_fingerprint;
  int64_t prompt_tokens = 0;  // known before the first token: streams that open with usage need it
  std::optional<bool> store_bodies = std::nullopt;  // the model's store_bodies setting (kiln.toml), when it has one
};

struct ChoiceOutput {
  int index = 0;
  std::string text;
  std::string finish_reason;          // "stop" / "length"
  bool with_logprobs = false;
  std::vector<LogprobEntry> logprobs;
  int64_t text_offset = 0;            // completions: where `text` starts in the returned text (echo)
  // Chat with an output parser: reasoning split out of the text, and tool calls. `text` empty
  // with calls or reasoning is rendered as content null.
  std::string reasoning;
  std::vector<ToolCallOut> tool_calls;
  std::string stop_sequence;  // the stop string that ended the answer, if one did
};

// One streamed chunk of one choice: new text with its logprobs, or (no text) the choice's end.
struct ChoiceDelta {
  int index = 0;
  std::optional<std::string> text;    // absent: the closing chunk, which carries finish_reason
  bool with_logprobs = false;
  std::vector<LogprobEntry> logprobs;
  int64_t text_offset = 0;            // completions: where `text` starts within the choice's text
  std::string finish_reason;          // empty: null
  std::optional<std::string> reasoning;  // chat: delta.reasoning_content
  std::vector<ToolCallDelta> tool_calls; // chat: delta.tool_calls
  std::string stop_sequence;             // the closing delta: the stop string that ended it
};

// One streamed answer's events in an API's own sequence, as SSE bytes (possibly none). One per
// streamed request, so that APIs whose events number themselves, or close every block they open,
// keep that state here. Called in this order: open() per choice, delta() for each piece and once
// more per choice with its finish_reason, then end() once every choice has closed -- or error()
// instead of end() when the generation fails.
class StreamWriter {
 public:
  virtual ~StreamWriter() = default;
  virtual std::string open(int index, const std::string* echo) = 0;
  virtual std::string delta(const ChoiceDelta& delta) = 0;
  virtual std::string end(const Usage& usage) = 0;
  virtual std::string error(const ApiError& error) = 0;
};

// What differs between the APIs that one generation path (generation.cpp) answers: chat and text
// completions, OpenAI's Responses API and Anthropic's Messages API. Each renders the whole answer,
// its stream (through a StreamWriter), and its context-length error, and names what the request
// calls its prompt and its logprobs.
class ResponseRenderer {
 public:
  virtual ~ResponseRenderer() = default;

  virtual std::string_view prompt_param() const = 0;    // "messages" / "prompt" / "input"
  virtual std::string_view logprobs_param() const = 0;  // "top_logprobs" / "logprobs"

  // The whole answer when not streaming.
  virtual std::string response(const ResponseMeta& meta, const std::vector<ChoiceOutput>& choices,
                               const Usage& usage) const = 0;
  virtual std::unique_ptr<StreamWriter> stream_writer(const ResponseMeta& meta, bool include_usage) const = 0;
  // OpenAI's context-length error, in this endpoint's words. `max_tokens` absent: the prompt
  // alone does not fit.
  virtual ApiError context_length_error(int64_t max_len, int64_t prompt_tokens,
                                        std::optional<int64_t> max_tokens) const = 0;
};

// A chat completion (chat.completion / chat.completion.chunk) or a text completion
// (text_completion): streams of self-contained chunks ending with [DONE]. They differ in the shapes
// of a choice, a delta and logprobs, and in how a stream opens. Usage goes last in a response; in
// a stream with include_usage every chunk carries "usage": null and a last chunk without choices
// holds it.
class ChunkRenderer : public ResponseRenderer {
 public:
  // The chunk that opens choice `index`'s stream, if any: chat announces the assistant's role;
  // completions send the prompt's text when echo asks for it (`echo`: null without echo).
  virtual std::optional<std::string> opening_chunk(const ResponseMeta& meta, int index, const std::string* echo,
                                                   bool usage_null) const = 0;
  virtual std::string chunk(const ResponseMeta& meta, const ChoiceDelta& delta, bool usage_null) const = 0;
  // The last chunk with stream_options.include_usage: no choices, the usage.
  virtual std::string usage_chunk(const ResponseMeta& meta, const Usage& usage) const = 0;

  std::unique_ptr<StreamWriter> stream_writer(const ResponseMeta& meta, bool include_usage) const override;
};

const ChunkRenderer& chat_renderer();
const ChunkRenderer& completion_renderer();

std::string render_model(const pool::ModelInfo& m);
std::string render_model_list(const std::vector<pool::ModelInfo>& models);

// "chatcmpl-" / "cmpl-" followed by 24 random alphanumerics.
std::string make_completion_id(const char* prefix);

}  // namespace kiln::http
