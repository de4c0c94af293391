// The output parser's events of one chat choice (text/output_parser.h), gathered two ways: the
// whole answer (text::ParsedOutput: content, reasoning, tool calls) for a response and for the
// finish reason, and the pieces not yet sent as OpenAI stream deltas, in the order they came.
#pragma once

#include <string>
#include <vector>

#include "kiln/http/openai_response.h"
#include "kiln/text/output_parser.h"

namespace kiln::http {

class ChoiceEvents {
 public:
  // Adds events; calls past the first `max_calls` are dropped (parallel_tool_calls: false).
  void add(std::vector<text::OutputEvent>& events, bool streaming, size_t max_calls);
  // The pieces gathered since the last call, as deltas for choice `index`: consecutive pieces of
  // one kind (content, reasoning, one call's arguments) merged into one delta.
  std::vector<ChoiceDelta> take_deltas(int index);

  text::ParsedOutput& parsed() { return parsed_; }
  // Calls that ended normally (not broken off).
  int ended_calls() const { return ended_; }

 private:
  struct Piece {
    enum class Kind { kContent, kReasoning, kCallOpen, kCallArguments } kind;
    std::string text;
    int index = 0;  // the call's index
    std::string id, name;
  };
  std::vector<Piece> pending_;
  text::ParsedOutput parsed_;
  std::vector<bool> dropped_;  // per call index: beyond max_calls
  size_t accepted_ = 0;
  int ended_ = 0;
};

}  // namespace kiln::http
