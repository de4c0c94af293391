// `kiln tokenize --model DIR` end to end: the real binary, a directory with only tokenizer files.
#include <cstdio>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "kiln/core/str.h"
#include "tokenizer_test_util.h"

namespace kiln::text {
namespace {

std::string run_command(const std::string& cmd, int* rc) {
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return "";
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  *rc = pclose(p);
  return out;
}

TEST(TokenizerCli, EncodesJsonLines) {
  const auto input = std::filesystem::temp_directory_path() / "kiln_tokenize_cli_input.jsonl";
  {
    std::ofstream f(input, std::ios::binary);
    f << R"({"text": "Hello world"})" << "\n"
      << R"({"text": "Hello world", "add_special_tokens": false})" << "\n"
      << R"({"text": 42})" << "\n"
      << R"({"text": "caf\u00e9 \ud83d\ude00"})" << "\n";
  }
  int rc = 0;
  const std::string out = run_command(str_cat("\"", KILN_BINARY, "\" tokenize --model \"",
                                              tok_test::tokenizer_dir("llama2").string(), "\" < \"", input.string(), "\""),
                                      &rc);
  std::filesystem::remove(input);
  EXPECT_NE(rc, 0);  // the bad line makes the exit code non-zero
  const auto lines = split(out, '\n');
  ASSERT_GE(lines.size(), 4u) << out;
  using nlohmann::json;
  const json a = json::parse(lines[0]), b = json::parse(lines[1]), c = json::parse(lines[2]), d = json::parse(lines[3]);
  EXPECT_EQ(a["ids"], json({1, 22557, 1526}));
  EXPECT_EQ(a["text_back"], "Hello world");
  EXPECT_EQ(b["ids"], json({22557, 1526}));
  EXPECT_TRUE(c.contains("error"));
  EXPECT_EQ(d["ids"], json({1, 28345, 28705, 30575}));  // ids agree with @lenml/tokenizers
  EXPECT_EQ(d["text_back"], "café 😀");
}

}  // namespace
}  // namespace kiln::text
