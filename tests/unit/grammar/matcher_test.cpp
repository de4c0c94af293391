// The matcher on hand-checked cases: what a JSON grammar accepts and refuses, lexemes that may end
// in several places, nullable rules, end ids, copies, rollback, the limits, and the grammar cache.
#include <atomic>
#include <random>
#include <thread>

#include <gtest/gtest.h>

#include "kiln/grammar/matcher.h"
#include "kiln/grammar/spec.h"
#include "matcher_test_util.h"

namespace kiln::grammar {
namespace {

std::shared_ptr<const CompiledGrammar> must_compile(Grammar g, CompileOptions o = {}) {
  auto cg = CompiledGrammar::compile(std::move(g), o);
  EXPECT_TRUE(cg.is_ok()) << cg.status().to_string();
  return cg.is_ok() ? *cg : nullptr;
}

// Vocabulary: id 0 the end token, id 1 a special token, then one token per byte.
std::shared_ptr<const TokenVocabulary> byte_vocabulary() {
  std::vector<std::string> toks = {"</s>", "<tool>"};
  for (int b = 0; b < 256; ++b) toks.emplace_back(1, static_cast<char>(b));
  std::vector<bool> special(toks.size(), false);
  special[0] = special[1] = true;
  return TokenVocabulary::from_bytes(toks, special, {0});
}

bool accepts(const std::shared_ptr<const CompiledGrammar>& cg, std::string_view text, bool whole = true) {
  Matcher m(cg, byte_vocabulary());
  if (!m.accept_bytes(text)) return false;
  return !whole || m.can_end();
}

TEST(Matcher, JsonAcceptsAndRefuses) {
  auto cg = must_compile(test::json_grammar(true));
  for (const char* ok : {R"({})", R"({"a":1})", R"( { "a" : [1, 2.5e-3, true, null, "x\"y", {"b":{}}] } )",
                         R"([])", R"("\u00e9é😀")", "-0", "0.5", R"([[[[]]]])", R"({"a":1,"b":2,"c":3})"}) {
    EXPECT_TRUE(accepts(cg, ok)) << ok;
  }
  for (const char* bad : {R"({,})", R"({"a"})", "01", "[1,]", R"({"a":1,})", "tru", "nul l", "\"\x01\"", "1.",
                          "[1 2]", "\"\\x\""}) {
    EXPECT_FALSE(accepts(cg, bad)) << bad;
  }
  // Prefixes are accepted without being whole; bad bytes leave the state unchanged.
  Matcher m(cg, byte_vocabulary());
  EXPECT_TRUE(m.accept_bytes(R"({"a": [1)"));
  EXPECT_FALSE(m.can_end());
  EXPECT_FALSE(m.accept_bytes("}"));
  EXPECT_TRUE(m.accept_bytes("]}"));
  EXPECT_TRUE(m.can_end());
  EXPECT_FALSE(m.must_end());  // trailing whitespace may follow
  EXPECT_FALSE(accepts(cg, "\xC3"));  // half a character is a prefix but not whole
  EXPECT_TRUE(accepts(cg, "\"\xC3", false));
  EXPECT_FALSE(accepts(cg, "\"\xC3\x28", false));  // not UTF-8
}

TEST(Matcher, LexemesEndWhereverTheyMatch) {
  // start ::= A A with A = a+ : "aaa" splits two ways; both must be kept.
  Grammar g;
  const uint32_t a = g.add_terminal(g.regexes.plus(g.regexes.literal("a")), "A");
  const uint32_t b = g.add_terminal(g.regexes.literal("ab"), "AB");
  g.start = g.add_rule("start");
  g.add_alternative(g.start, {Symbol::terminal(a), Symbol::terminal(a)});
  g.add_alternative(g.start, {Symbol::terminal(a), Symbol::terminal(b)});
  auto cg = must_compile(std::move(g));
  EXPECT_FALSE(accepts(cg, "a"));
  EXPECT_TRUE(accepts(cg, "aa"));
  EXPECT_TRUE(accepts(cg, "aaaa"));
  EXPECT_TRUE(accepts(cg, "aab"));  // a + ab: the first lexeme ends before the longest match
  EXPECT_TRUE(accepts(cg, "aaab"));  // aa + ab
  EXPECT_FALSE(accepts(cg, "ab"));   // A AB needs at least "aab"
}

TEST(Matcher, NullableRulesAndTerminals) {
  // start ::= opt X opt ; opt ::= () | D ; D = [0-9]* (matches the empty string too)
  Grammar g;
  RegexPool& p = g.regexes;
  const uint32_t x = g.add_terminal(p.literal("x"), "x");
  const uint32_t d = g.add_terminal(p.star(p.chars({{'0', '9'}})), "digits");
  const uint32_t opt = g.add_rule("opt");
  g.start = g.add_rule("start");
  g.add_alternative(opt, {});
  g.add_alternative(opt, {Symbol::terminal(d)});
  g.add_alternative(g.start, {Symbol::rule(opt), Symbol::terminal(x), Symbol::rule(opt)});
  auto cg = must_compile(std::move(g));
  for (const char* ok : {"x", "1x", "x2", "12x34"}) EXPECT_TRUE(accepts(cg, ok)) << ok;
  for (const char* bad : {"", "xx", "1", "x1x"}) EXPECT_FALSE(accepts(cg, bad)) << bad;
}

TEST(Matcher, EndIdsOnlyWhereTheGrammarEnds) {
  Grammar g;
  g.start = g.add_rule("start");
  g.add_alternative(g.start, {Symbol::terminal(g.add_terminal(g.regexes.literal("ok"), "ok"))});
  auto cg = must_compile(std::move(g));
  auto v = byte_vocabulary();
  Matcher m(cg, v);
  std::vector<uint32_t> mask(v->mask_words());
  m.fill_next_token_mask(mask);
  EXPECT_EQ(test::allowed_ids(mask), std::vector<int32_t>{2 + 'o'});
  EXPECT_FALSE(m.accept_token(0));
  EXPECT_FALSE(m.accept_token(1));  // special
  EXPECT_TRUE(m.accept_token(2 + 'o'));
  EXPECT_TRUE(m.accept_token(2 + 'k'));
  EXPECT_TRUE(m.must_end());
  m.fill_next_token_mask(mask);
  EXPECT_EQ(test::allowed_ids(mask), std::vector<int32_t>{0});
  EXPECT_TRUE(m.accept_token(0));
  EXPECT_TRUE(m.ended());
  EXPECT_FALSE(m.can_end());
  m.fill_next_token_mask(mask);
  EXPECT_TRUE(test::allowed_ids(mask).empty());
  EXPECT_EQ(m.num_tokens(), 3u);
  m.rollback(1);
  EXPECT_FALSE(m.ended());
  EXPECT_TRUE(m.must_end());
  m.rollback(5);  // more than there are: back to the start
  EXPECT_EQ(m.num_tokens(), 0u);
  EXPECT_FALSE(m.can_end());
}

TEST(Matcher, CopiesAreIndependent) {
  auto cg = must_compile(test::json_grammar(false));
  auto v = byte_vocabulary();
  Matcher a(cg, v);
  ASSERT_TRUE(a.accept_bytes("[1"));
  Matcher b = a;
  ASSERT_TRUE(a.accept_bytes("]"));
  ASSERT_TRUE(b.accept_bytes(",2"));
  EXPECT_TRUE(a.can_end());
  EXPECT_FALSE(b.can_end());
  Matcher c = std::move(b);
  EXPECT_TRUE(c.accept_bytes("]"));
  EXPECT_TRUE(c.can_end());
  b = a;
  EXPECT_TRUE(b.can_end());
}

TEST(Matcher, UnproductiveGrammarIsRefused) {
  Grammar g;
  g.start = g.add_rule("start");
  g.add_alternative(g.start, {Symbol::rule(g.start)});  // derives nothing
  auto cg = CompiledGrammar::compile(std::move(g));
  ASSERT_FALSE(cg.is_ok());
  EXPECT_EQ(cg.status().code(), StatusCode::kInvalidArgument);
}

TEST(Matcher, LexerSizeIsLimited) {
  Grammar g;
  RegexPool& p = g.regexes;
  // (a{1000}){1000}: a million NFA states.
  const RegexId big = p.repeat(p.repeat(p.literal("a"), 1000, 1000), 1000, 1000);
  g.start = g.add_rule("start");
  g.add_alternative(g.start, {Symbol::terminal(g.add_terminal(big, "big"))});
  auto cg = CompiledGrammar::compile(std::move(g));
  ASSERT_FALSE(cg.is_ok());
  EXPECT_NE(cg.status().message().find("automaton states"), std::string::npos);
}

TEST(Matcher, DfaStateLimitFailsClosed) {
  // A string of 40 digits then "x": each digit count is a DFA state.
  Grammar g;
  RegexPool& p = g.regexes;
  g.start = g.add_rule("start");
  g.add_alternative(g.start, {Symbol::terminal(g.add_terminal(
                                 p.concat({p.repeat(p.chars({{'0', '9'}}), 40, 40), p.literal("x")}), "t"))});
  auto cg = must_compile(std::move(g), CompileOptions{.max_dfa_states = 10, .max_token_cache_bytes = 1 << 20});
  Matcher m(cg, byte_vocabulary());
  EXPECT_TRUE(m.status().is_ok());
  EXPECT_FALSE(m.accept_bytes(std::string(40, '1') + "x"));
  EXPECT_EQ(m.status().code(), StatusCode::kResourceExhausted);
}

TEST(Matcher, AmbiguityIsLimited) {
  // start ::= start start | start start start | "a" : the Earley sets grow with the text.
  Grammar g;
  g.start = g.add_rule("start");
  const Symbol s = Symbol::rule(g.start);
  g.add_alternative(g.start, {s, s});
  g.add_alternative(g.start, {s, s, s});
  g.add_alternative(g.start, {Symbol::terminal(g.add_terminal(g.regexes.literal("a"), "a"))});
  auto cg = must_compile(std::move(g));
  Matcher m(cg, byte_vocabulary());
  size_t accepted = 0;
  while (accepted < 100'000 && m.accept_bytes("a")) ++accepted;
  EXPECT_LT(accepted, 100'000u);
  EXPECT_EQ(m.status().code(), StatusCode::kResourceExhausted);
  EXPECT_TRUE(m.can_end());  // the state before the refused byte stands
}

TEST(Matcher, NoTokenCacheGivesTheSameMasks) {
  std::mt19937 rng(3);
  auto v = test::random_vocabulary(rng);
  auto cached = must_compile(test::json_grammar(true));
  auto uncached = must_compile(test::json_grammar(true), CompileOptions{.max_token_cache_bytes = 0});
  Matcher a(cached, v), b(uncached, v);
  std::vector<uint32_t> ma(v->mask_words()), mb(v->mask_words());
  for (const char* piece : {"", "{", "\"a", "b\"", ":", " [", "1", "2", ",", "tr", "ue", "]", "}"}) {
    ASSERT_TRUE(a.accept_bytes(piece));
    ASSERT_TRUE(b.accept_bytes(piece));
    a.fill_next_token_mask(ma);
    b.fill_next_token_mask(mb);
    EXPECT_EQ(ma, mb) << piece;
    EXPECT_EQ(ma, test::brute_force_mask(a, *v)) << piece;
  }
}

TEST(Matcher, ThreadsShareOneGrammar) {
  auto cg = must_compile(test::json_grammar(true));
  std::mt19937 rng(5);
  auto v = test::random_vocabulary(rng);
  const std::vector<std::string> texts = {R"({"ab": [1, 2e5, "x"]})", R"([true, false, null, {"c": "d"}])",
                                          R"( {"é": -0.5} )", R"([[], {}, "\u1234"])"};
  // Single-threaded reference masks, from a grammar of its own (fresh caches).
  auto ref_cg = must_compile(test::json_grammar(true));
  std::vector<std::vector<std::vector<uint32_t>>> want(texts.size());
  for (size_t i = 0; i < texts.size(); ++i) {
    Matcher m(ref_cg, v);
    for (char c : texts[i]) {
      std::vector<uint32_t> mask(v->mask_words());
      m.fill_next_token_mask(mask);
      want[i].push_back(mask);
      ASSERT_TRUE(m.accept_bytes(std::string(1, c)));
    }
  }
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (size_t t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 3; ++round) {
        const size_t i = (t + static_cast<size_t>(round)) % texts.size();
        Matcher m(cg, v);
        for (size_t k = 0; k < texts[i].size(); ++k) {
          std::vector<uint32_t> mask(v->mask_words());
          m.fill_next_token_mask(mask);
          if (mask != want[i][k]) ++mismatches;
          if (!m.accept_bytes(texts[i].substr(k, 1))) ++mismatches;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches.load(), 0);
}

TEST(GrammarCache, CompilesEachSpecOnceAndEvicts) {
  std::atomic<int> builds{0};
  GrammarCache cache(2, [&](const GrammarSpec& spec) -> Result<Grammar> {
    ++builds;
    if (spec.text == "bad") return invalid_argument("bad spec");
    Grammar g;
    g.start = g.add_rule("start");
    g.add_alternative(g.start, {Symbol::terminal(g.add_terminal(g.regexes.literal(spec.text), "lit"))});
    return g;
  });
  GrammarSpec a{GrammarSpec::Kind::kRegex, "a", {}, {}, {}}, b{GrammarSpec::Kind::kRegex, "b", {}, {}, {}},
      c{GrammarSpec::Kind::kRegex, "c", {}, {}, {}}, bad{GrammarSpec::Kind::kRegex, "bad", {}, {}, {}};
  std::vector<std::thread> threads;
  std::vector<const CompiledGrammar*> got(8);
  for (size_t i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      auto r = cache.get(a);
      got[i] = r.is_ok() ? r->get() : nullptr;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(builds.load(), 1);
  for (auto* p : got) EXPECT_EQ(p, got[0]);
  ASSERT_NE(got[0], nullptr);
  EXPECT_TRUE(cache.get(b).is_ok());
  EXPECT_TRUE(cache.get(a).is_ok());  // a is now the most recent
  EXPECT_TRUE(cache.get(c).is_ok());  // evicts b
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_EQ(builds.load(), 3);
  EXPECT_TRUE(cache.get(a).is_ok());
  EXPECT_EQ(builds.load(), 3);
  EXPECT_TRUE(cache.get(b).is_ok());
  EXPECT_EQ(builds.load(), 4);
  EXPECT_FALSE(cache.get(bad).is_ok());
  GrammarSpec choice1{GrammarSpec::Kind::kChoice, "", {"ab", "c"}, {}, {}},
      choice2{GrammarSpec::Kind::kChoice, "", {"a", "bc"}, {}, {}};
  EXPECT_NE(choice1.cache_key(), choice2.cache_key());
  GrammarSpec loose = a;
  loose.json.compact_whitespace = false;
  EXPECT_NE(loose.cache_key(), a.cache_key());
}

}  // namespace
}  // namespace kiln::grammar
