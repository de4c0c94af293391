// Pythonic calls (Llama 3.2 with the pythonic template, Llama 4): the output is a Python list of
// calls, `[get_weather(city="Paris", days=3), get_time()]`, at its start (or after Llama 4's
// <|python_start|>). Each call becomes a call of that name with its keyword arguments as a JSON
// object, sent when the call's ')' arrives. Arguments must be Python literals (strings, numbers,
// True/False/None, lists, tuples, dicts of them): anything else (a variable, an expression)
// makes the list text again. Also the converter llama3's built-in tools use.
#include "kiln/text/output_parser_internal.h"
#include "kiln/text/utf8.h"

namespace kiln::text::output {
namespace {

constexpr size_t kMaxNameBytes = 256;
constexpr int kMaxDepth = 64;

bool is_ident(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

class LiteralReader {
 public:
  explicit LiteralReader(std::string_view s) : s_(s) {}
  size_t pos() const { return i_; }
  void skip() { while (i_ < s_.size() && is_ws(s_[i_])) ++i_; }
  bool at(char c) { skip(); return i_ < s_.size() && s_[i_] == c; }
  bool done() { skip(); return i_ == s_.size(); }
  std::string ident() {
    skip();
    const size_t i0 = i_;
    while (i_ < s_.size() && is_ident(s_[i_])) ++i_;
    return std::string(s_.substr(i0, i_ - i0));
  }
  bool eat(char c) {
    if (!at(c)) return false;
    ++i_;
    return true;
  }
  // One Python literal at pos() as JSON, appended to *out.
  bool value(std::string* out, int depth) {
    skip();
    if (i_ == s_.size() || depth > kMaxDepth) return false;
    const char c = s_[i_];
    if (c == '"' || c == '\'') return string(out);
    if (c == '[' || c == '(') return sequence(out, c == '[' ? ']' : ')', depth);
    if (c == '{') return dict(out, depth);
    const size_t v0 = i_;
    while (i_ < s_.size() && (is_ident(s_[i_]) || s_[i_] == '.' || s_[i_] == '-' || s_[i_] == '+')) ++i_;
    std::string_view lit = s_.substr(v0, i_ - v0);
    if (lit == "True") *out += "true";
    else if (lit == "False") *out += "false";
    else if (lit == "None") *out += "null";
    else if (!lit.empty() && is_json_object("{\"v\":" + std::string(lit) + "}")) *out += lit;
    else return false;
    return true;
  }

 private:
  bool string(std::string* out) {
    const char q = s_[i_++];
    std::string text;
    for (;; ++i_) {
      if (i_ == s_.size()) return false;
      if (s_[i_] == q) break;
      if (s_[i_] == '\\' && i_ + 1 < s_.size()) {
        const char e = s_[++i_];
        if (e == 'u' || e == 'U') {
          // \uXXXX / \UXXXXXXXX: the code point (a surrogate is not one: the call stays text).
          const size_t n = e == 'u' ? 4 : 8;
          if (i_ + n >= s_.size()) return false;
          char32_t cp = 0;
          for (size_t k = 1; k <= n; ++k) {
            const char h = s_[i_ + k];
            const int d = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10 : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
            if (d < 0) return false;
            cp = cp * 16 + static_cast<char32_t>(d);
          }
          if ((cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) return false;
          append_utf8(text, cp);
          i_ += n;
          continue;
        }
        text.push_back(e == 'n' ? '\n' : e == 't' ? '\t' : e == 'r' ? '\r' : e == 'b' ? '\b' : e == 'f' ? '\f' : e);
        continue;
      }
      text.push_back(s_[i_]);
    }
    ++i_;
    *out += json_quote(text);
    return true;
  }
  // A list or tuple as a JSON array; a trailing comma is allowed.
  bool sequence(std::string* out, char close, int depth) {
    ++i_;
    *out += '[';
    for (bool first = true; !eat(close); first = false) {
      if (!first) {
        if (!eat(',')) return false;
        if (eat(close)) break;
        *out += ", ";
      }
      if (!value(out, depth + 1)) return false;
    }
    *out += ']';
    return true;
  }
  // A dict with string keys as a JSON object.
  bool dict(std::string* out, int depth) {
    ++i_;
    *out += '{';
    for (bool first = true; !eat('}'); first = false) {
      if (!first) {
        if (!eat(',')) return false;
        if (eat('}')) break;
        *out += ", ";
      }
      if (!at('"') && !at('\'')) return false;
      if (!string(out) || !eat(':')) return false;
      *out += ": ";
      if (!value(out, depth + 1)) return false;
    }
    *out += '}';
    return true;
  }

  std::string_view s_;
  size_t i_ = 0;
};

class Pythonic final : public ToolFamily {
 public:
  Pythonic(Emitter* em, const OutputParserOptions& o) : ToolFamily(em, o, {"<|python_start|>"}) {}

 protected:
  void on_marker(size_t /*i*/) override { s_ = S::kOpen; }
  bool starts_call_at_beginning(char c) override { return c == '['; }

  Step on_call_char(char c) override {
    switch (s_) {
      case S::kOpen:
        if (is_ws(c)) return Step::kMore;
        if (c != '[') return Step::kFail;
        s_ = S::kName;
        buf_.clear();
        return Step::kMore;
      case S::kName:
        if (buf_.empty() && is_ws(c)) return Step::kMore;
        if (c == '(' && !buf_.empty()) {
          name_ = buf_;
          buf_.clear();
          depth_ = 0;
          quote_ = 0;
          s_ = S::kArgs;
          return Step::kMore;
        }
        if (!is_ident(c) || (buf_.empty() && c >= '0' && c <= '9') || buf_.size() >= kMaxNameBytes) return Step::kFail;
        buf_.push_back(c);
        return Step::kMore;
      case S::kArgs:
        if (quote_ != 0) {
          if (escape_) escape_ = false;
          else if (c == '\\') escape_ = true;
          else if (c == quote_) quote_ = 0;
        } else if (c == '"' || c == '\'') {
          quote_ = c;
        } else if (c == '(' || c == '[' || c == '{') {
          ++depth_;
        } else if ((c == ')' || c == ']' || c == '}') && depth_ > 0) {
          --depth_;
        } else if (c == ')') {
          std::string args;
          if (!python_kwargs_to_json(buf_, &args)) return Step::kFail;
          em_.begin_call(name_);
          em_.args(args);
          em_.end_call();
          new_segment();
          buf_.clear();
          s_ = S::kBetween;
          return Step::kMore;
        }
        buf_.push_back(c);
        return Step::kMore;
      case S::kBetween:
        if (is_ws(c)) return Step::kMore;
        if (c == ',') {
          s_ = S::kName;
          return Step::kMore;
        }
        return c == ']' ? Step::kDone : Step::kFail;
    }
    return Step::kFail;
  }

 private:
  enum class S : uint8_t { kOpen, kName, kArgs, kBetween };
  S s_ = S::kOpen;
  std::string buf_, name_;
  int depth_ = 0;
  char quote_ = 0;
  bool escape_ = false;
};

}  // namespace

bool python_kwargs_to_json(std::string_view s, std::string* out) {
  LiteralReader r(s);
  std::string json = "{";
  for (bool first = true; !r.done(); first = false) {
    if (!first) {
      if (!r.eat(',')) return false;
      if (r.done()) break;  // a trailing comma
      json += ", ";
    }
    const std::string key = r.ident();
    if (key.empty() || (key[0] >= '0' && key[0] <= '9') || !r.eat('=')) return false;
    json += json_quote(key) + ": ";
    if (!r.value(&json, 0)) return false;
  }
  *out = json + "}";
  return true;
}

std::unique_ptr<ToolFamily> make_pythonic(Emitter* em, const OutputParserOptions& o) {
  return std::make_unique<Pythonic>(em, o);
}

}  // namespace kiln::text::output
