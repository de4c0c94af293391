// The grammars the text front ends build, run by the real matcher: it must accept exactly the
// strings the reference recognizer (grammar_reference.h) accepts.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "kiln/grammar/grammar_text.h"
#include "kiln/grammar/matcher.h"
#include "kiln/grammar/regex_text.h"
#include "unit/grammar/grammar_reference.h"

namespace kiln::grammar {
namespace {

std::shared_ptr<const TokenVocabulary> byte_vocabulary() {
  static const auto v = [] {
    std::vector<std::string> toks = {"</s>"};
    for (int b = 0; b < 256; ++b) toks.emplace_back(1, static_cast<char>(b));
    std::vector<bool> special(toks.size(), false);
    special[0] = true;
    return TokenVocabulary::from_bytes(toks, special, {0});
  }();
  return v;
}

bool matcher_accepts(const std::shared_ptr<const CompiledGrammar>& cg, std::string_view s) {
  Matcher m(cg, byte_vocabulary());
  return m.accept_bytes(s) && m.can_end() && m.accept_token(0);
}

void expect_agreement(const Grammar& g, const std::vector<std::string>& strings) {
  auto cg = CompiledGrammar::compile(g);
  ASSERT_TRUE(cg.is_ok()) << cg.status().to_string() << "\n" << g.to_string();
  for (const auto& s : strings) {
    EXPECT_EQ(matcher_accepts(*cg, s), reference::accepts(g, s)) << s << "\n" << g.to_string();
  }
}

TEST(GrammarTextMatcher, TextGrammars) {
  struct Case {
    const char* text;
    std::vector<std::string> strings;
  };
  const Case cases[] = {
      {"root ::= ident (\",\" ident){2,3}\nident ::= [a-zA-Z_] [a-zA-Z_0-9]*",
       {"a,b,c", "_x,y1,z,w", "a,b", "a,b,c,d,e", "1a,b,c", ""}},
      {"root ::= p{2,3} | \"x\" p{0,} | \"y\" p{1} | \"z\" p{0,2}\np ::= \"(\" p* \")\"",
       {"()()", "()(())()", "x", "x()()()", "y(())", "z", "z()()", "()", "()()()()", "y", "z()()()"}},
      {"root ::= ws\nws ::= [ ]*", {"", "   ", "x"}},
      {"root ::= \"a\" (\"b\"? | r) \"c\"\nr ::= \"(\" r? \")\"", {"ac", "abc", "a(())c", "abbc", "a(c"}},
      {"start: value\n?value: \"[\" [value (\",\" value)*] \"]\" | SIGNED_NUMBER | ESCAPED_STRING\n"
       "%import common.SIGNED_NUMBER\n%import common.ESCAPED_STRING\n%import common.WS\n%ignore WS\n",
       {"[]", " [ 1 , [\"a\\\"\" ] ] ", "[1,]", "[1 2]", "\"x", "-2.5e3", ""}},
      {"start: \"a\"~2 [\"b\"] \"c\"~1..2 \"x\"i (\"y\" | \"z\")*\n", {"aacX", "aabccxyzy", "acx", "aabcccx"}},
  };
  for (const Case& c : cases) {
    auto g = grammar_from_text(c.text);
    ASSERT_TRUE(g.is_ok()) << g.status().to_string();
    expect_agreement(*g, c.strings);
  }
}

TEST(GrammarTextMatcher, ChoiceGrammar) {
  std::vector<std::string> choices = {"yes", "no", "yes please", ""};
  auto g = choice_grammar(choices);
  ASSERT_TRUE(g.is_ok());
  expect_agreement(*g, {"yes", "no", "yes please", "", "ye", "yesno", "yes please!"});
}

// regex_grammar over the JSON Schema corpus patterns: strings sampled from each and edits of them.
TEST(GrammarTextMatcher, CorpusRegexes) {
  const char* env = std::getenv("KILN_SOURCE_DIR");
  std::ifstream f(std::string(env != nullptr ? env : KILN_SOURCE_DIR) + "/tests/fixtures/grammar/jsonschema_patterns.json");
  ASSERT_TRUE(f.good());
  auto patterns = nlohmann::json::parse(f).get<std::vector<std::string>>();
  std::mt19937 rng(99);
  size_t compiled = 0;
  for (const std::string& p : patterns) {
    auto g = regex_grammar(p);
    if (!g.is_ok()) continue;
    std::vector<std::string> strings = {""};
    RegexId whole = g->terminals.empty() ? g->regexes.empty() : g->terminals[0].regex;
    for (int i = 0; i < 4; ++i) {
      std::string s;
      if (!reference::sample(g->regexes, whole, rng, &s, 200)) continue;
      strings.push_back(s);
      if (!s.empty()) strings.push_back(s.substr(0, s.size() - 1));
      strings.push_back(s + "x");
    }
    auto cg = CompiledGrammar::compile(*g);
    if (!cg.is_ok()) {
      ADD_FAILURE() << p << ": " << cg.status().to_string();
      continue;
    }
    ++compiled;
    for (const auto& s : strings) {
      bool want = reference::accepts(*g, s);
      EXPECT_EQ(matcher_accepts(*cg, s), want) << "pattern " << p << " string " << nlohmann::json(s).dump();
    }
  }
  EXPECT_GT(compiled, 500u);
}

}  // namespace
}  // namespace kiln::grammar
