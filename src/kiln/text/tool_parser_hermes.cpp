// Hermes / Qwen2.5 / Qwen3: <tool_call>\n{"name": "f", "arguments": {...}}\n</tool_call>, several
// in a row. The arguments stream as the model writes them; the call ends with its object, and the
// closing tag is expected next (a missing one at the end of the output is forgiven: the model may
// stop right after the object).
#include "kiln/text/output_parser_internal.h"

namespace kiln::text::output {
namespace {

constexpr std::string_view kClose = "</tool_call>";

class Hermes final : public ToolFamily {
 public:
  Hermes(Emitter* em, const OutputParserOptions& o)
      : ToolFamily(em, o, {"<tool_call>"}), object_(em, {"arguments", "parameters"}, false) {}

 protected:
  void on_marker(size_t /*i*/) override {
    object_.reset();
    in_object_ = true;
    tail_.clear();
  }

  Step on_call_char(char c) override {
    if (in_object_) {
      switch (object_.feed(c)) {
        case CallObjectParser::Step::kMore: return Step::kMore;
        case CallObjectParser::Step::kFail: return Step::kFail;
        case CallObjectParser::Step::kDone:
          in_object_ = false;
          new_segment();  // the call is out; only what follows is at stake now
          return Step::kMore;
      }
    }
    if (tail_.empty() && is_ws(c)) return Step::kMore;
    tail_.push_back(c);
    if (tail_ == kClose) return Step::kDone;
    if (kClose.starts_with(tail_)) return Step::kMore;
    return Step::kFail;  // text after the object that is not the closing tag: it stays text
  }

  Step on_call_finish() override { return in_object_ || !tail_.empty() ? Step::kFail : Step::kDone; }

 private:
  CallObjectParser object_;
  bool in_object_ = false;
  std::string tail_;
};

}  // namespace

std::unique_ptr<ToolFamily> make_hermes(Emitter* em, const OutputParserOptions& o) {
  return std::make_unique<Hermes>(em, o);
}

}  // namespace kiln::text::output
