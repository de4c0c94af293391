// Random outputs built from pieces of every family's syntax (markers, their prefixes, JSON, broken
// JSON, whitespace, unicode): whatever the text, the events must not depend on how it is cut into
// deltas, every ended call's arguments must be a JSON object, and without tools offered the text
// must come back unchanged.
#include <random>

#include "output_parser_test_util.h"

namespace kiln::text::parse_test {
namespace {

const std::vector<std::string>& pieces() {
  static const std::vector<std::string> p = {
      "<tool_call>", "</tool_call>", "<tool_", "\n", " ", "{\"name\": \"f\", \"arguments\": ", "{\"a\": 1}", "{}",
      "}", "{", "\"", "\\\"", ",", ":", "[", "]", "x", "é東", "🚀", "<think>", "</think>", "</thi", "<function=g>",
      "<parameter=p>", "</parameter>", "</function>", "<arg_key>", "</arg_key>", "<arg_value>", "</arg_value>",
      "<|python_tag|>", "{\"name\": \"h\", \"parameters\": {\"b\": [true, null]}}", ";", "b.call(q=\"v\")",
      "[TOOL_CALLS]", "[ARGS]", "[CALL_ID]", "[THINK]", "[/THINK]", "<|channel|>", "analysis", "final",
      "commentary to=functions.k ", "<|constrain|>json", "<|message|>", "<|end|>", "<|start|>assistant",
      "<|call|>", "<|return|>", "<｜tool▁calls▁begin｜>", "<｜tool▁call▁begin｜>", "function", "<｜tool▁sep｜>",
      "```json\n", "\n```", "<｜tool▁call▁end｜>", "<｜tool▁calls▁end｜>", "-1.5e3", "tru", "true",
  };
  return p;
}

// Whole calls of each family, so that the random texts hold real calls next to the noise.
const std::vector<std::string>& whole_calls() {
  static const std::vector<std::string> p = {
      "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": 1}}\n</tool_call>",
      "<tool_call>\n<function=g>\n<parameter=p>\n1\n</parameter>\n</function>\n</tool_call>",
      "<|python_tag|>{\"name\": \"h\", \"parameters\": {}}",
      "[TOOL_CALLS]f[ARGS]{\"a\": 1}",
      "<|start|>assistant<|channel|>commentary to=functions.k <|constrain|>json<|message|>{\"x\": 2}<|call|>",
      "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>f<｜tool▁sep｜>{}<｜tool▁call▁end｜><｜tool▁calls▁end｜>",
  };
  return p;
}

TEST(OutputParserFuzz, SplitInvariantAndNothingLost) {
  std::mt19937_64 rng(12345);
  struct Config {
    std::string tool, reasoning;
    bool open;
  };
  const std::vector<Config> configs = {
      {"hermes", "think", false}, {"hermes", "think", true}, {"qwen3_coder", "", false}, {"llama3", "", false},
      {"mistral", "mistral", false}, {"deepseek_v3", "think", true}, {"harmony", "harmony", false},
      {"", "", false},
  };
  for (const Config& c : configs) {
    SCOPED_TRACE(c.tool + "/" + c.reasoning);
    OutputParserOptions o = options(c.tool, c.reasoning);
    o.reasoning_open_at_start = c.open;
    o.max_call_bytes = 200;  // small, so that the limit is hit too
    int calls = 0;
    for (int iter = 0; iter < 400; ++iter) {
      std::string text;
      const int n = 1 + static_cast<int>(rng() % 24);
      for (int i = 0; i < n; ++i) {
        text += rng() % 4 == 0 ? whole_calls()[rng() % whole_calls().size()] : pieces()[rng() % pieces().size()];
      }
      const std::vector<std::string> chars = utf8_chars(text);
      const ParseRun whole = run_deltas(o, {text});
      const auto expected = render(whole.events);
      check_calls(whole.events, c.tool == "mistral");
      calls += whole.num_tool_calls;
      // Random cuts at character boundaries.
      for (int k = 0; k < 6; ++k) {
        std::vector<std::string> deltas;
        std::string cur;
        for (const std::string& ch : chars) {
          cur += ch;
          if (rng() % 4 == 0) {
            deltas.push_back(cur);
            cur.clear();
          }
        }
        deltas.push_back(cur);
        const auto got = render(run_deltas(o, deltas).events);
        if (got != expected) {
          ADD_FAILURE() << "text: " << text;
          EXPECT_EQ(got, expected);
          return;
        }
      }
      // Without tools offered and without reasoning, the text comes back as it is, whatever it holds
      // (harmony excepted: its message headers are the format's, not text).
      if (c.tool == "harmony") continue;
      OutputParserOptions plain = options(c.tool, "", false);
      const auto as_text = render(run_deltas(plain, {text}).events);
      ASSERT_EQ(as_text, (std::vector<std::string>{"content:" + text}));
    }
    if (!c.tool.empty()) {
      EXPECT_GT(calls, 10);
    }
  }
}

}  // namespace
}  // namespace kiln::text::parse_test
