// Mistral: before tokenizer v11 a JSON list, [TOOL_CALLS][{"name": "f", "arguments": {...}}, ...];
// from v11 (Small 3.2, Devstral, Magistral) one marker per call, [TOOL_CALLS]f[ARGS]{...}, with an
// optional [CALL_ID]xxxxxxxxx before [ARGS] (Small 3.2's template writes one; it becomes the id).
// Ids are 9 alphanumerics, as Mistral's templates require of the history.
#include "kiln/text/output_parser_internal.h"

namespace kiln::text::output {
namespace {

constexpr size_t kMaxNameBytes = 256;

class Mistral final : public ToolFamily {
 public:
  Mistral(Emitter* em, const OutputParserOptions& o)
      : ToolFamily(em, o, {"[TOOL_CALLS]"}), object_(em, {"arguments", "parameters"}, false) {}

 protected:
  void on_marker(size_t /*i*/) override {
    s_ = S::kStart;
    name_.clear();
    id_.clear();
    buf_.clear();
  }

  Step on_call_char(char c) override {
    switch (s_) {
      case S::kStart:
        if (is_ws(c)) return Step::kMore;
        if (c == '[') {
          s_ = S::kListItem;
          return Step::kMore;
        }
        s_ = S::kName;
        return on_call_char(c);
      case S::kListItem:
        if (is_ws(c)) return Step::kMore;
        if (c != '{') return Step::kFail;
        object_.reset();
        s_ = S::kObject;
        return on_call_char(c);
      case S::kObject:
        switch (object_.feed(c)) {
          case CallObjectParser::Step::kMore: return Step::kMore;
          case CallObjectParser::Step::kFail: return Step::kFail;
          case CallObjectParser::Step::kDone:
            new_segment();
            s_ = S::kListNext;
            return Step::kMore;
        }
        return Step::kFail;
      case S::kListNext:
        if (is_ws(c)) return Step::kMore;
        if (c == ',') {
          s_ = S::kListItem;
          return Step::kMore;
        }
        return c == ']' ? Step::kDone : Step::kFail;
      case S::kName:
        if (c == '[') {
          buf_ = "[";
          s_ = S::kTag;
          return Step::kMore;
        }
        if (is_ws(c) || name_.size() >= kMaxNameBytes) return Step::kFail;
        name_.push_back(c);
        return Step::kMore;
      case S::kId:
        if (c == '[') {
          buf_ = "[";
          s_ = S::kTag;
          return Step::kMore;
        }
        if (is_ws(c) || id_.size() >= kMaxNameBytes) return Step::kFail;
        id_.push_back(c);
        return Step::kMore;
      case S::kTag: {
        buf_.push_back(c);
        const int m = id_.empty() ? match_tags(buf_, {"[ARGS]", "[CALL_ID]"}) : match_tags(buf_, {"[ARGS]"});
        if (m == -2) return Step::kMore;
        if (m == -1 || name_.empty()) return Step::kFail;
        if (m == 1) {
          s_ = S::kId;
          return Step::kMore;
        }
        scan_.reset();
        s_ = S::kArgs;
        return Step::kMore;
      }
      case S::kArgs: {
        const bool first = !scan_.started() && !is_ws(c);
        const JsonScanner::Step st = scan_.feed(c);
        if (st == JsonScanner::Step::kError || (first && c != '{')) return Step::kFail;
        if (!scan_.started()) return Step::kMore;
        if (first) em_.begin_call(name_, id_);
        em_.args(std::string_view(&c, 1));
        if (st != JsonScanner::Step::kDone) return Step::kMore;
        em_.end_call();
        return Step::kDone;  // a following call comes with its own [TOOL_CALLS]
      }
    }
    return Step::kFail;
  }

 private:
  enum class S : uint8_t { kStart, kListItem, kObject, kListNext, kName, kId, kTag, kArgs };
  CallObjectParser object_;
  JsonScanner scan_;
  S s_ = S::kStart;
  std::string name_, id_, buf_;
};

}  // namespace

std::unique_ptr<ToolFamily> make_mistral(Emitter* em, const OutputParserOptions& o) {
  return std::make_unique<Mistral>(em, o);
}

}  // namespace kiln::text::output
