// Qwen3-Coder / GLM XML calls (Qwen3's tokenizer) and Llama 3.1 calls (Llama 3's tokenizer; its npm
// package is Llama 3.0's vocabulary, where <|python_tag|> is literal text rather than one token).
#include "output_parser_test_util.h"

namespace kiln::text::parse_test {
namespace {

const OutputParserOptions kCoder = options("qwen3_coder");
const OutputParserOptions kLlama = options("llama3");
const OutputParserOptions kPythonic = options("pythonic");

TEST(Qwen3CoderParser, CallWithTypedParameters) {
  expect_events(kCoder, "qwen3",
                "I'll look.\n<tool_call>\n<function=get_weather>\n<parameter=location>\nSan Francisco, \"CA\"\n"
                "</parameter>\n<parameter=days>\n3\n</parameter>\n<parameter=opts>\n{\"metric\": true}\n"
                "</parameter>\n<parameter=note>\n<b>multi\nline</b>\n</parameter>\n</function>\n</tool_call>",
                {"content:I'll look.", "begin#0:get_weather",
                 "args#0:{\"location\": \"San Francisco, \\\"CA\\\"\", \"days\": 3, \"opts\": {\"metric\": true}, "
                 "\"note\": \"<b>multi\\nline</b>\"}",
                 "end#0"});
}

// The tool's schema decides where it says "string": a zip code that reads as a number stays text.
TEST(Qwen3CoderParser, StringParametersFromTheSchemaStayStrings) {
  const std::string text =
      "<tool_call>\n<function=lookup>\n<parameter=zip>\n94103\n</parameter>\n<parameter=limit>\n5\n"
      "</parameter>\n<parameter=flag>\ntrue\n</parameter>\n</function>\n</tool_call>";
  OutputParserOptions o = kCoder;
  o.parameter_types["other_tool"] = {{"zip", "string"}};
  expect_events(o, "qwen3", text,
                {"begin#0:lookup", "args#0:{\"zip\": 94103, \"limit\": 5, \"flag\": true}", "end#0"});
  o.parameter_types["lookup"] = {{"zip", "string"}, {"limit", "integer"}, {"flag", "string"}};
  expect_events(o, "qwen3", text,
                {"begin#0:lookup", "args#0:{\"zip\": \"94103\", \"limit\": 5, \"flag\": \"true\"}", "end#0"});
}

TEST(Qwen3CoderParser, EmptyArgumentsParallelAndUnicode) {
  const ParseRun r = expect_events(
      kCoder, "qwen3",
      "<tool_call>\n<function=get_time>\n</function>\n</tool_call>\n<tool_call>\n<function=translate>\n"
      "<parameter=text>\nGrüße aus 東京 🚀\n</parameter>\n</function>\n</tool_call>",
      {"begin#0:get_time", "args#0:{}", "end#0", "begin#1:translate", "args#1:{\"text\": \"Grüße aus 東京 🚀\"}",
       "end#1"});
  EXPECT_EQ(r.num_tool_calls, 2);
}

TEST(Qwen3CoderParser, GlmDialect) {
  expect_events(options("glm45"), "qwen3",
                "<tool_call>get_weather\n<arg_key>location</arg_key>\n<arg_value>Paris</arg_value>\n"
                "<arg_key>days</arg_key>\n<arg_value>2</arg_value>\n</tool_call>",
                {"begin#0:get_weather", "args#0:{\"location\": \"Paris\", \"days\": 2}", "end#0"});
  // GLM-4.7 writes it on one line.
  expect_events(kCoder, "qwen3", "<tool_call>f<arg_key>a</arg_key><arg_value>x y</arg_value></tool_call>",
                {"begin#0:f", "args#0:{\"a\": \"x y\"}", "end#0"});
}

TEST(Qwen3CoderParser, MalformedStaysText) {
  for (const std::string& text : {
           std::string("<tool_call>\n<func=f>\n</function>\n</tool_call>"),
           std::string("<tool_call>\n<function=\n"),
           std::string("<tool_call>\n<function=bad name\nmore"),
       }) {
    SCOPED_TRACE(text);
    expect_events(kCoder, "qwen3", text, {"content:" + text});
  }
  // Begun, then cut off: the call ends aborted with its raw text.
  const std::string cut = "<tool_call>\n<function=f>\n<parameter=a>\n1\n</param";
  expect_events(kCoder, "qwen3", cut, {"begin#0:f", "abort#0:" + cut});
}

TEST(Qwen3CoderParser, NoToolsOffered) {
  const std::string text = "<tool_call>\n<function=f>\n</function>\n</tool_call>";
  expect_events(options("qwen3_coder", "", false), "qwen3", text, {"content:" + text});
}

TEST(Llama3Parser, BareJsonAtTheStart) {
  expect_events(kLlama, "llama3", "{\"name\": \"get_weather\", \"parameters\": {\"location\": \"Paris\"}}",
                {"begin#0:get_weather", "args#0:{\"location\": \"Paris\"}", "end#0"});
  expect_events(kLlama, "llama3", " \n{\"type\": \"function\", \"name\": \"f\", \"parameters\": {}}",
                {"begin#0:f", "args#0:{}", "end#0"});
}

TEST(Llama3Parser, PythonTagSeveralCalls) {
  const ParseRun r = expect_events(
      kLlama, "llama3",
      "Checking.<|python_tag|>{\"name\": \"a\", \"parameters\": {\"x\": \"é\"}}; {\"name\": \"b\", \"parameters\": "
      "{\"y\": [1, 2]}}",
      {"content:Checking.", "begin#0:a", "args#0:{\"x\": \"é\"}", "end#0", "begin#1:b", "args#1:{\"y\": [1, 2]}",
       "end#1"});
  EXPECT_EQ(r.num_tool_calls, 2);
  // The end-of-message token closes the calls when it is passed on.
  expect_events(kLlama, "llama3", "<|python_tag|>{\"name\": \"a\", \"parameters\": {}}<|eom_id|>",
                {"begin#0:a", "args#0:{}", "end#0"});
}

TEST(Llama3Parser, BuiltInTools) {
  expect_events(kLlama, "llama3", "<|python_tag|>brave_search.call(query=\"weather in \\\"Paris\\\"\")",
                {"begin#0:brave_search", "args#0:{\"query\": \"weather in \\\"Paris\\\"\"}", "end#0"});
  expect_events(kLlama, "llama3", "<|python_tag|>wolfram_alpha.call(query='2+2', n=3, exact=True)",
                {"begin#0:wolfram_alpha", "args#0:{\"query\": \"2+2\", \"n\": 3, \"exact\": true}", "end#0"});
}

TEST(Llama3Parser, WhatIsNotACallStaysText) {
  for (const std::string& text : {
           std::string("{\"answer\": 42}"),                                // JSON content, no name
           std::string("{\"name\": \"Bob\", \"age\": 3}"),                   // no parameters
           std::string("Use {\"name\": \"f\", \"parameters\": {}} later."),  // not at the start
           std::string("<|python_tag|>import math\nprint(math.pi)"),       // code interpreter
           std::string("<|python_tag|>f.call(x=open('a'))"),               // not a literal
       }) {
    SCOPED_TRACE(text);
    expect_events(kLlama, "llama3", text, {"content:" + text});
  }
  expect_events(kLlama, "llama3", "{\"name\": \"f\", \"parameters\": {}} and then text",
                {"begin#0:f", "args#0:{}", "end#0", "content: and then text"});
}

TEST(Llama3Parser, NoToolsOffered) {
  const std::string text = "{\"name\": \"get_weather\", \"parameters\": {\"location\": \"Paris\"}}";
  expect_events(options("llama3", "", false), "llama3", text, {"content:" + text});
}

TEST(PythonicParser, ListsOfCalls) {
  expect_events(kPythonic, "llama3", "[get_weather(city=\"Paris\", days=3)]",
                {"begin#0:get_weather", "args#0:{\"city\": \"Paris\", \"days\": 3}", "end#0"});
  const ParseRun r = expect_events(
      kPythonic, "llama3", " [get_time(), search(q='caf\u00e9 \\'x\\'', tags=['a', \"b\"], opts={'n': 2, \"ok\": True}, x=None)]",
      {"begin#0:get_time", "args#0:{}", "end#0", "begin#1:search",
       "args#1:{\"q\": \"caf\u00e9 'x'\", \"tags\": [\"a\", \"b\"], \"opts\": {\"n\": 2, \"ok\": true}, \"x\": null}",
       "end#1"});
  EXPECT_EQ(r.num_tool_calls, 2);
  // Python escapes, \u and \U included.
  expect_events(kPythonic, "llama3", "[f(s='a\\tb\\u00e9\\U0001F600')]",
                {"begin#0:f", "args#0:{\"s\": \"a\\tb\u00e9\U0001F600\"}", "end#0"});
  // Tuples become arrays; a trailing comma is Python.
  expect_events(kPythonic, "llama3", "[f(p=(1, 2.5,), q=-1e3,)]",
                {"begin#0:f", "args#0:{\"p\": [1, 2.5], \"q\": -1e3}", "end#0"});
  // Llama 4 marks the list with <|python_start|> (text in this vocabulary).
  expect_events(kPythonic, "llama3", "Sure.<|python_start|>[f(a=1)]",
                {"content:Sure.", "begin#0:f", "args#0:{\"a\": 1}", "end#0"});
}

TEST(PythonicParser, WhatIsNotACallStaysText) {
  for (const std::string& text : {
           std::string("[1, 2, 3]"),                    // a list, not calls
           std::string("[Hello world]"),                 // not a call
           std::string("[f(x=open('a'))]"),              // not a literal
           std::string("[f(1, 2)]"),                     // positional arguments
           std::string("See [f(a=1)] below."),           // not at the start
           std::string("[]"),
       }) {
    SCOPED_TRACE(text);
    expect_events(kPythonic, "llama3", text, {"content:" + text});
  }
  expect_events(options("pythonic", "", false), "llama3", "[f(a=1)]", {"content:[f(a=1)]"});
}

}  // namespace
}  // namespace kiln::text::parse_test
