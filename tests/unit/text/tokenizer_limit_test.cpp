// Tokenizer::encode with a limit on the ids: the same ids as without it whenever they fit (checked
// on the Hugging Face fixture corpus with the text cut in windows of a few bytes, so that every
// kind of window end is met), kTooLong as soon as they cannot, and a refusal whose cost does not
// grow with the text.
#include <chrono>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "kiln/core/file.h"
#include "kiln/core/str.h"
#include "kiln/text/tokenizer_impl.h"
#include "tokenizer_test_util.h"

namespace kiln::text {
namespace {

using nlohmann::json;

std::vector<std::string> corpus_texts() {
  std::ifstream f(tok_test::fixture_dir() / "corpus.jsonl", std::ios::binary);
  std::vector<std::string> texts;
  std::string line;
  while (std::getline(f, line))
    if (!line.empty()) texts.push_back(json::parse(line)["text"].get<std::string>());
  return texts;
}

// Corpus strings joined in a fixed shuffled order until `bytes`: long mixed text whose pieces
// cross window ends in every way (words, digit runs, newline runs, CJK, emoji, added tokens).
std::string mixed_text(const std::vector<std::string>& texts, size_t bytes) {
  uint64_t x = 0x9E3779B97F4A7C15ULL;
  std::string out;
  while (out.size() < bytes) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    out += texts[x % texts.size()];
    out += (x >> 40) % 3 == 0 ? "\n\n" : " ";
  }
  return out;
}

std::unique_ptr<Tokenizer::Impl> load_impl(const std::string& name) {
  const auto dir = tok_test::tokenizer_dir(name);
  auto tok = read_file(dir / "tokenizer.json");
  auto cfg = read_file(dir / "tokenizer_config.json");
  if (!tok.is_ok() || !cfg.is_ok()) return nullptr;
  auto impl = parse_tokenizer(*tok, *cfg);
  return impl.is_ok() ? std::move(impl).value() : nullptr;
}

class TokenizerLimit : public ::testing::TestWithParam<std::string> {};

TEST_P(TokenizerLimit, CappedEqualsUncappedWheneverItFits) {
  const std::string name = GetParam();
  auto tok_or = tok_test::shared_tokenizer(name);
  ASSERT_TRUE(tok_or.is_ok()) << tok_or.status().to_string() << "\n(run scripts/setup to install the npm test data)";
  const Tokenizer& tok = **tok_or;
  const auto impl = load_impl(name);
  ASSERT_NE(impl, nullptr);
  auto texts = corpus_texts();
  ASSERT_GT(texts.size(), 1000u);
  texts.push_back(mixed_text(texts, 40000));
  int failures = 0;
  for (size_t i = 0; i < texts.size(); ++i) {
    const std::string& text = texts[i];
    for (bool sp : {false, true}) {
      auto want = tok.encode(text, sp);  // the path the parity test holds to Hugging Face
      ASSERT_TRUE(want.is_ok()) << want.status().to_string();
      const size_t n = want->size();
      for (size_t window : {1, 2, 5, 16, 64 << 10}) {
        auto got = encode_text(*impl, text, sp, n, window);
        if (!got.is_ok() || *got != *want) {
          if (++failures <= 10)
            ADD_FAILURE() << name << " string " << i << " " << json(text.substr(0, 80)).dump() << " window " << window
                          << " sp " << sp << ": "
                          << (got.is_ok() ? str_cat(got->size(), " ids, want ", n) : got.status().to_string());
        }
        if (n == 0) continue;
        auto under = encode_text(*impl, text, sp, n - 1, window);
        if (under.is_ok() || under.status().code() != StatusCode::kTooLong) {
          if (++failures <= 10)
            ADD_FAILURE() << name << " string " << i << " window " << window << ": limit " << n - 1
                          << " was not refused";
        }
      }
    }
  }
  EXPECT_EQ(failures, 0);
}

INSTANTIATE_TEST_SUITE_P(All, TokenizerLimit, ::testing::ValuesIn(tok_test::tokenizer_names()),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

// Windows are only for a first step whose matches cannot depend on text before the search's start.
TEST(TokenizerLimitTest, OnlyPatternsThatLookAheadAreSearchedInWindows) {
  auto windowable = [](const std::string& pattern, SplitBehavior behavior = SplitBehavior::kIsolated) {
    PreTokenizer p;
    PreTokenizerStep s;
    s.kind = PreTokenizerStep::Kind::kSplit;
    s.regex = Regex::compile(pattern).value();
    s.behavior = behavior;
    p.add(std::move(s));
    return p.windowable_split() != nullptr;
  };
  EXPECT_TRUE(windowable("\\p{N}{1,3}"));
  EXPECT_TRUE(windowable("[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"));
  EXPECT_TRUE(windowable("[$^]+|[\\b]|(?<name>x)"));  // literal in classes, a named group
  EXPECT_FALSE(windowable("(?<=a)b"));
  EXPECT_FALSE(windowable("(?<!a)b"));
  EXPECT_FALSE(windowable("^a|b"));
  EXPECT_FALSE(windowable("a$"));
  EXPECT_FALSE(windowable("\\bword"));
  EXPECT_FALSE(windowable("\\Ga"));
  EXPECT_FALSE(windowable("a\\Kb"));
  EXPECT_FALSE(windowable("a", SplitBehavior::kMergedWithNext));
}

TEST(TokenizerLimitTest, RefusalSaysTheLimit) {
  auto tok = tok_test::shared_tokenizer("llama3");
  ASSERT_TRUE(tok.is_ok()) << tok.status().to_string();
  auto r = (*tok)->encode("one two three four five six", false, 3);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kTooLong);
  EXPECT_EQ(r.status().message(), "the text has more than 3 tokens");
  // Added tokens count, and so do the post-processor's (Llama 2 puts <s> before the text).
  EXPECT_FALSE((*tok)->encode("<|eot_id|><|eot_id|>", false, 1).is_ok());
  auto llama2 = tok_test::shared_tokenizer("llama2");
  ASSERT_TRUE(llama2.is_ok()) << llama2.status().to_string();
  const size_t specials = (*llama2)->prefix_special_ids().size() + (*llama2)->suffix_special_ids().size();
  ASSERT_GT(specials, 0u);
  auto plain = (*llama2)->encode("hello world", false);
  ASSERT_TRUE(plain.is_ok());
  EXPECT_TRUE((*llama2)->encode("hello world", true, plain->size() + specials).is_ok());
  EXPECT_FALSE((*llama2)->encode("hello world", true, plain->size() + specials - 1).is_ok());
}

// The cost of refusing does not grow with the text. 32 MiB over a limit of 4096 ids has more
// characters than 4096 ids can cover and is refused unread; 8 MiB of mixed text (fewer characters
// than 65536 ids can cover) is read in windows only until its ids pass 65536 (about 300 KB). Both
// take less than encoding 2 MiB without a limit (far apart, so this holds on a loaded machine).
TEST(TokenizerLimitTest, RefusingAHugeTextCostsLessThanEncodingASmallOne) {
  auto tok_or = tok_test::shared_tokenizer("llama3");
  ASSERT_TRUE(tok_or.is_ok()) << tok_or.status().to_string();
  const Tokenizer& tok = **tok_or;
  const auto texts = corpus_texts();
  const std::string small = mixed_text(texts, 2 << 20);
  using Clock = std::chrono::steady_clock;
  auto t0 = Clock::now();
  ASSERT_TRUE(tok.encode(small, false).is_ok());
  const auto small_took = Clock::now() - t0;
  for (const std::string& huge : {mixed_text(texts, 32 << 20), std::string(32 << 20, 'a'), std::string(32 << 20, ' ')}) {
    t0 = Clock::now();
    auto r = tok.encode(huge, false, 4096);
    const auto took = Clock::now() - t0;
    ASSERT_FALSE(r.is_ok());
    EXPECT_EQ(r.status().code(), StatusCode::kTooLong);
    EXPECT_LT(took, small_took) << huge.substr(0, 20);
  }
  const std::string long_text = mixed_text(texts, 8 << 20);
  t0 = Clock::now();
  auto r = tok.encode(long_text, false, 65536);
  const auto took = Clock::now() - t0;
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kTooLong);
  EXPECT_LT(took, small_took / 3);
  // One word under the character bound (500,000 / 128 < 4096) is bounded by the longest tokens
  // its characters start, before it is merged (that took 1.7 s through the server).
  t0 = Clock::now();
  EXPECT_FALSE(tok.encode(std::string(500000, 'a'), false, 4096).is_ok());
  EXPECT_LT(Clock::now() - t0, small_took / 3);
}

}  // namespace
}  // namespace kiln::text
