// Llama 3.1-3.3: {"name": "f", "parameters": {...}} after <|python_tag|> or as the whole output
// (a bare JSON object at its start), several separated by ';'. Built-in tools come as
// <|python_tag|>brave_search.call(query="...") and become a call of `brave_search` with the keyword
// arguments as a JSON object. What follows <|python_tag|> that is neither (code for the code
// interpreter) stays text.
#include "kiln/text/output_parser_internal.h"

namespace kiln::text::output {
namespace {

constexpr size_t kMaxNameBytes = 256;

bool is_ident(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

class Llama3 final : public ToolFamily {
 public:
  Llama3(Emitter* em, const OutputParserOptions& o)
      : ToolFamily(em, o, {"<|python_tag|>"}), object_(em, {"parameters", "arguments"}, true) {}

 protected:
  void on_marker(size_t /*i*/) override {
    s_ = S::kStart;
    buf_.clear();
  }
  bool starts_call_at_beginning(char c) override { return c == '{'; }

  Step on_call_char(char c) override {
    switch (s_) {
      case S::kStart:
        if (is_ws(c)) return Step::kMore;
        if (c == '{') {
          object_.reset();
          s_ = S::kObject;
          return on_call_char(c);
        }
        if (!is_ident(c)) return Step::kFail;
        s_ = S::kBuiltinName;
        return on_call_char(c);
      case S::kObject:
        switch (object_.feed(c)) {
          case CallObjectParser::Step::kMore: return Step::kMore;
          case CallObjectParser::Step::kFail: return Step::kFail;
          case CallObjectParser::Step::kDone: return after_call();
        }
        return Step::kFail;
      case S::kBuiltinName:
        buf_.push_back(c);
        if (buf_.size() > kMaxNameBytes) return Step::kFail;
        if (buf_.ends_with(".call(")) {
          name_ = buf_.substr(0, buf_.size() - 6);
          buf_.clear();
          quote_ = 0;
          s_ = S::kBuiltinArgs;
          return Step::kMore;
        }
        return is_ident(c) || c == '.' ? Step::kMore : Step::kFail;
      case S::kBuiltinArgs: {
        if (quote_ != 0) {
          if (escape_) escape_ = false;
          else if (c == '\\') escape_ = true;
          else if (c == quote_) quote_ = 0;
        } else if (c == '"' || c == '\'') {
          quote_ = c;
        } else if (c == ')') {
          std::string args;
          if (name_.empty() || name_.find('.') != std::string::npos || !python_kwargs_to_json(buf_, &args)) {
            return Step::kFail;
          }
          em_.begin_call(name_);
          em_.args(args);
          em_.end_call();
          return after_call();
        }
        buf_.push_back(c);
        return Step::kMore;
      }
      case S::kBetween: {
        if (buf_.empty() && is_ws(c)) return Step::kMore;
        if (buf_.empty() && c == ';') {
          s_ = S::kStart;
          return Step::kMore;
        }
        buf_.push_back(c);
        // The end-of-turn tokens, when they are passed on, close the calls.
        const int m = match_tags(buf_, {"<|eom_id|>", "<|eot_id|>"});
        if (m == -2) return Step::kMore;
        if (m == -1) return Step::kFail;
        return Step::kDone;
      }
    }
    return Step::kFail;
  }

  // The calls end with the turn: a region that stopped between calls is whole.
  Step on_call_finish() override { return s_ == S::kBetween && buf_.empty() ? Step::kDone : Step::kFail; }

 private:
  enum class S : uint8_t { kStart, kObject, kBuiltinName, kBuiltinArgs, kBetween };
  Step after_call() {
    new_segment();
    buf_.clear();
    s_ = S::kBetween;
    return Step::kMore;
  }

  CallObjectParser object_;
  S s_ = S::kStart;
  std::string buf_, name_;
  char quote_ = 0;
  bool escape_ = false;
};

}  // namespace

std::unique_ptr<ToolFamily> make_llama3(Emitter* em, const OutputParserOptions& o) {
  return std::make_unique<Llama3>(em, o);
}

}  // namespace kiln::text::output
