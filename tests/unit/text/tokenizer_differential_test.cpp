// Differential test against a second implementation, @lenml/tokenizers (JavaScript, run with
// node): freshly generated random strings must encode to the same ids in both.
//
// The JavaScript port disagrees with Hugging Face `tokenizers` (and kiln) on two characters, because
// its split regexes run on JavaScript's `\s`: U+FEFF (whitespace to JavaScript, not to Oniguruma)
// and U+0085 NEL (whitespace to Oniguruma, not to JavaScript). Checked against the HF fixtures,
// those are the only inputs where they differ, so the generator leaves them out; the HF parity
// test (tokenizer_parity_test.cpp) covers both.
// Set KILN_DIFF_SEED to replay a run; the seed is printed on failure.
#include <cstdio>
#include <fstream>
#include <random>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "kiln/core/str.h"
#include "kiln/text/utf8.h"
#include "tokenizer_test_util.h"

namespace kiln::text {
namespace {

using nlohmann::json;

std::string random_text(std::mt19937& rng, const std::vector<std::string>& specials) {
  static const std::vector<std::pair<char32_t, char32_t>> ranges = {
      {'a', 'z'}, {'A', 'Z'}, {'0', '9'}, {'!', '/'}, {':', '@'}, {'[', '`'}, {'{', '~'}, {0xC0, 0x24F},
      {0x391, 0x3C9}, {0x410, 0x44F}, {0x5D0, 0x5EA}, {0x621, 0x64A}, {0x905, 0x939}, {0xE01, 0xE3A},
      {0x4E00, 0x9FA5}, {0x3041, 0x3096}, {0x30A1, 0x30FA}, {0xAC00, 0xD7A3}, {0x300, 0x36F},
      {0x2190, 0x22FF}, {0xFF01, 0xFF5E}, {0x1F300, 0x1F64F}, {0x1F900, 0x1F9FF}};
  static const std::vector<std::string> spaces = {" ", "  ", "\t", "\n", "\r\n", "\xC2\xA0", "\xE3\x80\x80",
                                                  "\xE2\x80\x89", "\xE2\x80\xA8", "\x0B"};
  static const std::vector<std::string> emoji_bits = {"\xE2\x80\x8D", "\xEF\xB8\x8F", "\xF0\x9F\x8F\xBB",
                                                      "\xF0\x9F\x8F\xBF", "\xF0\x9F\x91\xA9", "\xF0\x9F\x92\xBB"};
  std::string s;
  const int pieces = 1 + static_cast<int>(rng() % 24);
  for (int p = 0; p < pieces; ++p) {
    const unsigned kind = rng() % 20;
    if (kind < 4) {
      s += spaces[rng() % spaces.size()];
    } else if (kind == 4 && !specials.empty()) {
      s += specials[rng() % specials.size()];
    } else if (kind == 5) {
      s += emoji_bits[rng() % emoji_bits.size()];
    } else {
      const auto& [lo, hi] = ranges[rng() % ranges.size()];
      const int run = 1 + static_cast<int>(rng() % 8);
      for (int i = 0; i < run; ++i) append_utf8(s, lo + static_cast<char32_t>(rng() % (hi - lo + 1)));
    }
  }
  return s;
}

class TokenizerDifferential : public ::testing::TestWithParam<std::string> {};

TEST_P(TokenizerDifferential, MatchesLenmlTokenizersOnRandomStrings) {
  const std::string name = GetParam();
  auto tok_or = tok_test::shared_tokenizer(name);
  ASSERT_TRUE(tok_or.is_ok()) << tok_or.status().to_string() << "\n(run scripts/setup to install the npm test data)";
  const Tokenizer& tok = **tok_or;
  const char* env_seed = std::getenv("KILN_DIFF_SEED");
  const uint32_t seed = env_seed != nullptr ? static_cast<uint32_t>(std::stoul(env_seed)) : std::random_device{}();
  std::mt19937 rng(seed);
  std::vector<std::string> specials;
  for (const char* s : {"<s>", "</s>", "<|im_start|>", "<|endoftext|>", "<bos>", "<end_of_turn>", "<|begin_of_text|>",
                        "<|eot_id|>", "<|return|>", "<｜end▁of▁sentence｜>", "<unused3>", "<think>"})
    specials.emplace_back(s);

  const int kStrings = 250;
  std::vector<std::string> texts;
  const auto input = std::filesystem::temp_directory_path() / str_cat("kiln_diff_", name, "_", seed, ".jsonl");
  {
    std::ofstream f(input, std::ios::binary);
    for (int i = 0; i < kStrings; ++i) {
      texts.push_back(random_text(rng, specials));
      f << json{{"text", texts.back()}}.dump() << "\n";
    }
  }
  const std::string cmd = str_cat("node \"", (tok_test::source_dir() / "tests/text/lenml_reference.mjs").string(), "\" \"",
                                  tok_test::tokenizer_dir(name).string(), "\" < \"", input.string(), "\"");
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr) << "cannot run: " << cmd;
  std::string out;
  char buf[65536];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int rc = pclose(p);
  std::filesystem::remove(input);
  ASSERT_EQ(rc, 0) << "node failed (is Node.js installed and scripts/setup run?): " << cmd;
  const auto lines = split(out, '\n');
  ASSERT_GE(lines.size(), texts.size()) << "seed " << seed;
  int failures = 0;
  for (size_t i = 0; i < texts.size(); ++i) {
    const auto want = json::parse(lines[i])["ids"].get<std::vector<int32_t>>();
    auto got = tok.encode(texts[i], false);
    ASSERT_TRUE(got.is_ok()) << got.status().to_string();
    if (*got != want && ++failures <= 5)
      ADD_FAILURE() << name << " (KILN_DIFF_SEED=" << seed << "): "
                    << json(texts[i]).dump(-1, ' ', true) << "\n  lenml: " << json(want).dump()
                    << "\n  kiln:  " << json(*got).dump();
  }
  EXPECT_EQ(failures, 0) << "KILN_DIFF_SEED=" << seed;
}

INSTANTIATE_TEST_SUITE_P(tokenizer_differential, TokenizerDifferential, ::testing::ValuesIn(tok_test::tokenizer_names()),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

}  // namespace
}  // namespace kiln::text
