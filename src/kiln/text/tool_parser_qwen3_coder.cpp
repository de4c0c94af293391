// XML-style calls, two dialects behind one <tool_call> tag:
//   Qwen3-Coder:  <tool_call>\n<function=NAME>\n<parameter=K>\nV\n</parameter>\n</function>\n</tool_call>
//   GLM-4.5/4.6/4.7: <tool_call>NAME\n<arg_key>K</arg_key>\n<arg_value>V</arg_value>\n</tool_call>
// A value becomes JSON as it is when it parses as JSON (numbers, booleans, objects, null), else a
// JSON string; one newline around it is the format's, not the value's. The arguments go out one
// parameter at a time, each when its closing tag arrives: "{"k": v" then ", "k2": v2" then "}".
#include "kiln/text/output_parser_internal.h"

namespace kiln::text::output {
namespace {

constexpr size_t kMaxNameBytes = 256;

class XmlCalls final : public ToolFamily {
 public:
  XmlCalls(Emitter* em, const OutputParserOptions& o) : ToolFamily(em, o, {"<tool_call>"}) {}

 protected:
  void on_marker(size_t /*i*/) override {
    s_ = S::kHead;
    buf_.clear();
    name_.clear();
    params_ = 0;
  }

  Step on_call_char(char c) override {
    switch (s_) {
      case S::kHead:
        if (buf_.empty() && is_ws(c)) return Step::kMore;
        if (buf_.empty() && c != '<') {  // GLM: the name follows the tag directly
          s_ = S::kGlmName;
          return on_call_char(c);
        }
        buf_.push_back(c);
        if (buf_ == "<function=") {
          buf_.clear();
          s_ = S::kFuncName;
          return Step::kMore;
        }
        return std::string_view("<function=").starts_with(buf_) ? Step::kMore : Step::kFail;
      case S::kFuncName:
        if (c == '>') return begin(S::kBody);
        return name_char(c);
      case S::kGlmName:
        if (is_ws(c) || c == '<') {
          const Step st = begin(S::kGlmBody);
          if (c == '<') buf_.push_back(c);
          return st;
        }
        return name_char(c);
      case S::kBody:
      case S::kGlmBody: {
        if (buf_.empty() && is_ws(c)) return Step::kMore;
        buf_.push_back(c);
        const int m = s_ == S::kBody ? match_tags(buf_, {"<parameter=", "</function>", "</tool_call>"})
                                     : match_tags(buf_, {"<arg_key>", "</tool_call>"});
        if (m == -2) return Step::kMore;
        if (m == -1) return Step::kFail;
        buf_.clear();
        if (m == 0) {
          s_ = s_ == S::kBody ? S::kParamName : S::kGlmKey;
          key_.clear();
          return Step::kMore;
        }
        if (s_ == S::kBody && m == 1) {
          close_args();
          s_ = S::kTail;
          return Step::kMore;
        }
        close_args();
        em_.end_call();
        return Step::kDone;
      }
      case S::kParamName:
        if (c == '>') {
          s_ = S::kValue;
          close_tag_ = "</parameter>";
          value_.clear();
          return Step::kMore;
        }
        return key_char(c);
      case S::kGlmKey:
        key_.push_back(c);
        if (key_.ends_with("</arg_key>")) {
          key_.resize(key_.size() - std::string_view("</arg_key>").size());
          s_ = S::kGlmBetween;
          return Step::kMore;
        }
        return key_.size() > kMaxNameBytes ? Step::kFail : Step::kMore;
      case S::kGlmBetween: {
        if (buf_.empty() && is_ws(c)) return Step::kMore;
        buf_.push_back(c);
        const int m = match_tags(buf_, {"<arg_value>"});
        if (m == -2) return Step::kMore;
        if (m == -1) return Step::kFail;
        buf_.clear();
        s_ = S::kValue;
        close_tag_ = "</arg_value>";
        value_.clear();
        return Step::kMore;
      }
      case S::kValue:
        value_.push_back(c);
        if (value_.ends_with(close_tag_)) {
          value_.resize(value_.size() - close_tag_.size());
          emit_param();
          s_ = close_tag_ == "</parameter>" ? S::kBody : S::kGlmBody;
        }
        return Step::kMore;
      case S::kTail: {
        if (buf_.empty() && is_ws(c)) return Step::kMore;
        buf_.push_back(c);
        const int m = match_tags(buf_, {"</tool_call>"});
        if (m == -2) return Step::kMore;
        if (m == -1) return Step::kFail;
        em_.end_call();
        return Step::kDone;
      }
    }
    return Step::kFail;
  }

 private:
  enum class S : uint8_t { kHead, kFuncName, kGlmName, kBody, kGlmBody, kParamName, kGlmKey, kGlmBetween,
                           kValue, kTail };

  Step name_char(char c) {
    if (c == '\n' || name_.size() >= kMaxNameBytes) return Step::kFail;
    name_.push_back(c);
    return Step::kMore;
  }
  Step key_char(char c) {
    if (c == '\n' || key_.size() >= kMaxNameBytes) return Step::kFail;
    key_.push_back(c);
    return Step::kMore;
  }
  Step begin(S next) {
    std::string name(trim_ws(name_));
    name_.clear();
    if (name.empty()) return Step::kFail;
    em_.begin_call(std::move(name));
    s_ = next;
    return Step::kMore;
  }
  void emit_param() {
    std::string_view v = value_;
    if (v.starts_with('\n')) v.remove_prefix(1);
    if (v.ends_with('\n')) v.remove_suffix(1);
    std::string frag = params_++ == 0 ? "{" : ", ";
    frag += json_quote(trim_ws(key_));
    frag += ": ";
    frag += json_value_or_string(v);
    em_.args(frag);
  }
  void close_args() { em_.args(params_ == 0 ? "{}" : "}"); }

  S s_ = S::kHead;
  std::string buf_, name_, key_, value_;
  std::string_view close_tag_;
  int params_ = 0;
};

}  // namespace

std::unique_ptr<ToolFamily> make_qwen3_coder(Emitter* em, const OutputParserOptions& o) {
  return std::make_unique<XmlCalls>(em, o);
}
std::unique_ptr<ToolFamily> make_glm45(Emitter* em, const OutputParserOptions& o) {
  return std::make_unique<XmlCalls>(em, o);
}

}  // namespace kiln::text::output
