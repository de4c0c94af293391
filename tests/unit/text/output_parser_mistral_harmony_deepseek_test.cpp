// Mistral calls (no Mistral tokenizer ships in node_modules: Llama 2's SentencePiece tokenizer, a
// close relative, carries the literal text), gpt-oss harmony (its real tokenizer) and DeepSeek V3 /
// R1 / V3.1 (DeepSeek V3's real tokenizer).
#include "output_parser_test_util.h"

namespace kiln::text::parse_test {
namespace {

const OutputParserOptions kMistral = options("mistral");
const OutputParserOptions kHarmony = options("harmony", "harmony");
const OutputParserOptions kDeepSeek = options("deepseek_v3");

TEST(MistralParser, JsonListForm) {
  const ParseRun r = expect_events(
      kMistral, "llama2",
      "[TOOL_CALLS] [{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}, {\"name\": \"get_time\", "
      "\"arguments\": {}}]",
      {"begin#0:get_weather", "args#0:{\"city\": \"Paris\"}", "end#0", "begin#1:get_time", "args#1:{}", "end#1"});
  EXPECT_EQ(r.num_tool_calls, 2);
}

TEST(MistralParser, V11Form) {
  expect_events(kMistral, "llama2",
                "Sure.[TOOL_CALLS]get_weather[ARGS]{\"city\": \"Zürich\"}[TOOL_CALLS]get_time[ARGS]{}",
                {"content:Sure.", "begin#0:get_weather", "args#0:{\"city\": \"Zürich\"}", "end#0",
                 "begin#1:get_time", "args#1:{}", "end#1"});
}

TEST(MistralParser, CallIdIsKept) {
  const ParseRun r = run_deltas(kMistral, {"[TOOL_CALLS]f[CALL_ID]abc123XYZ[ARGS]{\"a\": 1}"});
  ASSERT_EQ(render(r.events), (std::vector<std::string>{"begin#0:f", "args#0:{\"a\": 1}", "end#0"}));
  EXPECT_EQ(r.events[0].id, "abc123XYZ");
}

TEST(MistralParser, MalformedStaysText) {
  for (const std::string& text : {
           std::string("[TOOL_CALLS] not a call"),
           std::string("[TOOL_CALLS][{\"arguments\": {}}]"),
           std::string("[TOOL_CALLS]f[ARGS]oops"),
           std::string("[TOOL_CALLS]f[ARG"),
           std::string("[TOOL_ CALLS]"),
       }) {
    SCOPED_TRACE(text);
    expect_events(kMistral, "llama2", text, {"content:" + text});
  }
  expect_events(options("mistral", "", false), "llama2", "[TOOL_CALLS]f[ARGS]{}", {"content:[TOOL_CALLS]f[ARGS]{}"});
}

TEST(MistralParser, ThinkBlockThenCall) {
  const ParseRun r = expect_events(options("mistral", "mistral"), "llama2",
                                   "[THINK]Need the weather [TOOL_CALLS] first.[/THINK]Checking.[TOOL_CALLS]get_weather"
                                   "[ARGS]{\"city\": \"Paris\"}",
                                   {"reasoning:Need the weather [TOOL_CALLS] first.", "content:Checking.",
                                    "begin#0:get_weather", "args#0:{\"city\": \"Paris\"}", "end#0"});
  EXPECT_GT(r.reasoning_tokens, 3);
}

TEST(HarmonyParser, AnalysisThenFinal) {
  const ParseRun r = expect_events(
      kHarmony, "gptoss",
      "<|channel|>analysis<|message|>User greets. Reply.<|end|><|start|>assistant<|channel|>final<|message|>"
      "Hello there!<|return|>",
      {"reasoning:User greets. Reply.", "content:Hello there!"});
  EXPECT_GT(r.reasoning_tokens, 3);
}

TEST(HarmonyParser, AnalysisThenCall) {
  expect_events(kHarmony, "gptoss",
                "<|channel|>analysis<|message|>Need weather.<|end|><|start|>assistant<|channel|>commentary "
                "to=functions.get_weather <|constrain|>json<|message|>{\"location\": \"東京\"}<|call|>",
                {"reasoning:Need weather.", "begin#0:get_weather", "args#0:{\"location\": \"東京\"}", "end#0"});
  // The recipient before the channel, and <|call|> never passed on (it is a stop token).
  expect_events(kHarmony, "gptoss",
                "<|start|>assistant to=functions.get_time<|channel|>commentary json<|message|>{}",
                {"begin#0:get_time", "args#0:{}", "end#0"});
}

TEST(HarmonyParser, PreambleAndParallelCalls) {
  const ParseRun r = expect_events(
      kHarmony, "gptoss",
      "<|channel|>commentary<|message|>Checking both.<|end|><|start|>assistant<|channel|>commentary to=functions.a "
      "<|constrain|>json<|message|>{\"x\": 1}<|call|><|start|>assistant<|channel|>commentary to=functions.b "
      "<|constrain|>json<|message|>{\"y\": [true]}<|call|>",
      {"content:Checking both.", "begin#0:a", "args#0:{\"x\": 1}", "end#0", "begin#1:b", "args#1:{\"y\": [true]}",
       "end#1"});
  EXPECT_EQ(r.num_tool_calls, 2);
}

TEST(HarmonyParser, MalformedCallsAndNoTools) {
  const std::string head = "<|channel|>commentary to=functions.f <|constrain|>json<|message|>";
  expect_events(kHarmony, "gptoss", head + "oops<|call|>", {"content:" + head + "oops"});
  const std::string cut = "{\"a\": \"cu";
  expect_events(kHarmony, "gptoss", head + cut, {"begin#0:f", "args#0:" + cut, "abort#0:" + head + cut});
  const std::string call = "<|channel|>commentary to=functions.f <|constrain|>json<|message|>{}<|call|>";
  expect_events(options("harmony", "harmony", false), "gptoss", call, {"content:" + call});
  expect_events(kHarmony, "gptoss", "plain text, no channel", {"content:plain text, no channel"});
}

TEST(HarmonyParser, ReasoningOffSendsAnalysisToContent) {
  expect_events(options("harmony", "", false), "gptoss",
                "<|channel|>analysis<|message|>think<|end|><|start|>assistant<|channel|>final<|message|>done",
                {"content:thinkdone"});
}

TEST(DeepSeekParser, V3Form) {
  const ParseRun r = expect_events(
      kDeepSeek, "deepseek_v3",
      "Let me check.<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n"
      "{\"location\": \"Paris\"}\n```<｜tool▁call▁end｜>\n<｜tool▁call▁begin｜>function<｜tool▁sep｜>get_time\n"
      "```json\n{}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>",
      {"content:Let me check.", "begin#0:get_weather", "args#0:{\"location\": \"Paris\"}", "end#0",
       "begin#1:get_time", "args#1:{}", "end#1"});
  EXPECT_EQ(r.num_tool_calls, 2);
}

TEST(DeepSeekParser, V31Form) {
  expect_events(kDeepSeek, "deepseek_v3",
                "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>translate<｜tool▁sep｜>{\"text\": \"Grüße 🚀\"}"
                "<｜tool▁call▁end｜><｜tool▁calls▁end｜>",
                {"begin#0:translate", "args#0:{\"text\": \"Grüße 🚀\"}", "end#0"});
  // Stopped without <｜tool▁calls▁end｜>: the calls that ended are whole.
  expect_events(kDeepSeek, "deepseek_v3",
                "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>f<｜tool▁sep｜>{}<｜tool▁call▁end｜>",
                {"begin#0:f", "args#0:{}", "end#0"});
}

TEST(DeepSeekParser, R1ReasoningOpenAtStartThenCall) {
  OutputParserOptions o = options("deepseek_v3", "think");
  o.reasoning_open_at_start = true;
  expect_events(o, "deepseek_v3",
                "The user needs weather.\n</think>\n\n<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>"
                "get_weather\n```json\n{\"city\": \"Oslo\"}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>",
                {"reasoning:The user needs weather.", "begin#0:get_weather", "args#0:{\"city\": \"Oslo\"}", "end#0"});
}

TEST(DeepSeekParser, MalformedStaysText) {
  for (const std::string& text : {
           std::string("<｜tool▁calls▁begin｜>garbage"),
           std::string("<｜tool▁calls▁begin｜><｜tool▁call▁begin｜><｜tool▁sep｜>{}<｜tool▁call▁end｜>"),
           std::string("<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>f\nno fence"),
           std::string("<｜tool▁calls"),
       }) {
    SCOPED_TRACE(text);
    expect_events(kDeepSeek, "deepseek_v3", text, {"content:" + text});
  }
  const std::string text = "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>f<｜tool▁sep｜>{}<｜tool▁call▁end｜>";
  expect_events(options("deepseek_v3", "", false), "deepseek_v3", text, {"content:" + text});
}

}  // namespace
}  // namespace kiln::text::parse_test
