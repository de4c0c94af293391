// The pieces the per-family output parsers share: the event sink, an incremental JSON validator,
// the parser of a {"name": .., "arguments": {..}} object, and the text loop that looks for a
// family's call markers. Internal to text/.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/text/output_parser.h"

namespace kiln::text::output {

// Where the events go; merges neighbouring text events of one kind and numbers the calls.
class Emitter {
 public:
  Emitter(uint64_t seed, bool mistral_ids);
  void set_out(std::vector<OutputEvent>* out) { out_ = out; }

  void content(std::string_view text);
  void reasoning(std::string_view text);
  // `id` empty: a fresh one is drawn.
  void begin_call(std::string name, std::string id = {});
  void args(std::string_view fragment);
  void end_call();
  // The open call broke off: see OutputEvent::aborted.
  void abort_call(std::string raw);
  bool call_open() const { return open_; }
  int32_t num_calls() const { return completed_; }

 private:
  void text_event(OutputEvent::Kind kind, std::string_view text);
  std::vector<OutputEvent>* out_ = nullptr;
  std::mt19937_64 rng_;
  bool mistral_ids_;
  bool open_ = false;
  int32_t next_index_ = 0;
  int32_t completed_ = 0;
};

// Validates one JSON value character by character (RFC 8259, nesting bounded).
class JsonScanner {
 public:
  enum class Step {
    kMore,        // the character belongs to the value, which is not complete yet
    kDone,        // the character completed the value
    kDoneBefore,  // the value (a number) ended before this character, which is not part of it
    kError,
  };
  Step feed(char c);
  void reset() { *this = JsonScanner(); }
  // The first non-whitespace character has been seen.
  bool started() const { return started_; }

 private:
  enum class S : uint8_t { kValue, kValueOrClose, kKeyOrClose, kKey, kString, kEscape, kHex, kLowBackslash,
                           kColon, kLiteral, kNumber, kAfter };
  Step value_end();
  S s_ = S::kValue;
  std::string stack_;
  bool key_ = false;
  bool started_ = false;
  int hex_ = 0;
  uint32_t code_ = 0;      // the code unit of the unicode escape being read
  bool want_low_ = false;  // a high surrogate was read: a low one must follow
  const char* literal_ = nullptr;
  int num_ = 0;  // number sub-state
};

// Parses a call object {"name": "f", "<args key>": {...}} and emits it as a call: the begin when
// the arguments start (or at the end when they come before the name), the arguments as they
// arrive. Arguments written as a JSON string holding JSON are decoded.
class CallObjectParser {
 public:
  enum class Step { kMore, kDone, kFail };
  CallObjectParser(Emitter* em, std::vector<std::string> args_keys, bool args_required)
      : em_(em), args_keys_(std::move(args_keys)), args_required_(args_required) {}
  // Leading whitespace is skipped; the first other character must be '{'.
  Step feed(char c);
  void reset();

 private:
  enum class S : uint8_t { kOpen, kKeyOrClose, kKey, kColon, kValue, kCommaOrClose };
  enum class V : uint8_t { kName, kArgs, kArgsString, kSkip };
  Step close();
  void start_args_stream();
  Emitter* em_;
  std::vector<std::string> args_keys_;
  bool args_required_;
  S s_ = S::kOpen;
  V v_ = V::kSkip;
  bool key_escape_ = false;
  bool after_comma_ = false;
  std::string key_;
  std::string value_;  // the raw JSON of the name, of string arguments, or of arguments before the name
  JsonScanner value_scan_;
  std::string name_;
  bool have_name_ = false;
  bool have_args_ = false;
  bool args_pending_ = false;  // arguments seen before the name, kept in args_before_name_
  std::string args_before_name_;
};

// The text loop of a family: content is scanned for the family's markers (held back while it may
// be one), whitespace in front of a marker is dropped, and a marker starts a call region that the
// family parses character by character. A region the family gives up is released as text.
class ToolFamily {
 public:
  ToolFamily(Emitter* em, const OutputParserOptions& options, std::vector<std::string> markers);
  virtual ~ToolFamily() = default;
  void feed(std::string_view text);
  void finish();

 protected:
  enum class Step { kMore, kDone, kFail };
  // markers[i] was found in the text: a call region begins (i == the number of markers: a region
  // that starts_call_at_beginning() opened; its first character follows).
  virtual void on_marker(size_t i) = 0;
  virtual Step on_call_char(char c) = 0;
  // The output ended inside a call region: kDone where what was read is a whole call (formats
  // whose last call ends with the turn), else kFail.
  virtual Step on_call_finish() { return Step::kFail; }
  // The first non-whitespace character of the output: true starts a call region without a marker.
  virtual bool starts_call_at_beginning(char /*c*/) { return false; }
  // A call of the region is complete: a later failure in the region releases only what follows.
  void new_segment() { raw_.clear(); pre_ws_.clear(); }

  Emitter& em_;

 private:
  void text_char(char c);
  void enter_call(char first, bool from_marker, size_t marker);
  void call_char(char c);
  void fail();
  void flush_ws();
  std::vector<std::string> markers_;
  size_t max_call_bytes_;
  size_t max_held_ws_;
  bool in_call_ = false;
  bool at_start_ = true;      // nothing but whitespace so far
  bool skip_ws_ = false;      // right after a call region: its trailing whitespace is dropped
  std::string pending_;       // a possible marker start
  std::string ws_;            // whitespace held in front of pending_
  std::string pre_ws_;        // the whitespace dropped in front of the current region
  std::string raw_;           // the current region's text
};

// JSON helpers (nlohmann lives in the .cpp).
std::string json_quote(std::string_view s);
// Decodes a JSON string literal ("..." with escapes); false when it is not one.
bool json_unquote(std::string_view literal, std::string* out);
// A value for an argument written as text: itself when it parses as a JSON value, else quoted.
std::string json_value_or_string(std::string_view s);
// True when `s` is one JSON object.
bool is_json_object(std::string_view s);
inline bool is_ws(char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; }
std::string_view trim_ws(std::string_view s);
// Matches `buf` against a set of tags: the index of the one it equals, -2 while it is a prefix of
// some, -1 when it can be none.
inline int match_tags(std::string_view buf, std::initializer_list<std::string_view> tags) {
  int i = 0;
  bool prefix = false;
  for (std::string_view t : tags) {
    if (t == buf) return i;
    if (t.starts_with(buf)) prefix = true;
    ++i;
  }
  return prefix ? -2 : -1;
}

std::unique_ptr<ToolFamily> make_hermes(Emitter* em, const OutputParserOptions& o);
std::unique_ptr<ToolFamily> make_qwen3_coder(Emitter* em, const OutputParserOptions& o);
std::unique_ptr<ToolFamily> make_glm45(Emitter* em, const OutputParserOptions& o);
std::unique_ptr<ToolFamily> make_llama3(Emitter* em, const OutputParserOptions& o);
std::unique_ptr<ToolFamily> make_mistral(Emitter* em, const OutputParserOptions& o);
std::unique_ptr<ToolFamily> make_deepseek_v3(Emitter* em, const OutputParserOptions& o);
std::unique_ptr<ToolFamily> make_pythonic(Emitter* em, const OutputParserOptions& o);
// Python keyword arguments of literals (k="v", n=3, flag=True, xs=[1, 2]) as a JSON object; false
// when they are not plain literals (tool_parser_pythonic.cpp).
bool python_kwargs_to_json(std::string_view s, std::string* out);

// Harmony is a whole output format (channels), not a family inside content.
class HarmonyParser {
 public:
  virtual ~HarmonyParser() = default;
  virtual void feed(std::string_view text) = 0;
  virtual void finish() = 0;
  // Inside the analysis channel now.
  virtual bool in_reasoning() const = 0;
};
std::unique_ptr<HarmonyParser> make_harmony(Emitter* em, const OutputParserOptions& o);

}  // namespace kiln::text::output
