// The output parser's events of one chat choice (text/output_parser.h), gathered two ways: the
// whole answer (content, reasoning, tool calls) for a response, and the pieces not yet sent as
// OpenAI stream deltas, in the order they came.
#pragma once

#include <string>
#include <vector>

#include "kiln/http/openai_response.h"
#include "kiln/text/output_parser.h"

namespace kiln::http {

class ChoiceEvents {
 public:
  // Adds events (calls past the first `max_calls` are dropped); returns how many calls ended.
  int add(std::vector<text::OutputEvent>& events, bool streaming, size_t max_calls);
  // The pieces gathered since the last call, as deltas for choice `index`: consecutive pieces of
  // one kind (content, reasoning, one call's arguments) merged into one delta.
  std::vector<ChoiceDelta> take_deltas(int index);
  bool has_pending() const { return !pending_.empty(); }

  const std::string& content() const { return content_; }
  std::string& content() { return content_; }
  const std::string& reasoning() const { return reasoning_; }
  std::vector<ToolCallOut>& calls() { return calls_; }
  int ended_calls() const { return ended_; }

 private:
  struct Piece {
    enum class Kind { kContent, kReasoning, kCallOpen, kCallArguments } kind;
    std::string text;
    int index = 0;
  };
  std::vector<Piece> pending_;
  std::string content_, reasoning_;
  std::vector<ToolCallOut> calls_;
  std::vector<int> call_of_index_;  // parser index -> position in calls_
  int ended_ = 0;
};

// "call_" followed by 24 random alphanumerics, for a call the parser gave no id.
std::string make_tool_call_id();

}  // namespace kiln::http
