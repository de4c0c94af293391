#include <gtest/gtest.h>

#include "kiln/grammar/grammar.h"

namespace kiln::grammar {
namespace {

TEST(RegexPool, EqualRegexesShareOneId) {
  RegexPool p;
  RegexId a = p.concat({p.literal("ab"), p.star(p.chars({{'0', '9'}}))});
  RegexId b = p.concat({p.literal("a"), p.literal("b"), p.star(p.chars({{'0', '9'}}))});
  EXPECT_EQ(a, b);
  EXPECT_EQ(p.to_string(a), "ab[0-9]*");
}

TEST(RegexPool, Simplifies) {
  RegexPool p;
  RegexId x = p.literal("x");
  EXPECT_EQ(p.concat({x, p.nothing()}), p.nothing());
  EXPECT_EQ(p.concat({p.empty(), x, p.empty()}), x);
  EXPECT_EQ(p.alt({x, p.nothing(), x}), x);
  EXPECT_EQ(p.repeat(x, 1, 1), x);
  EXPECT_EQ(p.repeat(x, 0, 0), p.empty());
  EXPECT_EQ(p.repeat(x, 3, 2), p.nothing());
  EXPECT_EQ(p.repeat(p.nothing(), 0, 5), p.empty());
  EXPECT_EQ(p.chars({}), p.nothing());
  EXPECT_EQ(p.chars({{0xD800, 0xDFFF}}), p.nothing());  // surrogates are not characters
}

TEST(Ranges, NormalizeAndComplement) {
  auto n = normalize_ranges({{5, 9}, {1, 3}, {4, 4}, {20, 10}});
  ASSERT_EQ(n.size(), 1u);
  EXPECT_EQ(n[0], (CharRange{1, 9}));
  auto c = complement_ranges({{'"', '"'}, {'\\', '\\'}, {0, 0x1F}});
  std::vector<CharRange> want = {{0x20, 0x21}, {0x23, 0x5B}, {0x5D, 0xD7FF}, {0xE000, kMaxCodePoint}};
  EXPECT_EQ(c, want);
}

TEST(Grammar, ValidatesAndPrints) {
  Grammar g;
  uint32_t digit = g.add_terminal(g.regexes.chars({{'0', '9'}}), "digit");
  EXPECT_EQ(g.add_terminal(g.regexes.chars({{'0', '9'}}), "again"), digit);
  uint32_t list = g.add_rule("list");
  g.add_alternative(list, {Symbol::terminal(digit)});
  g.add_alternative(list, {Symbol::rule(list), Symbol::terminal(g.add_terminal(g.regexes.literal(","), "comma")),
                           Symbol::terminal(digit)});
  g.start = list;
  EXPECT_TRUE(g.validate().is_ok());
  EXPECT_EQ(g.to_string(), "*list ::= /[0-9]/ | list /,/ /[0-9]/\n");
  uint32_t empty_rule = g.add_rule("dangling");
  (void)empty_rule;
  EXPECT_FALSE(g.validate().is_ok());
}

}  // namespace
}  // namespace kiln::grammar
