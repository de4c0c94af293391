// Hermes/Qwen3 tool calls and <think> reasoning, on Qwen3's real tokenization.
#include "output_parser_test_util.h"

namespace kiln::text::parse_test {
namespace {

const OutputParserOptions kHermes = options("hermes");
const OutputParserOptions kHermesThink = options("hermes", "think");

TEST(HermesParser, TextThenCall) {
  expect_events(kHermes, "qwen3",
                "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"location\": \"Paris\", "
                "\"unit\": \"celsius\"}}\n</tool_call>",
                {"content:Let me check.", "begin#0:get_weather",
                 "args#0:{\"location\": \"Paris\", \"unit\": \"celsius\"}", "end#0"});
}

TEST(HermesParser, ParallelCalls) {
  const ParseRun r = expect_events(
      kHermes, "qwen3",
      "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"location\": \"Paris\"}}\n</tool_call>\n"
      "<tool_call>\n{\"name\": \"get_time\", \"arguments\": {\"tz\": \"CET\"}}\n</tool_call>",
      {"begin#0:get_weather", "args#0:{\"location\": \"Paris\"}", "end#0", "begin#1:get_time",
       "args#1:{\"tz\": \"CET\"}", "end#1"});
  EXPECT_EQ(r.num_tool_calls, 2);
}

TEST(HermesParser, EmptyAndMissingArguments) {
  expect_events(kHermes, "qwen3", "<tool_call>\n{\"name\": \"get_time\", \"arguments\": {}}\n</tool_call>",
                {"begin#0:get_time", "args#0:{}", "end#0"});
  expect_events(kHermes, "qwen3", "<tool_call>\n{\"name\": \"get_time\"}\n</tool_call>",
                {"begin#0:get_time", "args#0:{}", "end#0"});
}

TEST(HermesParser, UnicodeArguments) {
  expect_events(kHermes, "qwen3",
                "<tool_call>\n{\"name\": \"translate\", \"arguments\": {\"text\": \"Zürich 東京 🚀\", \"q\": "
                "\"\\u00e9\\\"\"}}\n</tool_call>",
                {"begin#0:translate", "args#0:{\"text\": \"Zürich 東京 🚀\", \"q\": \"\\u00e9\\\"\"}", "end#0"});
}

TEST(HermesParser, ArgumentsAsAJsonStringAreDecoded) {
  expect_events(kHermes, "qwen3",
                "<tool_call>\n{\"name\": \"f\", \"arguments\": \"{\\\"a\\\": [1, 2]}\"}\n</tool_call>",
                {"begin#0:f", "args#0:{\"a\": [1, 2]}", "end#0"});
}

TEST(HermesParser, ArgumentsBeforeTheName) {
  expect_events(kHermes, "qwen3",
                "<tool_call>\n{\"arguments\": {\"x\": 1.5e3, \"y\": null}, \"name\": \"f\"}\n</tool_call>",
                {"begin#0:f", "args#0:{\"x\": 1.5e3, \"y\": null}", "end#0"});
}

TEST(HermesParser, NestedArgumentsAndOtherKeys) {
  expect_events(kHermes, "qwen3",
                "<tool_call>\n{\"id\": 7, \"name\": \"search\", \"arguments\": {\"filter\": {\"tags\": [\"a\", "
                "{\"b\": true}], \"n\": -0.5}}, \"extra\": false}\n</tool_call>",
                {"begin#0:search", "args#0:{\"filter\": {\"tags\": [\"a\", {\"b\": true}], \"n\": -0.5}}", "end#0"});
}

// What is not a valid call stays text, exactly as written.
TEST(HermesParser, MalformedCallsStayText) {
  for (const std::string& text : {
           std::string("Sure.\n<tool_call>\nnot json\n</tool_call>\nDone."),
           std::string("<tool_call>\n{\"arguments\": {\"a\": 1}}\n</tool_call>"),         // no name
           std::string("<tool_call>\n{\"name\": 5, \"arguments\": {}}\n</tool_call>"),     // name not a string
           std::string("<tool_call>\n{\"name\": \"\", \"arguments\": {}}\n</tool_call>"),  // empty name
           std::string("<tool_call>\n{\"name\": \"f\", \"arguments\": [1]}\n</tool_call>"),
           std::string("<tool_call>\n{\"name\": \"f\", \"arguments\": \"not json\"}\n</tool_call>"),
           std::string("a <tool_ b <tool_call"),  // marker prefixes that are not markers
           std::string("<tool_call>\n{\"name\": \"f\", \"argu"),  // unfinished before the arguments
       }) {
    SCOPED_TRACE(text);
    expect_events(kHermes, "qwen3", text, {"content:" + text});
  }
}

// A call that breaks after its arguments began cannot be taken back from a stream: it ends aborted,
// carrying its raw text, and what follows is text.
TEST(HermesParser, CallBrokenAfterItsArgumentsBegan) {
  const ParseRun r = expect_events(
      kHermes, "qwen3", "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": 1,}}\n</tool_call>",
      {"begin#0:f", "args#0:{\"a\": 1,", "abort#0:<tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": 1,}",
       "content:}\n</tool_call>"});
  EXPECT_EQ(r.num_tool_calls, 0);
  expect_events(kHermes, "qwen3", "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": \"unfini",
                {"begin#0:f", "args#0:{\"a\": \"unfini",
                 "abort#0:<tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": \"unfini"});
}

TEST(HermesParser, TextAfterACallStaysText) {
  expect_events(kHermes, "qwen3", "<tool_call>\n{\"name\": \"f\", \"arguments\": {}}\nextra</tool_call> ok",
                {"begin#0:f", "args#0:{}", "end#0", "content:\nextra</tool_call> ok"});
  // The model may stop right after the object.
  expect_events(kHermes, "qwen3", "<tool_call>\n{\"name\": \"f\", \"arguments\": {}}",
                {"begin#0:f", "args#0:{}", "end#0"});
}

TEST(HermesParser, NoToolsOfferedLeavesEverythingContent) {
  const std::string text =
      "Hi <tool_call>\n{\"name\": \"f\", \"arguments\": {}}\n</tool_call>\n<tool_call>\n{\"name\": \"g\"}";
  expect_events(options("hermes", "", false), "qwen3", text, {"content:" + text});
  expect_events(options("", "", true), "qwen3", text, {"content:" + text});
}

TEST(HermesParser, WhitespaceAroundCalls) {
  expect_events(kHermes, "qwen3", "  Hello\n\n  world  \n\n",
                {"content:  Hello\n\n  world  \n\n"});
  expect_events(kHermes, "qwen3", "Hello\n\n<tool_call>\n{\"name\": \"f\"}\n</tool_call>\n\nBye",
                {"content:Hello", "begin#0:f", "args#0:{}", "end#0", "content:Bye"});
}

TEST(ThinkReasoning, ReasoningThenCall) {
  const ParseRun r = expect_events(
      kHermesThink, "qwen3",
      "<think>\nThe user wants the weather. I call <tool_call> later.\n</think>\n\n<tool_call>\n{\"name\": "
      "\"get_weather\", \"arguments\": {\"location\": \"東京\"}}\n</tool_call>",
      {"reasoning:The user wants the weather. I call <tool_call> later.", "begin#0:get_weather",
       "args#0:{\"location\": \"東京\"}", "end#0"});
  EXPECT_GT(r.reasoning_tokens, 5);
}

TEST(ThinkReasoning, OpenAtStart) {
  OutputParserOptions o = kHermesThink;
  o.reasoning_open_at_start = true;
  const std::string text = "Let me think.\nStill </thinking.\n</think>\n\nThe answer is 4.";
  const ParseRun r = expect_events(o, "qwen3", text,
                              {"reasoning:Let me think.\nStill </thinking.", "content:The answer is 4."});
  // The tokens up to and including </think>.
  auto tok = tok_test::shared_tokenizer("qwen3");
  ASSERT_TRUE(tok.is_ok());
  auto ids = (*tok)->encode("Let me think.\nStill </thinking.\n</think>", false);
  ASSERT_TRUE(ids.is_ok());
  EXPECT_EQ(r.reasoning_tokens, static_cast<int32_t>(ids->size()));
}

TEST(ThinkReasoning, NoThinkBlockIsContent) {
  expect_events(kHermesThink, "qwen3", "  Plain answer with <think> inside.",
                {"content:  Plain answer with <think> inside."});
  expect_events(kHermesThink, "qwen3", "<thin", {"content:<thin"});
  const ParseRun r = expect_events(options("", "think", false), "qwen3", "Hello", {"content:Hello"});
  EXPECT_EQ(r.reasoning_tokens, 0);
}

TEST(ThinkReasoning, UnclosedReasoningStaysReasoning) {
  expect_events(options("hermes", "think", false), "qwen3", "<think>\nhmm, <tool_call> maybe </thi",
                {"reasoning:hmm, <tool_call> maybe </thi"});
}

TEST(ThinkReasoning, EmptyReasoning) {
  expect_events(kHermesThink, "qwen3", "<think>\n\n</think>\n\nHi", {"content:Hi"});
}

TEST(OutputParser, IdsAreDeterministicPerSeedAndDistinct) {
  const std::string text =
      "<tool_call>\n{\"name\": \"a\"}\n</tool_call>\n<tool_call>\n{\"name\": \"b\"}\n</tool_call>";
  const ParseRun r1 = run_deltas(kHermes, {text});
  const ParseRun r2 = run_deltas(kHermes, {text});
  std::vector<std::string> ids;
  for (size_t i = 0; i < r1.events.size(); ++i) {
    if (r1.events[i].kind != OutputEvent::Kind::kToolCallBegin) continue;
    EXPECT_EQ(r1.events[i].id, r2.events[i].id);
    ids.push_back(r1.events[i].id);
  }
  ASSERT_EQ(ids.size(), 2u);
  EXPECT_NE(ids[0], ids[1]);
}

TEST(OutputParser, RejectsUnknownAndMismatchedParsers) {
  EXPECT_FALSE(OutputParser::create(options("nope")).is_ok());
  EXPECT_FALSE(OutputParser::create(options("", "nope")).is_ok());
  EXPECT_FALSE(OutputParser::create(options("hermes", "harmony")).is_ok());
  EXPECT_FALSE(OutputParser::create(options("harmony", "think")).is_ok());
  for (const std::string& name : tool_parser_names()) EXPECT_TRUE(OutputParser::create(options(name)).is_ok());
}

// Bounds: a call larger than the limit is given up and released as text; a long run of whitespace is
// not held without end.
TEST(OutputParser, Limits) {
  OutputParserOptions o = kHermes;
  o.max_call_bytes = 64;
  o.max_held_whitespace = 8;
  const std::string big = "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": \"" + std::string(100, 'x') + "\"}}";
  const ParseRun r = run_deltas(o, {big});
  bool aborted = false;
  for (const OutputEvent& e : r.events) aborted = aborted || e.aborted;
  EXPECT_TRUE(aborted);
  std::vector<OutputEvent> out;
  auto p = OutputParser::create(o);
  ASSERT_TRUE(p.is_ok());
  (*p)->push(0, std::string(20, ' '), &out);
  ASSERT_FALSE(out.empty());  // released before the output ends
  EXPECT_GE(out[0].text.size(), 9u);
  EXPECT_LT(out[0].text.size(), 20u);
}

// A non-streaming response: the message is assembled from the events, an aborted call put back as
// text where it stood.
TEST(OutputParser, ParsedOutputAssemblesTheMessage) {
  const std::string broken = "<tool_call>\n{\"name\": \"g\", \"arguments\": {\"a\": tru";
  const std::string text = "<think>\nplan\n</think>\n\nOk.\n<tool_call>\n{\"name\": \"f\", \"arguments\": {\"x\": 1}}\n"
                           "</tool_call>\n" + broken;
  for (const auto& deltas : {std::vector<std::string>{text}, utf8_chars(text)}) {
    const ParseRun r = run_deltas(kHermesThink, deltas);
    ParsedOutput m;
    m.add(r.events);
    EXPECT_EQ(m.reasoning, "plan");
    EXPECT_EQ(m.content, "Ok." + broken);
    ASSERT_EQ(m.tool_calls.size(), 1u);
    EXPECT_EQ(m.tool_calls[0].name, "f");
    EXPECT_EQ(m.tool_calls[0].arguments, "{\"x\": 1}");
    EXPECT_EQ(m.tool_calls[0].id.size(), 29u);
    EXPECT_EQ(r.num_tool_calls, 1);
  }
}

TEST(OutputParser, PromptOpensReasoning) {
  EXPECT_TRUE(prompt_opens_reasoning("<|im_start|>assistant\n<think>\n", "think"));
  EXPECT_FALSE(prompt_opens_reasoning("<|im_start|>assistant\n<think>\n\n</think>\n\n", "think"));
  EXPECT_FALSE(prompt_opens_reasoning("<|im_start|>assistant\n", "think"));
  EXPECT_FALSE(prompt_opens_reasoning("<think>\n", ""));
  EXPECT_TRUE(prompt_opens_reasoning("[INST]hi[/INST][THINK]", "mistral"));
}

}  // namespace
}  // namespace kiln::text::parse_test
