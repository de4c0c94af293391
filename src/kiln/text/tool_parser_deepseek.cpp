// DeepSeek V3 / R1 / V3.1:
//   V3, R1:  <｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>NAME\n```json\n{...}\n```<｜tool▁call▁end｜>...<｜tool▁calls▁end｜>
//   V3.1:    <｜tool▁calls▁begin｜><｜tool▁call▁begin｜>NAME<｜tool▁sep｜>{...}<｜tool▁call▁end｜>...<｜tool▁calls▁end｜>
// What comes before <｜tool▁sep｜> tells them apart: the word "function" (a type) or the name.
#include "kiln/text/output_parser_internal.h"

namespace kiln::text::output {
namespace {

constexpr std::string_view kCallsBegin = "<｜tool▁calls▁begin｜>";
constexpr std::string_view kCallsEnd = "<｜tool▁calls▁end｜>";
constexpr std::string_view kCallBegin = "<｜tool▁call▁begin｜>";
constexpr std::string_view kCallEnd = "<｜tool▁call▁end｜>";
constexpr std::string_view kSep = "<｜tool▁sep｜>";
constexpr size_t kMaxNameBytes = 256;

class DeepSeek final : public ToolFamily {
 public:
  DeepSeek(Emitter* em, const OutputParserOptions& o)
      : ToolFamily(em, o, {std::string(kCallsBegin), std::string(kCallBegin)}) {}

 protected:
  void on_marker(size_t i) override {
    calls_ = 0;
    start_call_head();
    if (i == 0) s_ = S::kCalls;
  }

  Step on_call_char(char c) override {
    switch (s_) {
      case S::kCalls: {
        if (buf_.empty() && is_ws(c)) return Step::kMore;
        buf_.push_back(c);
        const int m = match_tags(buf_, {kCallBegin, kCallsEnd});
        if (m == -2) return Step::kMore;
        if (m == -1) return Step::kFail;
        if (m == 1) return Step::kDone;
        start_call_head();
        return Step::kMore;
      }
      case S::kHead:
        head_.push_back(c);
        if (head_.ends_with(kSep)) {
          head_.resize(head_.size() - kSep.size());
          fenced_ = trim_ws(head_) == "function";
          if (!fenced_) name_ = std::string(trim_ws(head_));
          s_ = fenced_ ? S::kName : S::kArgs;
          scan_.reset();
          return fenced_ || !name_.empty() ? Step::kMore : Step::kFail;
        }
        return head_.size() > kMaxNameBytes + kSep.size() ? Step::kFail : Step::kMore;
      case S::kName:
        if (c == '\n') {
          name_ = std::string(trim_ws(name_));
          if (name_.empty()) return Step::kFail;
          s_ = S::kFence;
          buf_.clear();
          return Step::kMore;
        }
        if (name_.size() >= kMaxNameBytes) return Step::kFail;
        name_.push_back(c);
        return Step::kMore;
      case S::kFence: {
        if (buf_.empty() && is_ws(c)) return Step::kMore;
        buf_.push_back(c);
        const int m = match_tags(buf_, {"```json"});
        if (m == -2) return Step::kMore;
        if (m == -1) return Step::kFail;
        s_ = S::kArgs;
        return Step::kMore;
      }
      case S::kArgs: {
        const bool first = !scan_.started() && !is_ws(c);
        const JsonScanner::Step st = scan_.feed(c);
        if (st == JsonScanner::Step::kError || (first && c != '{')) return Step::kFail;
        if (!scan_.started()) return Step::kMore;
        if (first) em_.begin_call(name_);
        em_.args(std::string_view(&c, 1));
        if (st == JsonScanner::Step::kDone) {
          s_ = S::kCallTail;
          buf_.clear();
        }
        return Step::kMore;
      }
      case S::kCallTail: {
        if (buf_.empty() && is_ws(c)) return Step::kMore;
        buf_.push_back(c);
        if (fenced_ && buf_ == "```") {
          fenced_ = false;
          buf_.clear();
          return Step::kMore;
        }
        const int m = fenced_ ? match_tags(buf_, {"```"}) : match_tags(buf_, {kCallEnd});
        if (m == -2) return Step::kMore;
        if (m == -1) return Step::kFail;
        em_.end_call();
        ++calls_;
        new_segment();
        buf_.clear();
        s_ = S::kCalls;
        return Step::kMore;
      }
    }
    return Step::kFail;
  }

  // The model may stop without <｜tool▁calls▁end｜>: the calls that ended are whole.
  Step on_call_finish() override {
    return s_ == S::kCalls && buf_.empty() && calls_ > 0 ? Step::kDone : Step::kFail;
  }

 private:
  enum class S : uint8_t { kCalls, kHead, kName, kFence, kArgs, kCallTail };
  void start_call_head() {
    s_ = S::kHead;
    head_.clear();
    name_.clear();
    buf_.clear();
  }

  JsonScanner scan_;
  S s_ = S::kCalls;
  bool fenced_ = false;
  int calls_ = 0;
  std::string buf_, head_, name_;
};

}  // namespace

std::unique_ptr<ToolFamily> make_deepseek_v3(Emitter* em, const OutputParserOptions& o) {
  return std::make_unique<DeepSeek>(em, o);
}

}  // namespace kiln::text::output
