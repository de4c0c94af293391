// Behaviours the six real tokenizers do not exercise, on small hand-written tokenizer.json files:
// Metaspace prepend schemes, added-token lstrip / rstrip / single_word / normalized, and errors.
#include <gtest/gtest.h>

#include <chrono>
#include <ctime>

#include "kiln/text/detokenizer.h"
#include "kiln/text/tokenizer.h"
#include "tokenizer_test_util.h"

namespace kiln::text {
namespace {

std::string metaspace_json(const std::string& scheme) {
  return R"({
    "added_tokens": [{"id": 8, "content": "<s>", "single_word": false, "lstrip": false, "rstrip": false,
                      "normalized": false, "special": true}],
    "normalizer": null,
    "pre_tokenizer": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": ")" + scheme + R"(", "split": true},
    "post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                       {"Sequence": {"id": "A", "type_id": 0}}], "pair": [],
                       "special_tokens": {"<s>": {"id": "<s>", "ids": [8], "tokens": ["<s>"]}}},
    "decoder": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": ")" + scheme + R"(", "split": true},
    "model": {"type": "BPE", "unk_token": "<unk>", "fuse_unk": true, "byte_fallback": false,
              "vocab": {"<unk>": 0, "▁": 1, "a": 2, "b": 3, "▁a": 4, "▁b": 5, "ab": 6, "▁ab": 7, "<s>": 8},
              "merges": ["▁ a", "▁a b", "a b", "▁ b"]}
  })";
}

std::vector<int32_t> enc(const Tokenizer& t, const std::string& s, bool special = false) {
  auto r = t.encode(s, special);
  EXPECT_TRUE(r.is_ok()) << r.status().to_string();
  return r.is_ok() ? *r : std::vector<int32_t>{};
}

TEST(TokenizerComponents, MetaspacePrependSchemes) {
  auto first = Tokenizer::from_json(metaspace_json("first"), "");
  ASSERT_TRUE(first.is_ok()) << first.status().to_string();
  EXPECT_EQ(enc(**first, "ab ab"), (std::vector<int32_t>{7, 7}));
  // After an added token the text no longer starts the input: "first" does not prepend.
  EXPECT_EQ(enc(**first, "<s>ab"), (std::vector<int32_t>{8, 6}));
  EXPECT_EQ(enc(**first, "ab", true), (std::vector<int32_t>{8, 7}));
  EXPECT_EQ((*first)->decode(std::vector<int32_t>{7, 7}, false), "ab ab");
  EXPECT_EQ((*first)->decode(std::vector<int32_t>{8, 7}, false), "<s> ab");
  EXPECT_EQ((*first)->decode(std::vector<int32_t>{8, 7}, true), "ab");
  // Unknown characters fuse into one <unk>.
  EXPECT_EQ(enc(**first, "a??b"), (std::vector<int32_t>{4, 0, 3}));

  auto always = Tokenizer::from_json(metaspace_json("always"), "");
  ASSERT_TRUE(always.is_ok());
  EXPECT_EQ(enc(**always, "<s>ab"), (std::vector<int32_t>{8, 7}));
  auto never = Tokenizer::from_json(metaspace_json("never"), "");
  ASSERT_TRUE(never.is_ok());
  EXPECT_EQ(enc(**never, "ab ab"), (std::vector<int32_t>{6, 7}));
  EXPECT_EQ((*never)->decode(std::vector<int32_t>{7, 7}, false), " ab ab");

  // The streaming detokenizer handles the first-token rule of the Metaspace decoder.
  IncrementalDetokenizer d(*first, false);
  std::string out = d.push(7);
  out += d.push(7);
  out += d.finish();
  EXPECT_EQ(out, "ab ab");
}

const char* kAddedJson = R"({
  "added_tokens": [
    {"id": 8, "content": "[L]", "single_word": false, "lstrip": true, "rstrip": false, "normalized": false, "special": false},
    {"id": 9, "content": "[R]", "single_word": false, "lstrip": false, "rstrip": true, "normalized": false, "special": false},
    {"id": 10, "content": "cat", "single_word": true, "lstrip": false, "rstrip": false, "normalized": false, "special": false},
    {"id": 11, "content": "Xi", "single_word": false, "lstrip": false, "rstrip": false, "normalized": true, "special": true}
  ],
  "normalizer": {"type": "Replace", "pattern": {"String": "X"}, "content": "h"},
  "pre_tokenizer": null,
  "post_processor": null,
  "decoder": null,
  "model": {"type": "BPE", "unk_token": "<unk>", "fuse_unk": false,
            "vocab": {" ": 0, "a": 1, "b": 2, "c": 3, "t": 4, "h": 5, "i": 6, "<unk>": 7}, "merges": []}
})";

TEST(TokenizerComponents, AddedTokenOptions) {
  auto t = Tokenizer::from_json(kAddedJson, "");
  ASSERT_TRUE(t.is_ok()) << t.status().to_string();
  const Tokenizer& tok = **t;
  EXPECT_EQ(enc(tok, "a  [L]b"), (std::vector<int32_t>{1, 8, 2}));   // lstrip eats the spaces before
  EXPECT_EQ(enc(tok, "a[R]  b"), (std::vector<int32_t>{1, 9, 2}));   // rstrip eats the spaces after
  EXPECT_EQ(enc(tok, "a cat b"), (std::vector<int32_t>{1, 0, 10, 0, 2}));
  EXPECT_EQ(enc(tok, "acat"), (std::vector<int32_t>{1, 3, 1, 4}));    // not a single word
  EXPECT_EQ(enc(tok, "cat_"), (std::vector<int32_t>{3, 1, 4, 7}));    // '_' is a word character
  EXPECT_EQ(enc(tok, "cat."), (std::vector<int32_t>{10, 7}));
  // A normalized added token matches the normalized text: "Xi" and "hi" both become it.
  EXPECT_EQ(enc(tok, "Xi hi"), (std::vector<int32_t>{11, 0, 11}));
  // No decoder: tokens are joined with spaces; special tokens can be skipped.
  EXPECT_EQ(tok.decode(std::vector<int32_t>{1, 11, 2}, false), "a Xi b");
  EXPECT_EQ(tok.decode(std::vector<int32_t>{1, 11, 2}, true), "a b");
  EXPECT_TRUE(tok.is_special(11));
  EXPECT_FALSE(tok.is_special(10));
  EXPECT_EQ(tok.token_to_id("[R]"), 9);
  EXPECT_EQ(tok.id_to_token(10), "cat");
  EXPECT_EQ(tok.vocab_size(), 12u);
  IncrementalDetokenizer d(*t, false);
  std::string out = d.push(std::vector<int32_t>{1, 11, 2});
  out += d.finish();
  EXPECT_EQ(out, "a Xi b");
}

TEST(TokenizerComponents, ErrorsNameTheProblem) {
  auto bad_json = Tokenizer::from_json("{", "");
  ASSERT_FALSE(bad_json.is_ok());
  EXPECT_NE(bad_json.status().message().find("not valid JSON"), std::string::npos);

  std::string j = kAddedJson;
  std::string merges = j;
  merges.replace(merges.find("\"merges\": []"), 12, "\"merges\": [\"a zz\"]");
  auto m = Tokenizer::from_json(merges, "");
  ASSERT_FALSE(m.is_ok());
  EXPECT_NE(m.status().message().find("model.merges[0]"), std::string::npos) << m.status().to_string();

  std::string pre = j;
  pre.replace(pre.find("\"pre_tokenizer\": null"), 21, "\"pre_tokenizer\": {\"type\": \"Foo\"}");
  auto p = Tokenizer::from_json(pre, "");
  ASSERT_FALSE(p.is_ok());
  EXPECT_EQ(p.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(p.status().message().find("'Foo'"), std::string::npos);

  std::string re = j;
  re.replace(re.find("\"pre_tokenizer\": null"), 21,
             "\"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"Regex\": \"(a\"}, \"behavior\": \"Isolated\"}");
  auto r = Tokenizer::from_json(re, "");
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("pre_tokenizer.pattern"), std::string::npos) << r.status().to_string();

  auto t = Tokenizer::from_json(j, "");
  ASSERT_TRUE(t.is_ok());
  auto e = (*t)->encode("ok \xC3(", false);
  ASSERT_FALSE(e.is_ok());
  EXPECT_NE(e.status().message().find("byte offset 3"), std::string::npos);
  auto missing = Tokenizer::load("/nonexistent/kiln/tokenizer");
  ASSERT_FALSE(missing.is_ok());
  EXPECT_NE(missing.status().message().find("tokenizer.json"), std::string::npos);
}

TEST(TokenizerComponents, ConfigSpecialTokens) {
  auto t = tok_test::shared_tokenizer("qwen3");
  ASSERT_TRUE(t.is_ok()) << t.status().to_string();
  const SpecialTokens& s = (*t)->special_tokens();
  EXPECT_EQ(s.eos_token, "<|im_end|>");
  EXPECT_EQ(s.eos_id, 151645);
  EXPECT_FALSE(s.bos_id.has_value());
  EXPECT_EQ(s.pad_id, 151643);
  EXPECT_EQ(s.additional_ids.front(), 151644);  // <|im_start|>
  auto g = tok_test::shared_tokenizer("gemma3");
  ASSERT_TRUE(g.is_ok());
  EXPECT_EQ((*g)->special_tokens().bos_id, 2);
  EXPECT_EQ((*g)->special_tokens().eos_token, "<end_of_turn>");
  EXPECT_EQ((*g)->prefix_special_ids(), std::vector<int32_t>{2});
  EXPECT_EQ((*g)->vocab_size(), 262145u);  // <image_soft_token> is added after the model vocabulary
}

// A long run with no split point is one BPE word; merging it must stay near-linear. Timing a short
// and an 8x longer run (best of five each, in thread CPU time) keeps the check independent of the build type.
TEST(TokenizerComponents, LongUnsplitRunsAreNotQuadratic) {
  auto letters = [](size_t n) {
    std::string word;
    uint32_t x = 12345;
    for (size_t i = 0; i < n; ++i) {
      x = x * 1103515245u + 12345u;
      word.push_back(static_cast<char>('a' + (x >> 16) % 26));
    }
    return word;
  };
  for (const char* name : {"llama2", "qwen3"}) {
    auto t = tok_test::shared_tokenizer(name);
    ASSERT_TRUE(t.is_ok()) << t.status().to_string();
    // The thread's CPU time, not wall time: a busy machine preempting the test must not fail it.
    auto thread_seconds = [] {
      timespec ts{};
      clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
      return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
    };
    auto best_time = [&](const std::string& text) {
      double best = 1e9;
      for (int r = 0; r < 5; ++r) {
        const double t0 = thread_seconds();
        auto ids = (*t)->encode(text, false);
        best = std::min(best, thread_seconds() - t0);
        EXPECT_TRUE(ids.is_ok());
      }
      return best;
    };
    const std::string small = letters(50000), big = letters(400000);
    const double ts = best_time(small), tb = best_time(big);
    auto ids = (*t)->encode(big, false);
    ASSERT_TRUE(ids.is_ok());
    EXPECT_GT(ids->size(), 50000u);
    EXPECT_EQ((*t)->decode(*ids, true), big);
    // n log n predicts about 8.5x; quadratic merging would be 64x.
    EXPECT_LT(tb, 24 * ts + 0.05) << name << ": " << ts << " s for 50k characters, " << tb << " s for 400k";
  }
}

}  // namespace
}  // namespace kiln::text
