// The matcher against references that do not share its fast paths: fill_next_token_mask against
// the brute-force mask (accept_token on a copy, for every token), over random small grammars and
// vocabularies; and sentences sampled straight from the Grammar (not through the lexer automata)
// are accepted byte by byte and can end.
#include <random>

#include <gtest/gtest.h>

#include "kiln/core/str.h"
#include "kiln/grammar/matcher.h"
#include "matcher_test_util.h"

namespace kiln::grammar {
namespace {

using test::allowed_ids;
using test::brute_force_mask;

// Greedy longest-match tokenization of `text` with the vocabulary's non-special tokens.
std::vector<int32_t> greedy_tokens(const std::string& text, const TokenVocabulary& v) {
  std::vector<int32_t> out;
  for (size_t i = 0; i < text.size();) {
    int32_t best = -1;
    size_t best_len = 0;
    for (size_t t = 0; t < v.size(); ++t) {
      const auto id = static_cast<int32_t>(t);
      const std::string_view b = v.token_bytes(id);
      if (v.is_special(id) || b.empty() || b.size() <= best_len) continue;
      if (text.compare(i, b.size(), b) == 0) {
        best = id;
        best_len = b.size();
      }
    }
    if (best < 0) return {};
    out.push_back(best);
    i += best_len;
  }
  return out;
}

// Walks `m` along `ids` (or randomly among allowed tokens when `ids` is empty), checking every mask
// against the brute force; then rolls back and checks the masks again.
void check_walk(std::shared_ptr<const CompiledGrammar> cg, std::shared_ptr<const TokenVocabulary> v,
                const std::vector<int32_t>& ids, std::mt19937& rng, const std::string& what) {
  Matcher m(cg, v);
  std::vector<std::vector<uint32_t>> masks;
  std::vector<uint32_t> mask(v->mask_words());
  const size_t steps = ids.empty() ? 12 : ids.size();
  for (size_t step = 0; step <= steps; ++step) {
    m.fill_next_token_mask(mask);
    const std::vector<uint32_t> want = brute_force_mask(m, *v);
    ASSERT_EQ(allowed_ids(mask), allowed_ids(want)) << what << " step " << step;
    EXPECT_FALSE(mask[0] >> 1 & 1u) << "the special token is never allowed";
    EXPECT_EQ((mask[0] & 1u) != 0, m.can_end()) << what;
    if (m.must_end()) {
      EXPECT_EQ(allowed_ids(mask), std::vector<int32_t>{0}) << what;
    }
    masks.push_back(mask);
    if (step == steps) break;
    int32_t next;
    if (!ids.empty()) {
      next = ids[step];
    } else {
      std::vector<int32_t> ok = allowed_ids(mask);
      std::erase(ok, 0);
      if (ok.empty()) break;
      next = ok[rng() % ok.size()];
    }
    ASSERT_TRUE(m.accept_token(next)) << what << " step " << step << " token " << next;
  }
  // Rollback to every earlier step gives that step's mask back.
  while (m.num_tokens() > 0) {
    const size_t back = 1 + rng() % std::min<size_t>(3, m.num_tokens());
    m.rollback(back);
    m.fill_next_token_mask(mask);
    ASSERT_EQ(mask, masks[m.num_tokens()]) << what << " after rollback to " << m.num_tokens();
  }
}

TEST(MatcherProperty, RandomGrammarsAgreeWithBruteForce) {
  int compiled = 0, sentences = 0;
  for (uint32_t seed = 0; seed < 400; ++seed) {
    std::mt19937 rng(seed);
    Grammar g = test::random_grammar(rng);
    const std::string listing = g.to_string();
    test::SentenceSampler sampler(g);
    auto cg = CompiledGrammar::compile(g);
    ASSERT_EQ(cg.is_ok(), sampler.productive()) << listing;
    if (!cg.is_ok()) continue;
    ++compiled;
    auto v = test::random_vocabulary(rng);
    for (int k = 0; k < 4; ++k) {
      const std::string s = sampler.sample(rng);
      if (s.size() > 60) continue;
      Matcher m(*cg, v);
      for (size_t i = 0; i < s.size(); ++i) {
        ASSERT_TRUE(m.accept_bytes(s.substr(i, 1))) << listing << "sentence '" << s << "' byte " << i;
      }
      ASSERT_TRUE(m.can_end()) << listing << "sentence '" << s << "'";
      ++sentences;
      const std::vector<int32_t> ids = greedy_tokens(s, *v);
      if (!ids.empty()) check_walk(*cg, v, ids, rng, str_cat(listing, "sentence '", s, "'"));
    }
    check_walk(*cg, v, {}, rng, listing);
  }
  EXPECT_GT(compiled, 200);
  EXPECT_GT(sentences, 500);
}

TEST(MatcherProperty, JsonGrammarAgreesWithBruteForce) {
  for (bool ws : {false, true}) {
    const Grammar g = test::json_grammar(ws);
    auto cg = CompiledGrammar::compile(g);
    ASSERT_TRUE(cg.is_ok()) << cg.status().to_string();
    test::SentenceSampler sampler(g);
    for (uint32_t seed = 0; seed < 40; ++seed) {
      std::mt19937 rng(seed);
      auto v = test::random_vocabulary(rng);
      const std::string s = sampler.sample(rng);
      const std::vector<int32_t> ids = greedy_tokens(s, *v);
      if (!ids.empty() && ids.size() < 40) check_walk(*cg, v, ids, rng, s);
      check_walk(*cg, v, {}, rng, "random walk");
    }
  }
}

}  // namespace
}  // namespace kiln::grammar
