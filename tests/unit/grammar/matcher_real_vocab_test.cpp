// The matcher over a real vocabulary (Qwen3, 151,669 tokens): the vocabulary builds fast, masks
// equal the brute force along real tokenizations of JSON, end and special ids are handled; and the
// mask-time benchmark (run with KILN_GRAMMAR_BENCH=1).
#include <chrono>
#include <cstdlib>
#include <random>

#include <gtest/gtest.h>

#include "kiln/core/str.h"
#include "kiln/grammar/mask_bench.h"
#include "kiln/grammar/matcher.h"
#include "matcher_test_util.h"
#include "unit/text/tokenizer_test_util.h"

namespace kiln::grammar {
namespace {

struct Qwen {
  std::shared_ptr<const text::Tokenizer> tok;
  std::shared_ptr<const TokenVocabulary> vocab;
  double build_ms = 0;
};

const Qwen& qwen() {
  static const Qwen q = [] {
    Qwen out;
    auto t = text::tok_test::shared_tokenizer("qwen3");
    if (!t.is_ok()) return out;
    out.tok = *t;
    std::vector<int32_t> ends;
    for (const char* e : {"<|im_end|>", "<|endoftext|>"}) ends.push_back(*out.tok->token_to_id(e));
    const auto t0 = std::chrono::steady_clock::now();
    out.vocab = TokenVocabulary::build(*out.tok, ends);
    out.build_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    return out;
  }();
  return q;
}

// Realistic JSON documents (what a model writes for a schema).
std::vector<std::string> json_documents() {
  return {
      R"({"name": "Ada Lovelace", "born": 1815, "languages": ["English", "French"], "notes": "First published algorithm; \"Note G\"."})",
      R"({"id": "3f2a9c1e-77b4-4d2a-9f0e-2b1c5d6e7f80", "price": 12.5, "tags": [], "in_stock": true, "dims": {"w": 10, "h": 2.25e-1}})",
      R"([{"city": "Zürich", "temp_c": -3.5}, {"city": "東京", "temp_c": 11}, {"city": "São Paulo", "temp_c": 24.75}])",
      R"({"query":"SELECT * FROM users WHERE id = 42","ok":false,"error":null,"rows":[[1,"a"],[2,"b"]]})",
      R"({"summary": "The quick brown fox jumps over the lazy dog. It was a bright cold day in April, and the clocks were striking thirteen.", "score": 0.97, "labels": ["fiction", "classic", "opening-line"]})",
  };
}

TEST(MatcherQwen3, VocabularyBytesAndBuildTime) {
  const Qwen& q = qwen();
  ASSERT_NE(q.vocab, nullptr);
  EXPECT_EQ(q.vocab->size(), q.tok->vocab_size());
  EXPECT_EQ(q.vocab->token_bytes(*q.tok->token_to_id("Ġworld")), " world");
  EXPECT_TRUE(q.vocab->is_special(*q.tok->token_to_id("<|im_start|>")));
  std::printf("Qwen3 vocabulary (%zu tokens) built in %.1f ms\n", q.vocab->size(), q.build_ms);
}

TEST(MatcherQwen3, JsonMasksEqualBruteForce) {
  const Qwen& q = qwen();
  ASSERT_NE(q.vocab, nullptr);
  auto cg = CompiledGrammar::compile(test::json_grammar(true));
  ASSERT_TRUE(cg.is_ok());
  const int32_t im_start = *q.tok->token_to_id("<|im_start|>");
  const int32_t im_end = *q.tok->token_to_id("<|im_end|>");
  const auto docs = json_documents();
  for (size_t d = 0; d < 3; ++d) {
    auto ids = q.tok->encode(docs[d], false);
    ASSERT_TRUE(ids.is_ok());
    Matcher m(*cg, q.vocab);
    std::vector<uint32_t> mask(q.vocab->mask_words());
    for (size_t i = 0; i <= ids->size(); ++i) {
      m.fill_next_token_mask(mask);
      auto bit = [&](int32_t t) { return (mask[static_cast<size_t>(t) / 32] >> (t % 32) & 1u) != 0; };
      EXPECT_FALSE(bit(im_start));
      EXPECT_EQ(bit(im_end), i == ids->size());
      // The brute force over all 151,669 tokens at a spread of steps (it takes a while).
      if (i % 5 == 0 || i == ids->size()) {
        ASSERT_EQ(mask, test::brute_force_mask(m, *q.vocab)) << "doc " << d << " step " << i;
      }
      if (i == ids->size()) break;
      ASSERT_TRUE(bit((*ids)[i])) << "doc " << d << " token " << i;
      ASSERT_TRUE(m.accept_token((*ids)[i]));
    }
    EXPECT_TRUE(m.can_end());
    EXPECT_TRUE(m.accept_token(im_end));
  }
}

// KILN_GRAMMAR_BENCH=1 kiln_grammar_tests --gtest_filter=MatcherQwen3.MaskTimes
TEST(MatcherQwen3, MaskTimes) {
  if (std::getenv("KILN_GRAMMAR_BENCH") == nullptr) GTEST_SKIP() << "set KILN_GRAMMAR_BENCH=1 to run";
  const Qwen& q = qwen();
  ASSERT_NE(q.vocab, nullptr);
  for (bool ws : {false, true}) {
    auto cg = CompiledGrammar::compile(test::json_grammar(ws));
    ASSERT_TRUE(cg.is_ok());
    std::vector<double> cold, warm, cold_cpu, warm_cpu;
    for (int pass = 0; pass < 2; ++pass) {
      for (const std::string& doc : json_documents()) {
        std::string text = doc;
        if (!ws) {  // compact: drop the spaces between tokens (not inside strings)
          std::string out;
          bool in_str = false, esc = false;
          for (char c : doc) {
            if (in_str) {
              const bool escaped = esc;
              esc = !escaped && c == '\\';
              if (c == '"' && !escaped) in_str = false;
            } else if (c == '"') {
              in_str = true;
            } else if (c == ' ') {
              continue;
            }
            out += c;
          }
          text = out;
        }
        auto ids = q.tok->encode(text, false);
        ASSERT_TRUE(ids.is_ok());
        Matcher m(*cg, q.vocab);
        auto t = time_masks(m, *ids);
        ASSERT_TRUE(t.is_ok()) << t.status().to_string() << " in " << text;
        auto& into = pass == 0 ? cold : warm;
        into.insert(into.end(), t->micros.begin(), t->micros.end());
        auto& cpu = pass == 0 ? cold_cpu : warm_cpu;
        cpu.insert(cpu.end(), t->cpu_micros.begin(), t->cpu_micros.end());
      }
    }
    for (int pass = 0; pass < 4; ++pass) {
      const MaskStats s = summarize(pass == 0 ? cold : pass == 1 ? warm : pass == 2 ? cold_cpu : warm_cpu);
      std::printf("json (%s whitespace), Qwen3, %s caches, %s time: %zu masks, mean %.1f us, p50 %.1f us, "
                  "p99 %.1f us, max %.1f us\n",
                  ws ? "flexible" : "compact", pass % 2 == 0 ? "cold" : "warm", pass < 2 ? "wall" : "thread CPU",
                  s.count, s.mean, s.p50, s.p99, s.max);
    }
  }
}

}  // namespace
}  // namespace kiln::grammar
