// Tool-call grammars (tool_choice required / named): real calls in each family's syntax, tokenized
// by the real Qwen3 tokenizer, pass the Matcher token by token and may end; wrong names, invalid
// arguments, text before the call and a second call when only one is allowed are refused.
#include <gtest/gtest.h>

#include "kiln/grammar/matcher.h"
#include "kiln/grammar/spec.h"
#include "kiln/grammar/tool_call.h"
#include "unit/text/tokenizer_test_util.h"

namespace kiln::grammar {
namespace {

struct Qwen {
  std::shared_ptr<const text::Tokenizer> tok;
  std::shared_ptr<const TokenVocabulary> vocab;
  int32_t im_end = -1;
};

const Qwen& qwen() {
  static const Qwen q = [] {
    Qwen out;
    auto t = text::tok_test::shared_tokenizer("qwen3");
    if (!t.is_ok()) return out;
    out.tok = *t;
    out.im_end = *out.tok->token_to_id("<|im_end|>");
    out.vocab = TokenVocabulary::build(*out.tok, {out.im_end});
    return out;
  }();
  return q;
}

const char* kWeather =
    R"({"type": "object", "properties": {"city": {"type": "string", "maxLength": 20},)"
    R"( "unit": {"enum": ["c", "f"]}}, "required": ["city"], "additionalProperties": false})";
const char* kSearch =
    R"({"type": "object", "properties": {"query": {"type": "string"}, "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3}}, "required": ["query"]})";

ToolCallSpec spec(std::string family, bool parallel = true) {
  ToolCallSpec s;
  s.family = std::move(family);
  s.parallel = parallel;
  s.tools = {{"get_weather", kWeather, false}, {"search", kSearch, false}, {"get_time", "{}", false}};
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

// Feeds `text` as the Qwen3 tokenizer encodes it, checking each token against the mask too; true
// when every token is accepted and the end id is then allowed and accepted.
bool accepts(const std::shared_ptr<const CompiledGrammar>& cg, const std::string& text) {
  const Qwen& q = qwen();
  auto ids = q.tok->encode(text, false);
  EXPECT_TRUE(ids.is_ok());
  Matcher m(cg, q.vocab);
  std::vector<uint32_t> mask(q.vocab->mask_words());
  auto bit = [&](int32_t t) { return (mask[static_cast<size_t>(t) / 32] >> (t % 32) & 1u) != 0; };
  for (int32_t id : *ids) {
    m.fill_next_token_mask(mask);
    const bool allowed = bit(id);
    if (m.accept_token(id) != allowed) ADD_FAILURE() << "mask and accept disagree on token " << id;
    if (!allowed) return false;
  }
  m.fill_next_token_mask(mask);
  return bit(q.im_end) && m.accept_token(q.im_end) && m.ended();
}

TEST(ToolCallGrammar, HermesAcceptsRealCallsTokenizedByQwen3) {
  ASSERT_NE(qwen().vocab, nullptr);
  // The opener is one added (not special) token in Qwen3's vocabulary: the mask must allow it.
  const auto opener = qwen().tok->encode("<tool_call>", false);
  ASSERT_TRUE(opener.is_ok());
  ASSERT_EQ(opener->size(), 1u);
  EXPECT_FALSE(qwen().vocab->is_special((*opener)[0]));
  auto cg = compile(spec("hermes"));
  ASSERT_NE(cg, nullptr);
  EXPECT_TRUE(accepts(cg, "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>"));
  EXPECT_TRUE(accepts(cg, "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"東京\", \"unit\": \"c\"}}\n</tool_call>"));
  EXPECT_TRUE(accepts(cg, "<tool_call>\n{\"name\": \"get_time\", \"arguments\": {}}\n</tool_call>"));
  EXPECT_TRUE(accepts(cg,
                      "<tool_call>\n{\"name\": \"search\", \"arguments\": {\n  \"query\": \"kiln\",\n  \"tags\": [\"a\", \"b\"]\n}}\n"
                      "</tool_call>\n<tool_call>\n{\"name\": \"get_time\", \"arguments\": {\"tz\": \"UTC\"}}\n</tool_call>"));
}

TEST(ToolCallGrammar, HermesRefusesWrongNamesArgumentsAndText) {
  ASSERT_NE(qwen().vocab, nullptr);
  auto cg = compile(spec("hermes"));
  ASSERT_NE(cg, nullptr);
  // Not an offered tool.
  EXPECT_FALSE(accepts(cg, "<tool_call>\n{\"name\": \"get_stock\", \"arguments\": {}}\n</tool_call>"));
  // Arguments against the schema: missing required, wrong type, enum, maxLength, extra property.
  EXPECT_FALSE(accepts(cg, "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {}}\n</tool_call>"));
  EXPECT_FALSE(accepts(cg, "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": 3}}\n</tool_call>"));
  EXPECT_FALSE(accepts(cg, "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"x\", \"unit\": \"k\"}}\n</tool_call>"));
  EXPECT_FALSE(accepts(cg, "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"" + std::string(21, 'a') +
                               "\"}}\n</tool_call>"));
  EXPECT_FALSE(accepts(cg, "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"x\", \"q\": 1}}\n</tool_call>"));
  EXPECT_FALSE(accepts(cg, "<tool_call>\n{\"name\": \"search\", \"arguments\": {\"query\": \"q\", \"tags\": [\"1\", \"2\", \"3\", \"4\"]}}\n</tool_call>"));
  // Arguments that are not an object (an absent schema still means an object).
  EXPECT_FALSE(accepts(cg, "<tool_call>\n{\"name\": \"get_time\", \"arguments\": 5}\n</tool_call>"));
  // Text before the call, no call at all, a missing closer, reasoning first.
  EXPECT_FALSE(accepts(cg, "Sure. <tool_call>\n{\"name\": \"get_time\", \"arguments\": {}}\n</tool_call>"));
  EXPECT_FALSE(accepts(cg, "The weather is fine."));
  EXPECT_FALSE(accepts(cg, ""));
  EXPECT_FALSE(accepts(cg, "<tool_call>\n{\"name\": \"get_time\", \"arguments\": {}}"));
  EXPECT_FALSE(accepts(cg, "<think>x</think><tool_call>\n{\"name\": \"get_time\", \"arguments\": {}}\n</tool_call>"));
}

TEST(ToolCallGrammar, OneCallWhenNotParallelAndOnlyTheNamedTool) {
  ASSERT_NE(qwen().vocab, nullptr);
  const std::string one = "<tool_call>\n{\"name\": \"get_time\", \"arguments\": {}}\n</tool_call>";
  auto single = compile(spec("hermes", /*parallel=*/false));
  ASSERT_NE(single, nullptr);
  EXPECT_TRUE(accepts(single, one));
  EXPECT_FALSE(accepts(single, one + "\n" + one));
  ToolCallSpec named = spec("hermes");
  named.tools.erase(named.tools.begin() + 1, named.tools.end());  // as http passes a named choice
  auto cg = compile(named);
  ASSERT_NE(cg, nullptr);
  EXPECT_TRUE(accepts(cg, "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\"}}\n</tool_call>"));
  EXPECT_FALSE(accepts(cg, one));
}

TEST(ToolCallGrammar, StrictToolsTakeNoUnnamedProperties) {
  ASSERT_NE(qwen().vocab, nullptr);
  ToolCallSpec s = spec("hermes");
  s.tools[1].strict = true;
  auto cg = compile(s);
  ASSERT_NE(cg, nullptr);
  EXPECT_TRUE(accepts(cg, "<tool_call>\n{\"name\": \"search\", \"arguments\": {\"query\": \"q\"}}\n</tool_call>"));
  EXPECT_FALSE(accepts(cg, "<tool_call>\n{\"name\": \"search\", \"arguments\": {\"query\": \"q\", \"x\": 1}}\n</tool_call>"));
  EXPECT_TRUE(accepts(compile(spec("hermes")),
                      "<tool_call>\n{\"name\": \"search\", \"arguments\": {\"query\": \"q\", \"x\": 1}}\n</tool_call>"));
}

TEST(ToolCallGrammar, APrefixClosesAnOpenReasoningBlockFirst) {
  ASSERT_NE(qwen().vocab, nullptr);
  ToolCallSpec s = spec("hermes");
  s.prefix = "</think>\n\n";
  auto cg = compile(s);
  ASSERT_NE(cg, nullptr);
  const std::string call = "<tool_call>\n{\"name\": \"get_time\", \"arguments\": {}}\n</tool_call>";
  EXPECT_TRUE(accepts(cg, "</think>\n\n" + call));
  EXPECT_FALSE(accepts(cg, call));
  GrammarSpec a;
  a.kind = GrammarSpec::Kind::kToolCalls;
  a.tool_calls = s;
  GrammarSpec b = a;
  b.tool_calls.prefix.clear();
  EXPECT_NE(a.cache_key(), b.cache_key());
}

TEST(ToolCallGrammar, Llama3BareObjectsSeparatedBySemicolons) {
  ASSERT_NE(qwen().vocab, nullptr);
  auto cg = compile(spec("llama3"));
  ASSERT_NE(cg, nullptr);
  EXPECT_TRUE(accepts(cg, "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Rome\"}}"));
  EXPECT_TRUE(accepts(cg, "{\"name\": \"get_time\", \"parameters\": {}}; {\"name\": \"search\", \"parameters\": {\"query\": \"q\"}}"));
  EXPECT_FALSE(accepts(cg, "{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Rome\"}}"));
  EXPECT_FALSE(accepts(cg, "{\"name\": \"nope\", \"parameters\": {}}"));
}

TEST(ToolCallGrammar, UnsupportedFamiliesAndBadSchemasAreClearErrors) {
  EXPECT_TRUE(tool_call_family_supported("hermes"));
  EXPECT_TRUE(tool_call_family_supported("mistral"));
  EXPECT_FALSE(tool_call_family_supported("functionary"));
  auto g = tool_call_grammar(spec("functionary"));
  ASSERT_FALSE(g.is_ok());
  EXPECT_NE(g.status().message().find("functionary"), std::string::npos);
  ToolCallSpec bad = spec("hermes");
  bad.tools[1].parameters_json = R"({"type": "object", "properties": {"q": {"type": "nonsense"}}})";
  g = tool_call_grammar(bad);
  ASSERT_FALSE(g.is_ok());
  EXPECT_NE(g.status().message().find("tools[1] (search)"), std::string::npos) << g.status().message();
  ToolCallSpec none;
  none.family = "hermes";
  EXPECT_FALSE(tool_call_grammar(none).is_ok());
}

TEST(ToolCallGrammar, CacheKeysTellToolsFamiliesAndParallelApart) {
  GrammarSpec a;
  a.kind = GrammarSpec::Kind::kToolCalls;
  a.tool_calls = spec("hermes");
  GrammarSpec b = a;
  EXPECT_EQ(a.cache_key(), b.cache_key());
  b.tool_calls.parallel = false;
  EXPECT_NE(a.cache_key(), b.cache_key());
  b = a;
  b.tool_calls.family = "llama3";
  EXPECT_NE(a.cache_key(), b.cache_key());
  b = a;
  b.tool_calls.tools[0].name = "get_weathe";
  b.tool_calls.tools[0].parameters_json = std::string("r") + kWeather;  // same bytes overall, other split
  EXPECT_NE(a.cache_key(), b.cache_key());
  b = a;
  b.tool_calls.tools[2].strict = true;
  EXPECT_NE(a.cache_key(), b.cache_key());
}

TEST(EmbedGrammar, AnEmbeddedSchemaIsARuleOfTheHost) {
  Grammar host;
  const uint32_t start = host.add_rule("start");
  auto inner = json_schema_grammar(R"({"type": "integer", "minimum": 0, "maximum": 99})", {});
  ASSERT_TRUE(inner.is_ok());
  const uint32_t n = embed_grammar(&host, *inner, "n.");
  EXPECT_EQ(host.rules[n].name.rfind("n.", 0), 0u);
  const uint32_t x = host.add_terminal(host.regexes.literal("x="), "x=");
  host.add_alternative(start, {Symbol::terminal(x), Symbol::rule(n)});
  host.start = start;
  auto cg = CompiledGrammar::compile(host);
  ASSERT_TRUE(cg.is_ok()) << cg.status().message();
  auto vocab = TokenVocabulary::from_bytes({"x", "=", "1", "2", "9", "-", "."}, {}, {7});
  for (auto [text, ok] : std::vector<std::pair<std::string, bool>>{{"x=12", true}, {"x=9", true}, {"x=-1", false},
                                                                    {"x=1.2", false}, {"12", false}, {"x=", false}}) {
    Matcher m(*cg, vocab);
    EXPECT_EQ(m.accept_bytes(text) && m.can_end(), ok) << text;
  }
}

}  // namespace
}  // namespace kiln::grammar
