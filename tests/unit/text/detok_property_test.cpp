// The streaming detokenizer against Tokenizer::decode on random id sequences, for every tokenizer:
// each delta is valid UTF-8 and the deltas add up to the full decode.
#include <random>

#include <gtest/gtest.h>

#include "kiln/core/str.h"
#include "kiln/text/detokenizer.h"
#include "kiln/text/pre_tokenizer.h"
#include "tokenizer_test_util.h"

namespace kiln::text {
namespace {

// Random ids the way a model may emit them: plain ids, runs of byte-fallback tokens (valid and
// invalid UTF-8), special tokens, and runs taken from a real encoding.
std::vector<int32_t> random_ids(std::mt19937& rng, const Tokenizer& tok, const std::vector<int32_t>& realistic) {
  std::vector<int32_t> bytes;
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    if (auto id = tok.token_to_id(name)) bytes.push_back(*id);
  }
  const int vocab = static_cast<int>(tok.vocab_size());
  std::uniform_real_distribution<double> u(0, 1);
  std::vector<int32_t> ids;
  const int n = std::uniform_int_distribution<int>(1, 60)(rng);
  while (static_cast<int>(ids.size()) < n) {
    const double r = u(rng);
    if (r < 0.3) {
      ids.push_back(std::uniform_int_distribution<int>(0, vocab - 1)(rng));
    } else if (r < 0.55 && !bytes.empty()) {
      const int k = std::uniform_int_distribution<int>(1, 5)(rng);
      for (int i = 0; i < k; ++i) ids.push_back(bytes[rng() % bytes.size()]);
    } else if (r < 0.65) {
      const auto& sp = tok.special_tokens();
      if (sp.bos_id) ids.push_back(*sp.bos_id);
      if (sp.eos_id) ids.push_back(*sp.eos_id);
    } else if (r < 0.97) {
      const size_t at = rng() % realistic.size();
      const size_t len = std::min<size_t>(1 + rng() % 8, realistic.size() - at);
      ids.insert(ids.end(), realistic.begin() + static_cast<long>(at), realistic.begin() + static_cast<long>(at + len));
    } else {
      ids.push_back(vocab + static_cast<int>(rng() % 100));  // unknown: skipped by decode
    }
  }
  return ids;
}

class DetokProperty : public ::testing::TestWithParam<std::string> {};

TEST_P(DetokProperty, DeltasAreValidAndAddUpToDecode) {
  auto tok_or = tok_test::shared_tokenizer(GetParam());
  ASSERT_TRUE(tok_or.is_ok()) << tok_or.status().to_string();
  std::shared_ptr<const Tokenizer> tok = *tok_or;
  auto realistic = tok->encode(
      "Hello, world! Ça va? 你好，世界 こんにちは 😀👩🏽‍💻 \n\n  def f(x):\n\treturn x ** 2  # ok\n"
      "Привет мир 12345 العربية हिन्दी ",
      false);
  ASSERT_TRUE(realistic.is_ok());
  std::mt19937 rng(1234);
  for (int iter = 0; iter < 1500; ++iter) {
    const auto ids = random_ids(rng, *tok, *realistic);
    const bool skip = iter % 2 == 1;
    IncrementalDetokenizer detok(tok, skip);
    ASSERT_TRUE(detok.streaming());
    std::string all;
    size_t i = 0;
    while (i < ids.size()) {
      const size_t k = std::min<size_t>(ids.size() - i, 1 + (rng() % 3 == 0 ? rng() % 4 : 0));
      const std::string delta = detok.push(std::span<const int32_t>(ids.data() + i, k));
      ASSERT_TRUE(is_valid_utf8(delta)) << "iteration " << iter;
      all += delta;
      i += k;
    }
    const std::string tail = detok.finish();
    ASSERT_TRUE(is_valid_utf8(tail));
    all += tail;
    ASSERT_EQ(all, tok->decode(ids, skip)) << GetParam() << " iteration " << iter << " skip=" << skip;
  }
}

TEST_P(DetokProperty, ContextIsContinued) {
  auto tok_or = tok_test::shared_tokenizer(GetParam());
  ASSERT_TRUE(tok_or.is_ok()) << tok_or.status().to_string();
  std::shared_ptr<const Tokenizer> tok = *tok_or;
  auto prompt = tok->encode("User: say hello\nAssistant:", true);
  auto answer = tok->encode(" Hello there! 😀 Ünïcödé", false);
  ASSERT_TRUE(prompt.is_ok() && answer.is_ok());
  // The text the prompt alone makes final is what the context swallows.
  IncrementalDetokenizer prompt_only(tok, false);
  const std::string prompt_text = prompt_only.push(*prompt);
  IncrementalDetokenizer detok(tok, false, *prompt);
  std::string all;
  for (int32_t id : *answer) all += detok.push(id);
  all += detok.finish();
  std::vector<int32_t> both = *prompt;
  both.insert(both.end(), answer->begin(), answer->end());
  EXPECT_EQ(prompt_text + all, tok->decode(both, false));
  // A SentencePiece leading space survives as a continuation, where a fresh decode strips it.
  EXPECT_TRUE(all.size() > 1 && all[0] == ' ' && all.find("Hello there! 😀 Ünïcödé") != std::string::npos) << all;
}

TEST_P(DetokProperty, HoldsBackSplitCharacters) {
  auto tok_or = tok_test::shared_tokenizer(GetParam());
  ASSERT_TRUE(tok_or.is_ok()) << tok_or.status().to_string();
  std::shared_ptr<const Tokenizer> tok = *tok_or;
  // "€" as its three bytes: nothing may come out before the third.
  std::vector<int32_t> ids;
  if (auto b = tok->token_to_id("<0xE2>")) {
    ids = {*b, *tok->token_to_id("<0x82>"), *tok->token_to_id("<0xAC>")};
  } else {
    for (unsigned char c : {0xE2, 0x82, 0xAC}) ids.push_back(*tok->token_to_id(byte_level_char(c)));
  }
  IncrementalDetokenizer detok(tok, false);
  EXPECT_EQ(detok.push(ids[0]), "");
  EXPECT_EQ(detok.push(ids[1]), "");
  std::string out = detok.push(ids[2]);
  out += detok.finish();
  EXPECT_EQ(out, tok->decode(ids, false));
  EXPECT_NE(out.find("\xE2\x82\xAC"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(All, DetokProperty, ::testing::ValuesIn(tok_test::tokenizer_names()),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

}  // namespace
}  // namespace kiln::text
