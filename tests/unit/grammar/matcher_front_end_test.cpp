// The matcher on grammars from the text front ends (regex, choice, GBNF): masks equal the brute
// force along random walks, and what the grammars accept.
#include <random>

#include <gtest/gtest.h>

#include "kiln/grammar/grammar_text.h"
#include "kiln/grammar/matcher.h"
#include "kiln/grammar/regex_text.h"
#include "matcher_test_util.h"

namespace kiln::grammar {
namespace {

void random_walks(const Grammar& g, const std::string& what) {
  auto cg = CompiledGrammar::compile(g);
  ASSERT_TRUE(cg.is_ok()) << what << ": " << cg.status().to_string();
  for (uint32_t seed = 0; seed < 20; ++seed) {
    std::mt19937 rng(seed);
    auto v = test::random_vocabulary(rng);
    Matcher m(*cg, v);
    std::vector<uint32_t> mask(v->mask_words());
    for (int step = 0; step < 12; ++step) {
      m.fill_next_token_mask(mask);
      ASSERT_EQ(mask, test::brute_force_mask(m, *v)) << what << " seed " << seed << " step " << step;
      std::vector<int32_t> ok = test::allowed_ids(mask);
      std::erase(ok, 0);
      if (ok.empty()) break;
      ASSERT_TRUE(m.accept_token(ok[rng() % ok.size()]));
    }
  }
}

bool accepts(const Grammar& g, std::string_view text) {
  auto cg = CompiledGrammar::compile(g);
  if (!cg.is_ok()) return false;
  std::mt19937 rng(1);
  Matcher m(*cg, test::random_vocabulary(rng));
  return m.accept_bytes(text) && m.can_end();
}

TEST(MatcherFrontEnds, Regex) {
  auto g = regex_grammar(R"([a-c]{1,3}(x|y)*"[^"]{0,4}"|[0-2]+\.e?)");
  ASSERT_TRUE(g.is_ok()) << g.status().to_string();
  random_walks(*g, "regex");
  EXPECT_TRUE(accepts(*g, "abxy\"é\""));
  EXPECT_TRUE(accepts(*g, "12.e"));
  EXPECT_FALSE(accepts(*g, "abcd\"\""));
  EXPECT_FALSE(accepts(*g, "a\"12345\""));
}

TEST(MatcherFrontEnds, Choice) {
  const std::vector<std::string> choices = {"a", "ab", "abc", "b\"c", "xy"};
  auto g = choice_grammar(choices);
  ASSERT_TRUE(g.is_ok()) << g.status().to_string();
  random_walks(*g, "choice");
  for (const auto& c : choices) EXPECT_TRUE(accepts(*g, c)) << c;
  EXPECT_FALSE(accepts(*g, "abcd"));
  EXPECT_FALSE(accepts(*g, "x"));
}

TEST(MatcherFrontEnds, Gbnf) {
  auto g = grammar_from_text(R"(root ::= item ("," ws item)*
item ::= "[" ws (num ("," ws num)*)? ws "]" | "\"" [a-c]* "\""
num ::= "-"? [0-9]+ ("." [0-9]+)?
ws ::= " "?
)");
  ASSERT_TRUE(g.is_ok()) << g.status().to_string();
  random_walks(*g, "gbnf");
  EXPECT_TRUE(accepts(*g, "[1, -2.5],\"abc\", [ ]"));
  EXPECT_FALSE(accepts(*g, "[1,]"));
}

}  // namespace
}  // namespace kiln::grammar
