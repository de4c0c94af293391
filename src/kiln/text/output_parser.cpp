// The output parser: <think> (or [THINK]) reasoning split off first, then the content handed to the tool-call
// family (or, for gpt-oss, the harmony channel parser doing both).
#include "kiln/text/output_parser.h"

#include <algorithm>

#include "kiln/text/output_parser_internal.h"

namespace kiln::text {
namespace {

using output::Emitter;
using output::is_ws;

struct ReasoningMarkers {
  std::string_view name, open, close;
};
// The block-style reasoning formats: Qwen3/DeepSeek-R1/GLM's <think>, Magistral/Ministral's [THINK].
constexpr ReasoningMarkers kReasoningMarkers[] = {
    {"think", "<think>", "</think>"},
    {"mistral", "[THINK]", "[/THINK]"},
};

const ReasoningMarkers* reasoning_markers(std::string_view name) {
  for (const ReasoningMarkers& m : kReasoningMarkers) {
    if (m.name == name) return &m;
  }
  return nullptr;
}

struct Family {
  std::string_view name;
  std::unique_ptr<output::ToolFamily> (*make)(Emitter*, const OutputParserOptions&);
};

constexpr Family kFamilies[] = {
    {"hermes", output::make_hermes},           {"qwen3_coder", output::make_qwen3_coder},
    {"glm45", output::make_glm45},             {"llama3", output::make_llama3},
    {"mistral", output::make_mistral},         {"deepseek_v3", output::make_deepseek_v3},
    {"pythonic", output::make_pythonic},
};

class ParserImpl final : public OutputParser {
 public:
  ParserImpl(const OutputParserOptions& o, bool harmony)
      : options_(o), em_(o.seed, o.tool_parser == "mistral") {
    if (harmony) {
      harmony_ = output::make_harmony(&em_, o);
      return;
    }
    if (o.tools_offered) {
      for (const Family& f : kFamilies) {
        if (f.name == o.tool_parser) family_ = f.make(&em_, o);
      }
    }
    const ReasoningMarkers* markers = reasoning_markers(o.reasoning_parser);
    think_ = markers != nullptr;
    if (think_) {
      open_ = markers->open;
      close_ = markers->close;
    }
    state_ = !think_ ? State::kContent : o.reasoning_open_at_start ? State::kReasoning : State::kStart;
    lead_ws_ = true;
  }

  void push(int32_t /*token_id*/, std::string_view text, std::vector<OutputEvent>* out) override {
    if (finished_) return;  // the choice is over: nothing more can belong to it
    em_.set_out(out);
    if (harmony_) {
      const bool before = harmony_->in_reasoning();
      harmony_->feed(text);
      if (before || harmony_->in_reasoning()) ++reasoning_tokens_;
      return;
    }
    const bool before = state_ == State::kReasoning;
    for (char c : text) step(c);
    if (before || state_ == State::kReasoning) ++reasoning_tokens_;
  }

  void finish(std::vector<OutputEvent>* out) override {
    em_.set_out(out);
    if (finished_) return;
    finished_ = true;
    if (harmony_) {
      harmony_->finish();
      return;
    }
    switch (state_) {
      case State::kStart:
        to_content(held_ws_);
        to_content(pending_);
        break;
      case State::kReasoning:
        // A reasoning block the output never closed stays reasoning; trailing whitespace is dropped.
        if (!pending_.empty()) {
          em_.reasoning(held_ws_);
          em_.reasoning(pending_);
        }
        break;
      case State::kContent: break;
    }
    held_ws_.clear();
    pending_.clear();
    if (family_) family_->finish();
  }

  int32_t num_tool_calls() const override { return em_.num_calls(); }
  int32_t reasoning_tokens() const override { return reasoning_tokens_; }

 private:
  enum class State { kStart, kReasoning, kContent };

  void to_content(std::string_view s) {
    if (s.empty()) return;
    if (family_) family_->feed(s);
    else em_.content(s);
  }

  void step(char c) {
    switch (state_) {
      case State::kStart: {
        if (pending_.empty() && is_ws(c) && held_ws_.size() < options_.max_held_whitespace) {
          held_ws_.push_back(c);
          return;
        }
        pending_.push_back(c);
        if (pending_ == open_) {
          pending_.clear();
          held_ws_.clear();
          state_ = State::kReasoning;
          lead_ws_ = true;
        } else if (!open_.starts_with(pending_)) {
          state_ = State::kContent;
          to_content(held_ws_);
          to_content(pending_);
          held_ws_.clear();
          pending_.clear();
        }
        return;
      }
      case State::kReasoning: {
        if (pending_.empty() && is_ws(c)) {
          // Leading whitespace of the reasoning is dropped; trailing whitespace is held until more
          // reasoning follows (then it is kept) or the block closes (then it is dropped).
          if (lead_ws_) return;
          held_ws_.push_back(c);
          if (held_ws_.size() > options_.max_held_whitespace) {
            em_.reasoning(held_ws_);
            held_ws_.clear();
          }
          return;
        }
        lead_ws_ = false;
        pending_.push_back(c);
        while (!pending_.empty()) {
          if (pending_ == close_) {
            pending_.clear();
            held_ws_.clear();
            state_ = State::kContent;
            lead_ws_ = true;
            return;
          }
          if (close_.starts_with(pending_)) return;
          em_.reasoning(held_ws_);
          held_ws_.clear();
          em_.reasoning(std::string_view(pending_).substr(0, 1));
          pending_.erase(0, 1);
        }
        return;
      }
      case State::kContent:
        // Content right after a reasoning block starts at its first non-whitespace character.
        if (lead_ws_ && think_ && is_ws(c)) return;
        lead_ws_ = false;
        to_content(std::string_view(&c, 1));
        return;
    }
  }

  OutputParserOptions options_;
  Emitter em_;
  std::unique_ptr<output::ToolFamily> family_;
  std::unique_ptr<output::HarmonyParser> harmony_;
  bool think_ = false;
  std::string_view open_, close_;
  State state_ = State::kContent;
  bool lead_ws_ = true;
  bool finished_ = false;
  std::string pending_;
  std::string held_ws_;
  int32_t reasoning_tokens_ = 0;
};

}  // namespace

void ParsedOutput::add(const std::vector<OutputEvent>& events) {
  for (const OutputEvent& e : events) {
    switch (e.kind) {
      case OutputEvent::Kind::kContent: content += e.text; break;
      case OutputEvent::Kind::kReasoning: reasoning += e.text; break;
      case OutputEvent::Kind::kToolCallBegin:
        tool_calls.push_back({e.id, e.name, ""});
        open_index_ = e.index;
        break;
      case OutputEvent::Kind::kToolCallArguments:
        if (e.index == open_index_ && !tool_calls.empty()) tool_calls.back().arguments += e.text;
        break;
      case OutputEvent::Kind::kToolCallEnd:
        if (e.aborted && e.index == open_index_ && !tool_calls.empty()) {
          tool_calls.pop_back();
          content += e.text;
        }
        open_index_ = -1;
        break;
    }
  }
}

std::vector<std::string> tool_parser_names() {
  std::vector<std::string> names;
  for (const Family& f : kFamilies) names.emplace_back(f.name);
  names.emplace_back("harmony");
  return names;
}

std::vector<std::string> reasoning_parser_names() {
  std::vector<std::string> names;
  for (const ReasoningMarkers& m : kReasoningMarkers) names.emplace_back(m.name);
  names.emplace_back("harmony");
  return names;
}

Result<std::unique_ptr<OutputParser>> OutputParser::create(const OutputParserOptions& o) {
  const auto tools = tool_parser_names();
  if (!o.tool_parser.empty() && std::find(tools.begin(), tools.end(), o.tool_parser) == tools.end()) {
    return invalid_argument("unknown tool parser \"" + o.tool_parser + "\"").with_param("tool_parser");
  }
  const auto reasoning = reasoning_parser_names();
  if (!o.reasoning_parser.empty() &&
      std::find(reasoning.begin(), reasoning.end(), o.reasoning_parser) == reasoning.end()) {
    return invalid_argument("unknown reasoning parser \"" + o.reasoning_parser + "\"")
        .with_param("reasoning_parser");
  }
  const bool harmony_tools = o.tool_parser == "harmony";
  const bool harmony_reasoning = o.reasoning_parser == "harmony";
  if ((harmony_reasoning && !o.tool_parser.empty() && !harmony_tools) ||
      (harmony_tools && !o.reasoning_parser.empty() && !harmony_reasoning)) {
    return invalid_argument("the harmony format parses both tool calls and reasoning: tool parser \"" +
                            o.tool_parser + "\" cannot go with reasoning parser \"" + o.reasoning_parser + "\"");
  }
  if (o.max_call_bytes == 0) return invalid_argument("max_call_bytes must be positive");
  return std::unique_ptr<OutputParser>(new ParserImpl(o, harmony_tools || harmony_reasoning));
}

std::string_view reasoning_close_marker(std::string_view reasoning_parser) {
  const ReasoningMarkers* m = reasoning_markers(reasoning_parser);
  return m == nullptr ? std::string_view() : m->close;
}

bool prompt_opens_reasoning(std::string_view prompt, std::string_view reasoning_parser) {
  const ReasoningMarkers* m = reasoning_markers(reasoning_parser);
  if (m == nullptr) return false;
  const size_t open = prompt.rfind(m->open);
  if (open == std::string_view::npos) return false;
  return prompt.find(m->close, open) == std::string_view::npos;
}

}  // namespace kiln::text
