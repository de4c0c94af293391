// Shared pieces of the output parsers (see output_parser_internal.h).
#include <algorithm>

#include <nlohmann/json.hpp>

#include "kiln/text/output_parser_internal.h"

namespace kiln::text::output {

// ---------------------------------------------------------------------------------- Emitter

Emitter::Emitter(uint64_t seed, bool mistral_ids)
    : rng_(seed != 0 ? seed : std::random_device{}()), mistral_ids_(mistral_ids) {}

void Emitter::text_event(OutputEvent::Kind kind, std::string_view text) {
  if (text.empty() || out_ == nullptr) return;
  if (!out_->empty() && out_->back().kind == kind) {
    out_->back().text.append(text);
    return;
  }
  OutputEvent e;
  e.kind = kind;
  e.text = std::string(text);
  out_->push_back(std::move(e));
}

void Emitter::content(std::string_view text) { text_event(OutputEvent::Kind::kContent, text); }
void Emitter::reasoning(std::string_view text) { text_event(OutputEvent::Kind::kReasoning, text); }

void Emitter::begin_call(std::string name, std::string id) {
  if (id.empty()) {
    static constexpr std::string_view kAlnum =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    const int n = mistral_ids_ ? 9 : 24;
    id = mistral_ids_ ? "" : "call_";
    for (int i = 0; i < n; ++i) id.push_back(kAlnum[rng_() % kAlnum.size()]);
  }
  OutputEvent e;
  e.kind = OutputEvent::Kind::kToolCallBegin;
  e.index = next_index_;
  e.name = std::move(name);
  e.id = std::move(id);
  out_->push_back(std::move(e));
  open_ = true;
}

void Emitter::args(std::string_view fragment) {
  if (fragment.empty()) return;
  if (!out_->empty() && out_->back().kind == OutputEvent::Kind::kToolCallArguments &&
      out_->back().index == next_index_) {
    out_->back().text.append(fragment);
    return;
  }
  OutputEvent e;
  e.kind = OutputEvent::Kind::kToolCallArguments;
  e.index = next_index_;
  e.text = std::string(fragment);
  out_->push_back(std::move(e));
}

void Emitter::end_call() {
  OutputEvent e;
  e.kind = OutputEvent::Kind::kToolCallEnd;
  e.index = next_index_++;
  out_->push_back(std::move(e));
  open_ = false;
  ++completed_;
}

void Emitter::abort_call(std::string raw) {
  OutputEvent e;
  e.kind = OutputEvent::Kind::kToolCallEnd;
  e.index = next_index_++;
  e.aborted = true;
  e.text = std::move(raw);
  out_->push_back(std::move(e));
  open_ = false;
}

// ---------------------------------------------------------------------------------- JsonScanner

namespace {
constexpr size_t kMaxJsonDepth = 128;
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_hex(char c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
}  // namespace

JsonScanner::Step JsonScanner::value_end() {
  if (stack_.empty()) return Step::kDone;
  s_ = S::kAfter;
  return Step::kMore;
}

JsonScanner::Step JsonScanner::feed(char c) {
  switch (s_) {
    case S::kValueOrClose:
      if (is_ws(c)) return Step::kMore;
      if (c == ']') {
        stack_.pop_back();
        return value_end();
      }
      [[fallthrough]];
    case S::kValue:
      if (is_ws(c)) return Step::kMore;
      started_ = true;
      if (c == '{' || c == '[') {
        if (stack_.size() >= kMaxJsonDepth) return Step::kError;
        stack_.push_back(c);
        s_ = c == '{' ? S::kKeyOrClose : S::kValueOrClose;
        return Step::kMore;
      }
      if (c == '"') {
        key_ = false;
        s_ = S::kString;
        return Step::kMore;
      }
      if (c == 't' || c == 'f' || c == 'n') {
        literal_ = c == 't' ? "rue" : c == 'f' ? "alse" : "ull";
        s_ = S::kLiteral;
        return Step::kMore;
      }
      if (c == '-' || is_digit(c)) {
        num_ = c == '-' ? 0 : c == '0' ? 2 : 1;
        s_ = S::kNumber;
        return Step::kMore;
      }
      return Step::kError;
    case S::kKeyOrClose:
      if (is_ws(c)) return Step::kMore;
      if (c == '}') {
        stack_.pop_back();
        return value_end();
      }
      [[fallthrough]];
    case S::kKey:
      if (is_ws(c)) return Step::kMore;
      if (c != '"') return Step::kError;
      key_ = true;
      s_ = S::kString;
      return Step::kMore;
    case S::kString:
      if (c == '"') {
        if (key_) {
          s_ = S::kColon;
          return Step::kMore;
        }
        return value_end();
      }
      if (c == '\\') s_ = S::kEscape;
      else if (static_cast<unsigned char>(c) < 0x20) return Step::kError;
      return Step::kMore;
    case S::kEscape:
      if (c == 'u') {
        hex_ = 0;
        s_ = S::kHex;
        return Step::kMore;
      }
      if (std::string_view("\"\\/bfnrt").find(c) == std::string_view::npos) return Step::kError;
      s_ = S::kString;
      return Step::kMore;
    case S::kHex:
      if (!is_hex(c)) return Step::kError;
      if (++hex_ == 4) s_ = S::kString;
      return Step::kMore;
    case S::kColon:
      if (is_ws(c)) return Step::kMore;
      if (c != ':') return Step::kError;
      s_ = S::kValue;
      return Step::kMore;
    case S::kLiteral:
      if (c != *literal_) return Step::kError;
      if (*++literal_ == '\0') return value_end();
      return Step::kMore;
    case S::kNumber: {
      // Sub-states: 0 after '-', 1 integer digits, 2 a leading 0, 3 after '.', 4 fraction digits,
      // 5 after e, 6 after the exponent's sign, 7 exponent digits.
      const bool d = is_digit(c);
      switch (num_) {
        case 0: if (d) { num_ = c == '0' ? 2 : 1; return Step::kMore; } return Step::kError;
        case 1: if (d) return Step::kMore; break;
        case 3: if (d) { num_ = 4; return Step::kMore; } return Step::kError;
        case 4: if (d) return Step::kMore; break;
        case 5: if (d) { num_ = 7; return Step::kMore; }
                if (c == '+' || c == '-') { num_ = 6; return Step::kMore; } return Step::kError;
        case 6: if (d) { num_ = 7; return Step::kMore; } return Step::kError;
        case 7: if (d) return Step::kMore; break;
        default: break;
      }
      if (c == '.' && (num_ == 1 || num_ == 2)) { num_ = 3; return Step::kMore; }
      if ((c == 'e' || c == 'E') && (num_ == 1 || num_ == 2 || num_ == 4)) { num_ = 5; return Step::kMore; }
      if (d) return Step::kError;  // a digit after a leading 0
      // The number ended before c.
      if (stack_.empty()) return Step::kDoneBefore;
      s_ = S::kAfter;
      return feed(c);
    }
    case S::kAfter:
      if (is_ws(c)) return Step::kMore;
      if (c == ',') {
        s_ = stack_.back() == '{' ? S::kKey : S::kValue;
        return Step::kMore;
      }
      if ((c == '}' && stack_.back() == '{') || (c == ']' && stack_.back() == '[')) {
        stack_.pop_back();
        return value_end();
      }
      return Step::kError;
  }
  return Step::kError;
}

// ---------------------------------------------------------------------------------- CallObjectParser

void CallObjectParser::reset() {
  Emitter* em = em_;
  std::vector<std::string> keys = std::move(args_keys_);
  const bool required = args_required_;
  *this = CallObjectParser(em, std::move(keys), required);
}

void CallObjectParser::start_args_stream() {
  if (!em_->call_open()) em_->begin_call(name_);
}

CallObjectParser::Step CallObjectParser::feed(char c) {
  switch (s_) {
    case S::kOpen:
      if (is_ws(c)) return Step::kMore;
      if (c != '{') return Step::kFail;
      s_ = S::kKeyOrClose;
      return Step::kMore;
    case S::kKeyOrClose:
      if (is_ws(c)) return Step::kMore;
      if (c == '}' && !after_comma_) return close();
      if (c != '"') return Step::kFail;
      after_comma_ = false;
      key_.clear();
      key_escape_ = false;
      s_ = S::kKey;
      return Step::kMore;
    case S::kKey:
      if (!key_escape_ && c == '"') {
        s_ = S::kColon;
        return Step::kMore;
      }
      if (static_cast<unsigned char>(c) < 0x20 || key_.size() > 256) return Step::kFail;
      key_escape_ = !key_escape_ && c == '\\';
      key_.push_back(c);
      return Step::kMore;
    case S::kColon:
      if (is_ws(c)) return Step::kMore;
      if (c != ':') return Step::kFail;
      s_ = S::kValue;
      value_scan_.reset();
      value_.clear();
      if (key_ == "name") {
        v_ = V::kName;
      } else if (std::find(args_keys_.begin(), args_keys_.end(), key_) != args_keys_.end()) {
        v_ = V::kArgs;
      } else {
        v_ = V::kSkip;
      }
      return Step::kMore;
    case S::kValue: {
      const bool first = !value_scan_.started() && !is_ws(c);
      const JsonScanner::Step st = value_scan_.feed(c);
      if (st == JsonScanner::Step::kError) return Step::kFail;
      if (first && v_ == V::kArgs) {
        if (have_args_) return Step::kFail;  // two argument objects
        have_args_ = true;
        if (c == '"') v_ = V::kArgsString;
        else if (c != '{') return Step::kFail;
        else if (!have_name_) args_pending_ = true;
      }
      if (first && v_ == V::kName && (c != '"' || have_name_)) return Step::kFail;
      if (st == JsonScanner::Step::kDoneBefore) {
        s_ = S::kCommaOrClose;
        return feed(c);
      }
      if (!value_scan_.started()) return Step::kMore;  // whitespace before the value
      if (v_ == V::kArgs && !args_pending_) {
        start_args_stream();
        em_->args(std::string_view(&c, 1));
      } else if (v_ == V::kArgs) {
        args_before_name_.push_back(c);
      } else if (v_ != V::kSkip) {
        value_.push_back(c);
      }
      if (st != JsonScanner::Step::kDone) return Step::kMore;
      if (v_ == V::kName) {
        if (!json_unquote(value_, &name_) || name_.empty()) return Step::kFail;
        have_name_ = true;
        if (args_pending_ && is_json_object(args_before_name_)) {
          // The arguments came first; a whole object can go out now.
          start_args_stream();
          em_->args(args_before_name_);
          args_pending_ = false;
        }
      } else if (v_ == V::kArgsString) {
        std::string decoded;
        if (!json_unquote(value_, &decoded) || !is_json_object(decoded)) return Step::kFail;
        args_before_name_ = std::move(decoded);
        args_pending_ = true;
        if (have_name_) {
          start_args_stream();
          em_->args(args_before_name_);
          args_pending_ = false;
        }
      }
      s_ = S::kCommaOrClose;
      return Step::kMore;
    }
    case S::kCommaOrClose:
      if (is_ws(c)) return Step::kMore;
      if (c == '}') return close();
      if (c != ',') return Step::kFail;
      after_comma_ = true;
      s_ = S::kKeyOrClose;
      return Step::kMore;
  }
  return Step::kFail;
}

CallObjectParser::Step CallObjectParser::close() {
  if (!have_name_) return Step::kFail;
  if (!have_args_) {
    if (args_required_) return Step::kFail;
    start_args_stream();
    em_->args("{}");
  } else if (args_pending_) {
    start_args_stream();
    em_->args(args_before_name_);
  }
  em_->end_call();
  return Step::kDone;
}

// ---------------------------------------------------------------------------------- ToolFamily

ToolFamily::ToolFamily(Emitter* em, const OutputParserOptions& options, std::vector<std::string> markers)
    : em_(*em),
      markers_(std::move(markers)),
      max_call_bytes_(options.max_call_bytes),
      max_held_ws_(options.max_held_whitespace) {}

void ToolFamily::feed(std::string_view text) {
  for (char c : text) {
    if (in_call_) call_char(c);
    else text_char(c);
  }
}

void ToolFamily::flush_ws() {
  em_.content(ws_);
  ws_.clear();
}

void ToolFamily::text_char(char c) {
  if (pending_.empty() && is_ws(c)) {
    if (skip_ws_) return;
    ws_.push_back(c);
    if (ws_.size() > max_held_ws_) flush_ws();
    return;
  }
  if (pending_.empty() && at_start_ && starts_call_at_beginning(c)) {
    enter_call(c, false, 0);
    return;
  }
  at_start_ = false;
  skip_ws_ = false;
  pending_.push_back(c);
  for (;;) {
    bool prefix = false;
    for (size_t i = 0; i < markers_.size(); ++i) {
      const std::string& m = markers_[i];
      if (m == pending_) {
        pending_.clear();
        enter_call('\0', true, i);
        return;
      }
      if (m.size() > pending_.size() && m.compare(0, pending_.size(), pending_) == 0) prefix = true;
    }
    if (prefix || pending_.empty()) return;
    // Not a marker: release its first character, then look at what is left.
    flush_ws();
    em_.content(std::string_view(pending_).substr(0, 1));
    pending_.erase(0, 1);
    if (pending_.empty()) return;
  }
}

void ToolFamily::enter_call(char first, bool from_marker, size_t marker) {
  in_call_ = true;
  at_start_ = false;
  pre_ws_ = std::move(ws_);
  ws_.clear();
  raw_.clear();
  if (from_marker) {
    raw_ = markers_[marker];
    on_marker(marker);
  } else {
    on_marker(markers_.size());
    call_char(first);
  }
}

void ToolFamily::call_char(char c) {
  raw_.push_back(c);
  if (raw_.size() > max_call_bytes_) {
    fail();
    return;
  }
  switch (on_call_char(c)) {
    case Step::kMore: return;
    case Step::kDone:
      in_call_ = false;
      skip_ws_ = true;
      raw_.clear();
      pre_ws_.clear();
      return;
    case Step::kFail: fail(); return;
  }
}

void ToolFamily::fail() {
  in_call_ = false;
  if (em_.call_open()) {
    em_.abort_call(std::move(raw_));
  } else {
    em_.content(pre_ws_);
    em_.content(raw_);
  }
  raw_.clear();
  pre_ws_.clear();
}

void ToolFamily::finish() {
  if (in_call_) {
    if (on_call_finish() == Step::kFail) fail();
    in_call_ = false;
  }
  flush_ws();
  em_.content(pending_);
  pending_.clear();
}

// ---------------------------------------------------------------------------------- JSON helpers

std::string json_quote(std::string_view s) {
  return nlohmann::json(std::string(s)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

bool json_unquote(std::string_view literal, std::string* out) {
  auto j = nlohmann::json::parse(literal, nullptr, false);
  if (j.is_discarded() || !j.is_string()) return false;
  *out = j.get<std::string>();
  return true;
}

std::string json_value_or_string(std::string_view s) {
  auto j = nlohmann::json::parse(s, nullptr, false);
  if (!j.is_discarded()) return std::string(trim_ws(s));
  return json_quote(s);
}

bool is_json_object(std::string_view s) {
  auto j = nlohmann::json::parse(s, nullptr, false);
  return !j.is_discarded() && j.is_object();
}

std::string_view trim_ws(std::string_view s) {
  while (!s.empty() && is_ws(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ws(s.back())) s.remove_suffix(1);
  return s;
}

}  // namespace kiln::text::output
