// INTERIM implementation of output_parser.h, replaced by the per-family parsers: `hermes` tool
// calls (<tool_call>{"name": ..., "arguments": {...}}</tool_call>) and `think` reasoning only, on
// text (a call's arguments come as one fragment). Other family names pass text through.
#include <nlohmann/json.hpp>

#include "kiln/core/str.h"
#include "kiln/text/output_parser.h"

namespace kiln::text {

namespace {
OutputEvent event(OutputEvent::Kind kind, std::string text, int32_t index = 0, std::string name = "") {
  OutputEvent e{kind, std::move(text), index, std::move(name), ""};
  return e;
}

constexpr std::string_view kThinkOpen = "<think>", kThinkClose = "</think>";
constexpr std::string_view kCallOpen = "<tool_call>", kCallClose = "</tool_call>";

// How many bytes at the end of `s` could start `marker`.
size_t partial_suffix(std::string_view s, std::string_view marker) {
  for (size_t n = std::min(s.size(), marker.size() - 1); n > 0; --n) {
    if (s.substr(s.size() - n) == marker.substr(0, n)) return n;
  }
  return 0;
}
}  // namespace

struct OutputParser::Impl {
  OutputParserOptions o;
  enum class Mode { kContent, kReasoning, kCall } mode = Mode::kContent;
  std::string buf;
  bool any_output = false;
  bool strip_ws = false;
  int32_t calls = 0;
  int32_t reasoning_tokens = 0;

  bool think() const { return o.reasoning_parser == "think"; }
  bool hermes() const { return o.tool_parser == "hermes" && o.tools_offered; }

  void content(std::string s, std::vector<OutputEvent>* out) {
    if (strip_ws) {
      size_t i = s.find_first_not_of(" \n\r\t");
      if (i == std::string::npos) return;
      s.erase(0, i);
      strip_ws = false;
    }
    if (s.empty()) return;
    any_output = true;
    out->push_back(event(OutputEvent::Kind::kContent, std::move(s)));
  }

  void step(std::vector<OutputEvent>* out, bool final) {
    for (;;) {
      if (mode == Mode::kReasoning) {
        size_t at = buf.find(kThinkClose);
        if (at == std::string::npos) {
          size_t keep = final ? 0 : partial_suffix(buf, kThinkClose);
          if (buf.size() > keep) out->push_back(event(OutputEvent::Kind::kReasoning, buf.substr(0, buf.size() - keep)));
          buf.erase(0, buf.size() - keep);
          return;
        }
        if (at > 0) out->push_back(event(OutputEvent::Kind::kReasoning, buf.substr(0, at)));
        buf.erase(0, at + kThinkClose.size());
        mode = Mode::kContent;
        strip_ws = true;
        any_output = true;
        continue;
      }
      if (mode == Mode::kCall) {
        size_t at = buf.find(kCallClose);
        if (at == std::string::npos) {
          if (final) {
            content(str_cat(kCallOpen, buf), out);
            buf.clear();
          }
          return;
        }
        std::string body = buf.substr(0, at);
        buf.erase(0, at + kCallClose.size());
        mode = Mode::kContent;
        nlohmann::json j = nlohmann::json::parse(body, nullptr, false);
        if (!j.is_discarded() && j.is_object() && j.contains("name") && j["name"].is_string() &&
            (!j.contains("arguments") || j["arguments"].is_object())) {
          const int32_t index = calls++;
          out->push_back(event(OutputEvent::Kind::kToolCallBegin, "", index, j["name"].get<std::string>()));
          out->push_back(event(OutputEvent::Kind::kToolCallArguments,
                               j.contains("arguments") ? j["arguments"].dump() : std::string("{}"), index));
          out->push_back(event(OutputEvent::Kind::kToolCallEnd, "", index));
          any_output = true;
          strip_ws = true;
        } else {
          content(str_cat(kCallOpen, body, kCallClose), out);
        }
        continue;
      }
      // Content: the markers that open reasoning (only before any output) or a call.
      std::vector<std::string_view> markers;
      if (think() && !any_output) markers.push_back(kThinkOpen);
      if (hermes()) markers.push_back(kCallOpen);
      size_t best = std::string::npos;
      std::string_view which;
      for (auto m : markers) {
        size_t at = buf.find(m);
        if (at < best) best = at, which = m;
      }
      if (best == std::string::npos) {
        size_t keep = 0;
        if (!final) {
          for (auto m : markers) keep = std::max(keep, partial_suffix(buf, m));
        }
        if (think() && !any_output && !final && buf.find_first_not_of(" \n\r\t") == std::string::npos) keep = buf.size();
        content(buf.substr(0, buf.size() - keep), out);
        buf.erase(0, buf.size() - keep);
        return;
      }
      content(buf.substr(0, best), out);
      buf.erase(0, best + which.size());
      mode = which == kThinkOpen ? Mode::kReasoning : Mode::kCall;
    }
  }
};

OutputParser::OutputParser(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
OutputParser::~OutputParser() = default;

Result<std::unique_ptr<OutputParser>> OutputParser::create(const OutputParserOptions& o) {
  auto names = tool_parser_names();
  if (!o.tool_parser.empty() && std::find(names.begin(), names.end(), o.tool_parser) == names.end()) {
    return invalid_argument(str_cat("unknown tool parser '", o.tool_parser, "'"));
  }
  if (!o.reasoning_parser.empty() && o.reasoning_parser != "think" && o.reasoning_parser != "harmony") {
    return invalid_argument(str_cat("unknown reasoning parser '", o.reasoning_parser, "'"));
  }
  auto impl = std::make_unique<Impl>();
  impl->o = o;
  if (o.reasoning_open_at_start && impl->think()) impl->mode = Impl::Mode::kReasoning;
  return std::unique_ptr<OutputParser>(new OutputParser(std::move(impl)));
}

void OutputParser::push(int32_t, std::string_view text, std::vector<OutputEvent>* out) {
  if (impl_->mode == Impl::Mode::kReasoning) ++impl_->reasoning_tokens;
  impl_->buf += text;
  impl_->step(out, false);
}

void OutputParser::finish(std::vector<OutputEvent>* out) { impl_->step(out, true); }
int32_t OutputParser::num_tool_calls() const { return impl_->calls; }
int32_t OutputParser::reasoning_tokens() const { return impl_->reasoning_tokens; }

DetectedFormats detect_output_formats(std::string_view chat_template, const Tokenizer&) {
  DetectedFormats f;
  if (chat_template.find("<tool_call>") != std::string_view::npos) f.tool_parser = "hermes";
  if (chat_template.find("<think>") != std::string_view::npos) f.reasoning_parser = "think";
  return f;
}

std::vector<std::string> tool_parser_names() {
  return {"hermes", "qwen3_coder", "llama3", "mistral", "harmony", "deepseek_v3"};
}

}  // namespace kiln::text
