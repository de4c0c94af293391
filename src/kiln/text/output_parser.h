// Incremental parsers of a model's output per family: tool calls and reasoning split out of the
// token stream as events (content, reasoning, call begin / arguments / end).
//
// INTERIM COPY: this header is the interface the per-family parsers implement; the real
// implementation replaces output_parser_interim.cpp (which handles only `hermes` and `think`,
// enough for the HTTP layer's tests) when both land on main.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/core/status.h"
#include "kiln/text/tokenizer.h"

namespace kiln::text {

struct OutputEvent {
  enum class Kind { kContent, kReasoning, kToolCallBegin, kToolCallArguments, kToolCallEnd };
  Kind kind;
  std::string text;
  int32_t index = 0;
  std::string name;
  std::string id;
};

struct OutputParserOptions {
  std::string tool_parser;
  std::string reasoning_parser;
  bool tools_offered = false;
  bool reasoning_open_at_start = false;
  uint64_t seed = 0;
};

class OutputParser {
 public:
  static Result<std::unique_ptr<OutputParser>> create(const OutputParserOptions&);
  ~OutputParser();
  // text: detokenized delta WITH special tokens rendered
  void push(int32_t token_id, std::string_view text, std::vector<OutputEvent>* out);
  void finish(std::vector<OutputEvent>* out);
  int32_t num_tool_calls() const;
  int32_t reasoning_tokens() const;

  struct Impl;

 private:
  explicit OutputParser(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

struct DetectedFormats {
  std::string tool_parser;
  std::string reasoning_parser;
};
DetectedFormats detect_output_formats(std::string_view chat_template, const Tokenizer& tokenizer);
std::vector<std::string> tool_parser_names();

}  // namespace kiln::text
