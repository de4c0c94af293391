// Incremental parsing of a model's generated text into content, reasoning and tool calls, one
// parser per model family (docs/tool-calling.md lists the formats). A parser is a state machine
// over the streamed text: each character is looked at once, text that may still turn into a
// marker ("<tool_" at the end of a delta) is held back until that is decided, and the events a
// text produces do not depend on how it was cut into deltas (after merging neighbouring text
// events of one kind).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/core/status.h"

namespace kiln::text {

class Tokenizer;

struct OutputEvent {
  enum class Kind { kContent, kReasoning, kToolCallBegin, kToolCallArguments, kToolCallEnd };
  Kind kind = Kind::kContent;
  // kContent/kReasoning: text. kToolCallArguments: a fragment of the arguments JSON text (the
  // fragments of one call add up to a JSON object). kToolCallEnd with `aborted`: the call's raw
  // text as the model wrote it.
  std::string text;
  int32_t index = 0;  // tool-call index within the turn (0,1,...) for the kToolCall* kinds
  std::string name;   // kToolCallBegin: the function name
  std::string id;     // kToolCallBegin: "call_" + 24 alphanumerics, or Mistral's 9 alphanumerics
  // kToolCallEnd only: the call broke off after its begin and some arguments were sent (its
  // arguments turned invalid, it outgrew the size limit, or the output ended inside it). The
  // arguments sent are then not a whole JSON object. A non-streaming response drops the call and
  // appends `text` to the content; a stream that already sent the call can only end it.
  bool aborted = false;
};

struct OutputParserOptions {
  std::string tool_parser;       // a name of tool_parser_names(); "" = none (content only)
  // "" = none, "think" (<think>..</think>), "mistral" ([THINK]..[/THINK]), "harmony"
  std::string reasoning_parser;
  bool tools_offered = false;    // no tools in the request: tool-call syntax stays text
  // The chat template itself opened <think> in the prompt (Qwen3 thinking, DeepSeek-R1 distills):
  // the output starts inside the reasoning. See prompt_opens_reasoning().
  bool reasoning_open_at_start = false;
  uint64_t seed = 0;  // for call ids; 0 draws a random seed
  // For formats whose parameter values are bare text (qwen3_coder, glm45): per tool name, the
  // JSON Schema type of each parameter ("string", "integer", ...). A "string" parameter stays a
  // JSON string even when its text reads as JSON ("42", "true"); others become JSON when they
  // parse as JSON. Tools and parameters not listed are guessed that way too.
  std::map<std::string, std::map<std::string, std::string>> parameter_types;
  // Bounds: one tool call's raw text (beyond it the call is given up and released as text), and
  // a run of whitespace held back in front of a possible call.
  size_t max_call_bytes = 256 * 1024;
  size_t max_held_whitespace = 4096;
};

class OutputParser {  // one per choice; push token by token
 public:
  static Result<std::unique_ptr<OutputParser>> create(const OutputParserOptions& options);
  virtual ~OutputParser() = default;

  // `token_id` is the sampled id, `text` its detokenized text WITH special tokens rendered as
  // their content (e.g. "<|python_tag|>", "[TOOL_CALLS]", "<tool_call>"). Events are appended to
  // `out`; consecutive text events of one kind are merged.
  virtual void push(int32_t token_id, std::string_view text, std::vector<OutputEvent>* out) = 0;
  // End of generation: flushes held-back text. A call the output left unfinished is released as
  // text (or, if it had begun, ended with `aborted`); malformed calls stay text.
  virtual void finish(std::vector<OutputEvent>* out) = 0;
  // Calls ended normally so far (aborted ones not counted).
  virtual int32_t num_tool_calls() const = 0;
  // Tokens that were inside reasoning (the markers that open and close it included).
  virtual int32_t reasoning_tokens() const = 0;
};

// Collects a choice's events into a whole message, for a non-streaming response: text joined,
// calls assembled in order, and an aborted call dropped with its raw text put back into the
// content where it stood (so the message is what the model wrote).
struct ParsedToolCall {
  std::string id;
  std::string name;
  std::string arguments;  // a JSON object's text
};
struct ParsedOutput {
  std::string content;
  std::string reasoning;
  std::vector<ParsedToolCall> tool_calls;
  void add(const std::vector<OutputEvent>& events);

 private:
  int32_t open_index_ = -1;  // the event index of the call being assembled
};

// The family a model speaks, from its chat template source and its tokenizer's added tokens;
// names usable in OutputParserOptions, "" where none fits.
struct DetectedFormats {
  std::string tool_parser;
  std::string reasoning_parser;
};
DetectedFormats detect_output_formats(std::string_view chat_template, const Tokenizer& tokenizer);
// Same, from the template and the list of the tokenizer's added tokens (for tests and tools that
// have no Tokenizer at hand).
DetectedFormats detect_output_formats(std::string_view chat_template,
                                      const std::vector<std::string>& added_tokens);

// For the --tool-parser flag's validation.
std::vector<std::string> tool_parser_names();
std::vector<std::string> reasoning_parser_names();

// True when a rendered prompt leaves a reasoning block open for the model to continue (its last
// "<think>" is not followed by "</think>"; "[THINK]" for "mistral"), which is what
// reasoning_open_at_start asks.
bool prompt_opens_reasoning(std::string_view rendered_prompt, std::string_view reasoning_parser);
// The marker that closes a reasoning block of this parser ("</think>"); empty when none.
std::string_view reasoning_close_marker(std::string_view reasoning_parser);

}  // namespace kiln::text
