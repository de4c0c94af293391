// Tokenizer::token_bytes against Tokenizer::decode: for every real tokenizer, the bytes of the
// tokens of a text, concatenated, are the decoded text (byte-level BPE maps back to raw bytes,
// SentencePiece's "▁" to a space, "<0xAB>" byte-fallback tokens to their one byte).
#include <random>

#include <gtest/gtest.h>

#include "kiln/core/str.h"
#include "kiln/text/decoder.h"
#include "tokenizer_test_util.h"

namespace kiln::text {
namespace {

class TokenBytes : public ::testing::TestWithParam<std::string> {};

std::string random_text(std::mt19937& rng) {
  static const std::vector<std::string> pieces = {
      "Hello", " world", ",", "!", " Ça va", "?", " 你好", "，世界", " こんにちは", " 😀", "👩🏽‍💻", "\n\n", "  ",
      "\t", "def f(x):", " return x ** 2", "{\"a\": [1, 2.5e-3, true, null]}", " Привет", " 12345", " العربية",
      " हिन्दी", "\\u00e9", "\"", "  \"key\"", ":", " ~~~", "ﬁ", "\u00a0", "<|im_end|>", "<s>", "é"};
  std::string s;
  const int n = std::uniform_int_distribution<int>(1, 30)(rng);
  for (int i = 0; i < n; ++i) s += pieces[rng() % pieces.size()];
  return s;
}

TEST_P(TokenBytes, ConcatenationIsTheDecodedText) {
  auto tok_or = tok_test::shared_tokenizer(GetParam());
  ASSERT_TRUE(tok_or.is_ok()) << tok_or.status().to_string();
  const Tokenizer& tok = **tok_or;
  // Llama 2's decoder ends with Strip(start 1): the sequence's first space is dropped by decode.
  bool strips_first_space = false;
  for (const auto& step : tok.decoder().steps()) {
    if (step.kind == DecoderStep::Kind::kStrip && step.start > 0) strips_first_space = true;
  }
  std::mt19937 rng(7);
  int byte_fallback_seen = 0;
  for (int iter = 0; iter < 300; ++iter) {
    const std::string text = random_text(rng);
    auto ids = tok.encode(text, false);
    ASSERT_TRUE(ids.is_ok());
    std::string joined;
    for (int32_t id : *ids) {
      const std::string b = tok.token_bytes(id);
      if (byte_fallback_value(*tok.token_string(id)) >= 0) {
        EXPECT_EQ(b.size(), 1u);
        ++byte_fallback_seen;
      }
      joined += b;
    }
    if (strips_first_space && !joined.empty() && joined[0] == ' ') joined.erase(0, 1);
    EXPECT_EQ(tok.decode(*ids, false), joined) << "text: " << text;
  }
  if (GetParam() == "llama2" || GetParam() == "gemma3") EXPECT_GT(byte_fallback_seen, 0);
}

TEST_P(TokenBytes, ByteLevelTokensMapBackToRawBytes) {
  auto tok_or = tok_test::shared_tokenizer(GetParam());
  ASSERT_TRUE(tok_or.is_ok());
  const Tokenizer& tok = **tok_or;
  // Every one of the 256 bytes is the bytes of some token (byte-level BPE has one per byte,
  // SentencePiece with byte fallback has "<0xAB>").
  std::vector<bool> seen(256, false);
  for (size_t id = 0; id < tok.vocab_size(); ++id) {
    const std::string b = tok.token_bytes(static_cast<int32_t>(id));
    if (b.size() == 1) seen[static_cast<unsigned char>(b[0])] = true;
  }
  for (int b = 0; b < 256; ++b) EXPECT_TRUE(seen[b]) << "byte " << b;
  EXPECT_EQ(tok.token_bytes(static_cast<int32_t>(tok.vocab_size()) + 5), "");
}

INSTANTIATE_TEST_SUITE_P(Real, TokenBytes, ::testing::Values("qwen3", "llama3", "gemma3", "llama2"));

}  // namespace
}  // namespace kiln::text
