// Parsing and validation of chat and completion requests: each bad field gets a 400 naming it.
#include "kiln/http/openai_request.h"
#include "kiln/http/chat_prompt.h"

#include <gtest/gtest.h>

namespace kiln::http {
namespace {

ApiError chat_error(const std::string& body) {
  ChatRequest r;
  auto e = parse_chat_request(body, &r);
  EXPECT_TRUE(e.has_value()) << body;
  return e.value_or(ApiError{});
}

ApiError completion_error(const std::string& body) {
  CompletionRequest r;
  auto e = parse_completion_request(body, &r);
  EXPECT_TRUE(e.has_value()) << body;
  return e.value_or(ApiError{});
}

const char* kMsgs = R"("messages":[{"role":"user","content":"hi"}])";

std::string chat(const std::string& extra) { return std::string("{\"model\":\"m\",") + kMsgs + extra + "}"; }

TEST(OpenAiRequest, ParsesAFullChatRequest) {
  ChatRequest r;
  std::string body = R"({"model":"kiln-demo","messages":[
      {"role":"system","content":"be brief"},
      {"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]},
      {"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function",
        "function":{"name":"f","arguments":"{\"x\": 1}"}}]},
      {"role":"tool","tool_call_id":"c1","content":"42"}],
    "max_completion_tokens":7,"temperature":0,"top_p":0.5,"top_k":3,"min_p":0.1,
    "presence_penalty":1.5,"frequency_penalty":-1,"repetition_penalty":1.1,"seed":-5,
    "stop":["x","y"],"n":2,"logit_bias":{"15":-100,"7":2.5},"stream":true,
    "stream_options":{"include_usage":true},"user":"u","ignore_eos":true,"logprobs":true,"top_logprobs":3,
    "chat_template_kwargs":{"enable_thinking":false},"unknown_field":{"ignored":true}})";
  auto e = parse_chat_request(body, &r);
  ASSERT_FALSE(e.has_value()) << e->message;
  EXPECT_EQ(r.params.model, "kiln-demo");
  EXPECT_EQ(r.params.max_tokens, 7);
  EXPECT_EQ(r.params.temperature, 0.0);
  EXPECT_EQ(r.params.top_k, 3);
  EXPECT_EQ(r.params.seed, -5);
  EXPECT_EQ(r.params.stop, (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ(r.params.n, 2);
  ASSERT_EQ(r.params.logit_bias.size(), 2u);
  EXPECT_EQ(r.params.logit_bias[0].first, 15);
  EXPECT_TRUE(r.params.stream);
  EXPECT_TRUE(r.params.include_usage);
  EXPECT_TRUE(r.params.ignore_eos);
  EXPECT_EQ(r.params.num_logprobs, 3);
  ASSERT_EQ(r.messages.items().size(), 4u);
  EXPECT_EQ(r.messages.items()[1].dict_data().find("content")->str(), "a\nb");
  const auto* calls = r.messages.items()[2].dict_data().find("tool_calls");
  ASSERT_NE(calls, nullptr);
  const auto* fn = calls->items()[0].dict_data().find("function");
  EXPECT_TRUE(fn->dict_data().find("arguments")->is_dict());  // parsed for the template
  EXPECT_EQ(r.messages.items()[3].dict_data().find("tool_call_id")->str(), "c1");
  ASSERT_EQ(r.template_kwargs.size(), 1u);
  EXPECT_EQ(r.template_kwargs[0].first, "enable_thinking");
}

TEST(OpenAiRequest, ToolsAndToolChoice) {
  ChatRequest r;
  auto e = parse_chat_request(chat(R"(,"tools":[{"type":"function","function":{"name":"get_weather-2",
      "description":"d","strict":true,"parameters":{"type":"object","properties":{"city":{"type":"string"}}}}},
      {"type":"function","function":{"name":"noargs"}}],
      "tool_choice":{"type":"function","function":{"name":"noargs"}},"parallel_tool_calls":false,
      "reasoning_effort":"low")"), &r);
  ASSERT_FALSE(e.has_value()) << e->message;
  ASSERT_EQ(r.tool.tools.size(), 2u);
  EXPECT_EQ(r.tool.tools[0].name, "get_weather-2");
  EXPECT_TRUE(r.tool.tools[0].strict);
  EXPECT_EQ(r.tool.tools[0].parameters_json, R"({"type":"object","properties":{"city":{"type":"string"}}})");
  EXPECT_EQ(r.tool.tools[1].parameters_json, "{}");
  EXPECT_EQ(r.tool.choice, ToolChoice::kNamed);
  EXPECT_EQ(r.tool.named, "noargs");
  EXPECT_FALSE(r.tool.parallel_tool_calls);
  EXPECT_EQ(r.reasoning_effort, "low");
  EXPECT_TRUE(r.tools.is_list());  // offered: the template shows them

  // The grammar hook: what each tool_choice asks to be enforced.
  ToolConstraint named = tool_constraint(r.tool, "hermes");
  EXPECT_EQ(named.kind, ToolConstraint::Kind::kNamedCall);
  ASSERT_EQ(named.tools.size(), 1u);
  EXPECT_EQ(named.tools[0].name, "noargs");
  EXPECT_EQ(named.family, "hermes");
  EXPECT_FALSE(named.parallel);
  r.tool.choice = ToolChoice::kRequired;
  EXPECT_EQ(tool_constraint(r.tool, "hermes").kind, ToolConstraint::Kind::kAnyCall);
  r.tool.choice = ToolChoice::kAuto;
  ToolConstraint lazy = tool_constraint(r.tool, "hermes");
  EXPECT_EQ(lazy.kind, ToolConstraint::Kind::kStrictLazy);  // a strict tool constrains its arguments
  ASSERT_EQ(lazy.tools.size(), 2u);                          // and every tool may still be called
  EXPECT_EQ(lazy.tools[0].name, "get_weather-2");
  r.tool.choice = ToolChoice::kNone;
  EXPECT_EQ(tool_constraint(r.tool, "hermes").kind, ToolConstraint::Kind::kNone);

  // What is enforced: the forced kinds become a tool-call grammar of the family, only them.
  std::optional<grammar::GrammarSpec> spec;
  EXPECT_FALSE(tool_grammar_spec(named, &spec).has_value());
  ASSERT_TRUE(spec.has_value());
  EXPECT_EQ(spec->kind, grammar::GrammarSpec::Kind::kToolCalls);
  EXPECT_EQ(spec->tool_calls.family, "hermes");
  EXPECT_FALSE(spec->tool_calls.parallel);
  ASSERT_EQ(spec->tool_calls.tools.size(), 1u);
  EXPECT_EQ(spec->tool_calls.tools[0].name, "noargs");
  EXPECT_FALSE(tool_grammar_spec(lazy, &spec).has_value());
  ASSERT_TRUE(spec.has_value());  // kStrictLazy: a lazy grammar of every tool, strict ones checked
  EXPECT_TRUE(spec->tool_calls.lazy);
  ASSERT_EQ(spec->tool_calls.tools.size(), 2u);
  EXPECT_EQ(spec->tool_calls.tools[0].parameters_json, r.tool.tools[0].parameters_json);
  EXPECT_EQ(spec->tool_calls.tools[1].parameters_json, "{}");  // not strict: any arguments
  lazy.family = "";  // no tool-call format known: nothing to constrain, and no error under auto
  EXPECT_FALSE(tool_grammar_spec(lazy, &spec).has_value());
  EXPECT_FALSE(spec.has_value());
  named.family = "pythonic";  // Python-literal arguments: no schema compiler for them
  auto err = tool_grammar_spec(named, &spec);
  ASSERT_TRUE(err.has_value());  // a forced call kiln cannot force is refused, never ignored
  EXPECT_EQ(err->param, "tool_choice");
  EXPECT_NE(err->message.find("pythonic"), std::string::npos);

  ChatRequest none;
  ASSERT_FALSE(parse_chat_request(chat(R"(,"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":"none")"),
                                  &none).has_value());
  EXPECT_TRUE(none.tools.is_none());  // not shown to the model
  EXPECT_FALSE(none.tool.offered());
}

TEST(OpenAiRequest, AssistantToolCallTurnWithNullContentRendersAsEmptyText) {
  ChatRequest r;
  ASSERT_FALSE(parse_chat_request(R"({"model":"m","messages":[{"role":"user","content":"q"},
      {"role":"assistant","content":null,"tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}]}]})",
                                  &r).has_value());
  const text::jinja::Value* content = r.messages.items()[1].dict_data().find("content");
  ASSERT_NE(content, nullptr);
  EXPECT_TRUE(content->is_string());
  EXPECT_EQ(content->str(), "");
}

TEST(OpenAiRequest, MalformedBodies) {
  EXPECT_NE(chat_error("{\"model\": ").message.find("could not parse the JSON body"), std::string::npos);
  EXPECT_NE(chat_error("[1,2]").message.find("must be a JSON object"), std::string::npos);
  EXPECT_EQ(chat_error(std::string("{\"model\":\"\xff\"}")).code, "invalid_encoding");
  EXPECT_NE(chat_error(std::string(1000, '[') + std::string(1000, ']')).message.find("nests deeper"), std::string::npos);
}

struct BadField {
  std::string extra;
  std::string param;
  std::string code;
};

TEST(OpenAiRequest, EveryBadChatFieldIsNamed) {
  std::vector<BadField> cases = {
      {R"(,"temperature":"hot")", "temperature", "invalid_type"},
      {R"(,"temperature":2.5)", "temperature", "invalid_value"},
      {R"(,"top_p":1.5)", "top_p", "invalid_value"},
      {R"(,"top_k":-2)", "top_k", "invalid_value"},
      {R"(,"top_k":1.5)", "top_k", "invalid_type"},
      {R"(,"min_p":-0.1)", "min_p", "invalid_value"},
      {R"(,"repetition_penalty":0)", "repetition_penalty", "invalid_value"},
      {R"(,"presence_penalty":3)", "presence_penalty", "invalid_value"},
      {R"(,"frequency_penalty":true)", "frequency_penalty", "invalid_type"},
      {R"(,"max_tokens":0)", "max_tokens", "invalid_value"},
      {R"(,"max_tokens":"10")", "max_tokens", "invalid_type"},
      {R"(,"max_completion_tokens":-1)", "max_completion_tokens", "invalid_value"},
      {R"(,"n":129)", "n", "invalid_value"},
      {R"(,"max_tokens":5,"max_completion_tokens":9)", "max_completion_tokens", "invalid_value"},
      {R"(,"modalities":["text","audio"])", "modalities", "unsupported_value"},
      {R"(,"audio":{"voice":"alloy","format":"mp3"})", "audio", "unsupported_parameter"},
      {R"(,"prediction":{"type":"content","content":"x"})", "prediction", "unsupported_parameter"},
      {R"(,"web_search_options":{})", "web_search_options", "unsupported_parameter"},
      {R"(,"functions":[{"name":"f"}])", "functions", "unsupported_parameter"},
      {R"(,"function_call":"none")", "function_call", "unsupported_parameter"},
      {R"(,"continue_final_message":true,"add_generation_prompt":false)", "continue_final_message", "invalid_value"},
      {R"(,"continue_final_message":true)", "continue_final_message", "invalid_value"},
      {R"(,"n":0)", "n", "invalid_value"},
      {R"(,"seed":"x")", "seed", "invalid_type"},
      {R"(,"stop":5)", "stop", "invalid_type"},
      {R"(,"stop":[""])", "stop", "invalid_value"},
      {R"(,"stop":["a","b","c","d","e","f","g","h","i","j","k","l","m","n","o","p","q"])", "stop", "invalid_value"},
      {R"(,"logit_bias":{"abc":1})", "logit_bias", "invalid_value"},
      {R"(,"logit_bias":{"5":101})", "logit_bias", "invalid_value"},
      {R"(,"logit_bias":[1])", "logit_bias", "invalid_type"},
      {R"(,"stream":"yes")", "stream", "invalid_type"},
      {R"(,"stream_options":{"include_usage":true})", "stream_options", "invalid_value"},
      {R"(,"logprobs":1)", "logprobs", "invalid_type"},
      {R"(,"top_logprobs":3)", "top_logprobs", "invalid_value"},
      {R"(,"logprobs":true,"top_logprobs":21)", "top_logprobs", "invalid_value"},
      {R"(,"user":5)", "user", "invalid_type"},
      {R"(,"ignore_eos":1)", "ignore_eos", "invalid_type"},
      {R"(,"chat_template_kwargs":[1])", "chat_template_kwargs", "invalid_type"},
      {R"(,"response_format":"json")", "response_format", "invalid_type"},
      {R"(,"response_format":{})", "response_format.type", "missing_required_parameter"},
      {R"(,"response_format":{"type":"xml"})", "response_format.type", "invalid_value"},
      {R"(,"response_format":{"type":"json_schema"})", "response_format.json_schema", "missing_required_parameter"},
      {R"(,"response_format":{"type":"json_schema","json_schema":{"schema":{}}})", "response_format.json_schema.name",
       "missing_required_parameter"},
      {R"(,"response_format":{"type":"json_schema","json_schema":{"name":"a b","schema":{}}})",
       "response_format.json_schema.name", "invalid_value"},
      {R"(,"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":5}})",
       "response_format.json_schema.schema", "invalid_type"},
      {R"(,"response_format":{"type":"json_schema","json_schema":{"name":"x","strict":"yes"}})",
       "response_format.json_schema.strict", "invalid_type"},
      {R"(,"structured_outputs":[])", "structured_outputs", "invalid_type"},
      {R"(,"structured_outputs":{})", "structured_outputs", "invalid_value"},
      {R"(,"structured_outputs":{"regex":"a","choice":["b"]})", "structured_outputs.choice", "invalid_value"},
      {R"(,"structured_outputs":{"choice":[]})", "structured_outputs.choice", "invalid_value"},
      {R"(,"structured_outputs":{"choice":["a",1]})", "structured_outputs.choice", "invalid_type"},
      {R"(,"structured_outputs":{"regex":5})", "structured_outputs.regex", "invalid_type"},
      {R"(,"structured_outputs":{"whitespace_pattern":" "})", "structured_outputs.whitespace_pattern", "unsupported_value"},
      {R"(,"grammar":5)", "grammar", "invalid_type"},
      {R"(,"json_schema":"{}")", "json_schema", "invalid_type"},
      {R"(,"response_format":{"type":"json_object"},"grammar":"root ::= \"a\"")", "grammar", "invalid_value"},
      {R"(,"tool_choice":"required")", "tool_choice", "invalid_value"},  // no tools to require
      {R"(,"tool_choice":"any")", "tool_choice", "invalid_value"},
      {R"(,"tool_choice":5)", "tool_choice", "invalid_type"},
      {R"(,"tools":{})", "tools", "invalid_type"},
      {R"(,"tools":[5])", "tools[0]", "invalid_type"},
      {R"(,"tools":[{"type":"retrieval"}])", "tools[0].type", "unsupported_value"},
      {R"(,"tools":[{"function":{"name":"f"}}])", "tools[0].type", "missing_required_parameter"},
      {R"(,"tools":[{"type":"function"}])", "tools[0].function", "invalid_type"},
      {R"(,"tools":[{"type":"function","function":{}}])", "tools[0].function.name", "missing_required_parameter"},
      {R"(,"tools":[{"type":"function","function":{"name":"get weather"}}])", "tools[0].function.name", "invalid_value"},
      {R"(,"tools":[{"type":"function","function":{"name":""}}])", "tools[0].function.name", "invalid_value"},
      {R"(,"tools":[{"type":"function","function":{"name":"f","parameters":"x"}}])", "tools[0].function.parameters", "invalid_type"},
      {R"(,"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"string"}}}])",
       "tools[0].function.parameters", "invalid_value"},
      {R"(,"tools":[{"type":"function","function":{"name":"f"}},{"type":"function","function":{"name":"f"}}])",
       "tools[1].function.name", "invalid_value"},
      {R"(,"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":{"type":"function","function":{"name":"g"}})",
       "tool_choice", "invalid_value"},
      {R"(,"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":{"type":"function"})",
       "tool_choice.function.name", "missing_required_parameter"},
      {R"(,"parallel_tool_calls":"no")", "parallel_tool_calls", "invalid_type"},
      {R"(,"reasoning_effort":"extreme")", "reasoning_effort", "invalid_value"},
  };
  for (const auto& c : cases) {
    ApiError e = chat_error(chat(c.extra));
    EXPECT_EQ(e.status, 400) << c.extra;
    EXPECT_EQ(e.param, c.param) << c.extra << " -> " << e.message;
    EXPECT_EQ(e.code, c.code) << c.extra << " -> " << e.message;
    EXPECT_NE(e.message.find(c.param), std::string::npos) << e.message;
  }
}

TEST(OpenAiRequest, BadMessages) {
  EXPECT_EQ(chat_error(R"({"model":"m"})").param, "messages");
  EXPECT_EQ(chat_error(R"({"messages":[{"role":"user","content":"x"}]})").param, "model");
  EXPECT_EQ(chat_error(R"({"model":"m","messages":[]})").param, "messages");
  EXPECT_EQ(chat_error(R"({"model":"m","messages":"hi"})").param, "messages");
  EXPECT_EQ(chat_error(R"({"model":"m","messages":[{"content":"x"}]})").param, "messages[0].role");
  EXPECT_EQ(chat_error(R"({"model":"m","messages":[{"role":"wizard","content":"x"}]})").param, "messages[0].role");
  EXPECT_EQ(chat_error(R"({"model":"m","messages":[{"role":"user","content":5}]})").param, "messages[0].content");
  EXPECT_EQ(chat_error(R"({"model":"m","messages":[{"role":"user"}]})").param, "messages[0].content");
  ApiError img = chat_error(
      R"({"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}]})");
  EXPECT_EQ(img.param, "messages[0].content[0].type");
  EXPECT_NE(img.message.find("does not take images"), std::string::npos);
}

TEST(OpenAiRequest, DeveloperRoleBecomesSystemAndNullMeansOmitted) {
  ChatRequest r;
  auto e = parse_chat_request(
      R"({"model":"m","messages":[{"role":"developer","content":"x"}],"temperature":null,"n":null,"stop":null})", &r);
  ASSERT_FALSE(e.has_value());
  EXPECT_EQ(r.messages.items()[0].dict_data().find("role")->str(), "system");
  EXPECT_FALSE(r.params.temperature.has_value());
  EXPECT_EQ(r.params.n, 1);
}

TEST(OpenAiRequest, CompletionPromptShapes) {
  CompletionRequest a, b, c, d;
  ASSERT_FALSE(parse_completion_request(R"({"model":"m","prompt":"hello"})", &a));
  ASSERT_EQ(a.prompts.size(), 1u);
  EXPECT_EQ(a.prompts[0].text, "hello");
  ASSERT_FALSE(parse_completion_request(R"({"model":"m","prompt":["x","y"],"echo":true})", &b));
  EXPECT_EQ(b.prompts.size(), 2u);
  EXPECT_TRUE(b.echo);
  ASSERT_FALSE(parse_completion_request(R"({"model":"m","prompt":[1,2,3],"logprobs":2})", &c));
  ASSERT_EQ(c.prompts.size(), 1u);
  EXPECT_TRUE(c.prompts[0].is_tokens);
  EXPECT_EQ(c.prompts[0].tokens, (std::vector<int64_t>{1, 2, 3}));
  EXPECT_EQ(c.params.num_logprobs, 2);
  ASSERT_FALSE(parse_completion_request(R"({"model":"m","prompt":[[1],[2,3]]})", &d));
  EXPECT_EQ(d.prompts.size(), 2u);
  EXPECT_EQ(d.prompts[1].tokens.size(), 2u);
}

TEST(OpenAiRequest, BadCompletionFields) {
  EXPECT_EQ(completion_error(R"({"model":"m"})").param, "prompt");
  EXPECT_EQ(completion_error(R"({"model":"m","prompt":5})").param, "prompt");
  EXPECT_EQ(completion_error(R"({"model":"m","prompt":[]})").param, "prompt");
  EXPECT_EQ(completion_error(R"({"model":"m","prompt":["a",[1]]})").param, "prompt");
  EXPECT_EQ(completion_error(R"({"model":"m","prompt":[1,"a"]})").param, "prompt");
  EXPECT_EQ(completion_error(R"({"model":"m","prompt":[[]]})").param, "prompt[0]");
  EXPECT_EQ(completion_error(R"({"model":"m","prompt":"x","logprobs":21})").param, "logprobs");
  EXPECT_EQ(completion_error(R"({"model":"m","prompt":"x","echo":"no"})").param, "echo");
  EXPECT_EQ(completion_error(R"({"model":"m","prompt":"x","suffix":"y"})").param, "suffix");
  EXPECT_EQ(completion_error(R"({"model":"m","prompt":"x","best_of":3})").param, "best_of");
}

TEST(OpenAiRequest, ContinueFinalMessageKeepsTheLastAssistantText) {
  ChatRequest r;
  ASSERT_FALSE(parse_chat_request(R"({"model":"m","messages":[{"role":"user","content":"hi"},
      {"role":"assistant","content":"Bonjour, je"}],"continue_final_message":true,"add_generation_prompt":false})", &r));
  EXPECT_TRUE(r.continue_final_message);
  EXPECT_EQ(r.last_role, "assistant");
  EXPECT_EQ(r.last_content, "Bonjour, je");
  auto cut = continue_final_message("<|user|>hi<|end|><|assistant|>Bonjour, je<|end|>\n", r);
  ASSERT_TRUE(cut.is_ok());
  EXPECT_EQ(*cut, "<|user|>hi<|end|><|assistant|>Bonjour, je");
  r.last_content = "  Bonjour, je\n";  // a template that strips the content still matches
  cut = continue_final_message("<|assistant|>Bonjour, je<|end|>", r);
  ASSERT_TRUE(cut.is_ok());
  EXPECT_EQ(*cut, "<|assistant|>Bonjour, je");
  cut = continue_final_message("<|assistant|>rewritten<|end|>", r);
  ASSERT_FALSE(cut.is_ok());
  EXPECT_EQ(cut.status().param(), "continue_final_message");
}

TEST(OpenAiRequest, MaxTokensAbsentOrMisspelledLeavesItToTheDefault) {
  ChatRequest none, misspelled, both;
  ASSERT_FALSE(parse_chat_request(chat(""), &none));
  EXPECT_EQ(none.params.max_tokens, std::nullopt);
  ASSERT_FALSE(parse_chat_request(chat(R"(,"man_tokens":5)"), &misspelled));  // unknown fields are ignored
  EXPECT_EQ(misspelled.params.max_tokens, std::nullopt);
  // Both given: only the same value passes (docs/openai-conformance.md); a null one is absent.
  ASSERT_FALSE(parse_chat_request(chat(R"(,"max_tokens":9,"max_completion_tokens":9)"), &both));
  EXPECT_EQ(both.params.max_tokens, 9);
  ChatRequest one;
  ASSERT_FALSE(parse_chat_request(chat(R"(,"max_tokens":null,"max_completion_tokens":4,"modalities":["text"],"functions":null)"), &one));
  EXPECT_EQ(one.params.max_tokens, 4);
  CompletionRequest c;
  ASSERT_FALSE(parse_completion_request(R"({"model":"m","prompt":"x","max_tokens":null})", &c));
  EXPECT_EQ(c.params.max_tokens, std::nullopt);
  EXPECT_EQ(kCompletionsDefaultMaxTokens, 16);  // OpenAI's documented default for /v1/completions
}

TEST(OpenAiRequest, CompletionBudgetAppliesTheDefaultWithinTheContext) {
  // No max_tokens: the default, or what the context leaves when that is less.
  EXPECT_EQ(completion_budget(10, 1000, std::nullopt, 16), 16);
  EXPECT_EQ(completion_budget(990, 1000, std::nullopt, 16), 10);
  EXPECT_EQ(completion_budget(999, 1000, std::nullopt, 4096), 1);
  // A default of 0 means the rest of the context (kiln before defaults; an explicit choice now).
  EXPECT_EQ(completion_budget(10, 1000, std::nullopt, 0), 990);
  // A requested max_tokens is taken as asked, and must fit with the prompt.
  EXPECT_EQ(completion_budget(10, 1000, 500, 16), 500);
  EXPECT_EQ(completion_budget(10, 1000, 990, 16), 990);
  EXPECT_EQ(completion_budget(10, 1000, 991, 16), std::nullopt);
  // A prompt that fills the context leaves no room, default or not.
  EXPECT_EQ(completion_budget(1000, 1000, std::nullopt, 16), std::nullopt);
  EXPECT_EQ(completion_budget(1200, 1000, std::nullopt, 0), std::nullopt);
}

TEST(OpenAiRequest, StructuredOutputs) {
  using Kind = grammar::GrammarSpec::Kind;
  auto parse = [](const std::string& extra) {
    ChatRequest r;
    auto e = parse_chat_request(chat(extra), &r);
    EXPECT_FALSE(e.has_value()) << extra << " -> " << (e ? e->message : "");
    return r.params.structured;
  };
  EXPECT_FALSE(parse("").has_value());
  EXPECT_FALSE(parse(R"(,"response_format":{"type":"text"})").has_value());
  auto o = parse(R"(,"response_format":{"type":"json_object"})");
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->spec.kind, Kind::kJsonObject);
  // The schema reaches grammar/ as JSON text, its keys in the client's order; strict changes the
  // default of additionalProperties.
  o = parse(R"(,"response_format":{"type":"json_schema","json_schema":{"name":"Person_1-a","strict":true,)"
            R"("schema":{"type":"object","properties":{"z":{"type":"string"},"a":{"type":"integer"}}}}})");
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->spec.kind, Kind::kJsonSchema);
  EXPECT_EQ(o->spec.text, R"({"type":"object","properties":{"z":{"type":"string"},"a":{"type":"integer"}}})");
  EXPECT_FALSE(o->spec.json.default_additional_properties);
  EXPECT_EQ(o->param, "response_format.json_schema.schema");
  o = parse(R"(,"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{}}})");
  ASSERT_TRUE(o.has_value());
  EXPECT_TRUE(o->spec.json.default_additional_properties);
  o = parse(R"(,"response_format":{"type":"json_schema","json_schema":{"name":"x"}})");
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->spec.text, "{}");
  o = parse(R"(,"structured_outputs":{"choice":["yes","no"]})");
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->spec.kind, Kind::kChoice);
  EXPECT_EQ(o->spec.choices, (std::vector<std::string>{"yes", "no"}));
  o = parse(R"(,"structured_outputs":{"regex":"[0-9]{3}","grammar":null})");
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->spec.kind, Kind::kRegex);
  EXPECT_EQ(o->spec.text, "[0-9]{3}");
  o = parse(R"(,"structured_outputs":{"json":"{\"type\":\"integer\"}"})");
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->spec.text, R"({"type":"integer"})");
  o = parse(R"(,"grammar":"root ::= \"a\"")");
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->spec.kind, Kind::kGrammarText);
  o = parse(R"(,"json_schema":{"type":"string","maxLength":3})");
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->param, "json_schema");
  // Completions take the same fields.
  CompletionRequest c;
  EXPECT_FALSE(parse_completion_request(R"({"model":"m","prompt":"x","response_format":{"type":"json_object"}})", &c));
  ASSERT_TRUE(c.params.structured.has_value());
  EXPECT_EQ(c.params.structured->spec.kind, Kind::kJsonObject);
  EXPECT_EQ(completion_error(R"({"model":"m","prompt":"x","structured_outputs":{"regex":1}})").param,
            "structured_outputs.regex");
  const std::string long_name(kMaxSchemaNameLength + 1, 'a');
  EXPECT_EQ(chat_error(chat(R"(,"response_format":{"type":"json_schema","json_schema":{"name":")" + long_name + R"("}})")).param,
            "response_format.json_schema.name");
}

}  // namespace
}  // namespace kiln::http
