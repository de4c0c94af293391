// gpt-oss harmony: the output is a series of messages, each a header and a body:
//   <|channel|>analysis<|message|>REASONING<|end|>
//   <|start|>assistant<|channel|>commentary to=functions.NAME <|constrain|>json<|message|>{ARGS}<|call|>
//   <|start|>assistant<|channel|>final<|message|>ANSWER<|return|>
// (the recipient may also stand before the channel: "<|start|>assistant to=functions.NAME<|channel|>
// commentary json<|message|>"). analysis is reasoning, final and commentary without a recipient are
// content, a message to a recipient is a call whose arguments stream as written. <|call|> and
// <|return|> end the turn and may never reach the parser (they are stop tokens): a call whose
// arguments are whole when the output ends is whole.
#include "kiln/text/output_parser_internal.h"

namespace kiln::text::output {
namespace {

constexpr std::string_view kStart = "<|start|>";
constexpr std::string_view kChannel = "<|channel|>";
constexpr std::string_view kMessage = "<|message|>";
constexpr size_t kMaxHeaderBytes = 1024;

class Harmony final : public HarmonyParser {
 public:
  Harmony(Emitter* em, const OutputParserOptions& o)
      : em_(*em),
        reasoning_(o.reasoning_parser == "harmony"),
        tools_(o.tools_offered && o.tool_parser == "harmony"),
        max_call_bytes_(o.max_call_bytes) {}

  void feed(std::string_view text) override {
    for (char c : text) step(c);
  }

  void finish() override {
    switch (s_) {
      case S::kOutside: em_.content(pending_); break;
      case S::kHeader: em_.content(header_); break;
      case S::kBody:
        if (kind_ == Kind::kCall) end_call_body(/*at_end=*/true);
        else emit_body(pending_);
        break;
    }
    pending_.clear();
    header_.clear();
    s_ = S::kOutside;
  }

  bool in_reasoning() const override { return s_ == S::kBody && kind_ == Kind::kReasoning; }

 private:
  enum class S : uint8_t { kOutside, kHeader, kBody };
  enum class Kind : uint8_t { kReasoning, kContent, kCall, kRawContent };

  // Looks for one of `markers` in the text, holding back a possible start of one; what can be
  // none goes to `release`. Returns the index of a marker that just completed, else -1.
  template <typename F>
  int scan(char c, std::initializer_list<std::string_view> markers, F release) {
    pending_.push_back(c);
    for (;;) {
      const int m = match_tags(pending_, markers);
      if (m >= 0) {
        pending_.clear();
        return m;
      }
      if (m == -2 || pending_.empty()) return -1;
      release(std::string_view(pending_).substr(0, 1));
      pending_.erase(0, 1);
      if (pending_.empty()) return -1;
    }
  }

  void step(char c) {
    switch (s_) {
      case S::kOutside: {
        const int m = scan(c, {kStart, kChannel}, [this](std::string_view t) { em_.content(t); });
        if (m < 0) return;
        s_ = S::kHeader;
        header_ = m == 0 ? kStart : kChannel;
        return;
      }
      case S::kHeader:
        header_.push_back(c);
        if (header_.ends_with(kMessage)) {
          start_body();
        } else if (header_.size() > kMaxHeaderBytes) {
          em_.content(header_);
          header_.clear();
          s_ = S::kOutside;
        }
        return;
      case S::kBody: {
        const int m = scan(c, {"<|end|>", "<|call|>", "<|return|>", kStart},
                           [this](std::string_view t) { body_text(t); });
        if (m < 0) return;
        if (kind_ == Kind::kCall) end_call_body(false);
        if (kind_ == Kind::kRawContent) em_.content(m == 0 ? "<|end|>" : m == 1 ? "<|call|>" : "<|return|>");
        s_ = S::kOutside;
        if (m == 3) {  // a new message without <|end|> before it
          s_ = S::kHeader;
          header_ = kStart;
        }
        return;
      }
    }
  }

  // Header: "[<|start|>][assistant][ to=RECIPIENT]<|channel|>CHANNEL[ to=RECIPIENT][ <|constrain|>json| json]<|message|>".
  void start_body() {
    std::string_view h = header_;
    h.remove_suffix(kMessage.size());
    std::string channel;
    std::string recipient;
    const size_t ch = h.find(kChannel);
    if (ch != std::string_view::npos) {
      std::string_view rest = h.substr(ch + kChannel.size());
      size_t end = 0;
      while (end < rest.size() && !is_ws(rest[end]) && rest[end] != '<') ++end;
      channel = std::string(rest.substr(0, end));
    }
    const size_t to = h.find("to=");
    if (to != std::string_view::npos) {
      std::string_view rest = h.substr(to + 3);
      size_t end = 0;
      while (end < rest.size() && !is_ws(rest[end]) && rest[end] != '<') ++end;
      recipient = std::string(rest.substr(0, end));
    }
    pending_.clear();
    s_ = S::kBody;
    if (!recipient.empty()) {
      if (!tools_) {
        kind_ = Kind::kRawContent;  // tool-call syntax without tools offered stays text
        em_.content(header_);
      } else {
        kind_ = Kind::kCall;
        name_ = recipient.starts_with("functions.") ? recipient.substr(10) : recipient;
        raw_ = header_;
        scan_.reset();
        json_done_ = false;
      }
    } else if (channel == "analysis") {
      kind_ = reasoning_ ? Kind::kReasoning : Kind::kContent;
    } else {
      kind_ = Kind::kContent;  // final, and commentary addressed to the user (a preamble)
    }
    header_.clear();
  }

  void emit_body(std::string_view t) {
    if (kind_ == Kind::kReasoning) em_.reasoning(t);
    else em_.content(t);
  }

  void body_text(std::string_view t) {
    if (kind_ != Kind::kCall) {
      emit_body(t);
      return;
    }
    for (char c : t) call_char(c);
  }

  void call_char(char c) {
    if (failed_) {
      em_.content(std::string_view(&c, 1));
      return;
    }
    raw_.push_back(c);
    if (json_done_) {
      if (!is_ws(c)) give_up();
      return;
    }
    const bool first = !scan_.started() && !is_ws(c);
    const JsonScanner::Step st = scan_.feed(c);
    if (st == JsonScanner::Step::kError || (first && c != '{') || raw_.size() > max_call_bytes_) {
      give_up();
      return;
    }
    if (!scan_.started()) return;
    if (first) em_.begin_call(name_);
    em_.args(std::string_view(&c, 1));
    if (st == JsonScanner::Step::kDone) json_done_ = true;
  }

  // The call's text stops being a call: released as text (or, once begun, the call is aborted).
  void give_up() {
    if (em_.call_open()) em_.abort_call(raw_);
    else em_.content(raw_);
    raw_.clear();
    failed_ = true;
  }

  void end_call_body(bool at_end) {
    if (!failed_) {
      if (json_done_) {
        em_.end_call();
      } else {
        raw_.append(pending_);
        pending_.clear();
        give_up();
      }
    } else if (at_end) {
      em_.content(pending_);
      pending_.clear();
    }
    failed_ = false;
    json_done_ = false;
    raw_.clear();
  }

  Emitter& em_;
  bool reasoning_;
  bool tools_;
  size_t max_call_bytes_;
  S s_ = S::kOutside;
  Kind kind_ = Kind::kContent;
  std::string pending_, header_, name_, raw_;
  JsonScanner scan_;
  bool json_done_ = false;
  bool failed_ = false;
};

}  // namespace

std::unique_ptr<HarmonyParser> make_harmony(Emitter* em, const OutputParserOptions& o) {
  return std::make_unique<Harmony>(em, o);
}

}  // namespace kiln::text::output
