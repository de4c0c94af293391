// NFC/NFD/NFKC/NFKD against a sample of the Unicode conformance test, and the UTF-8 helpers.
#include <fstream>

#include <gtest/gtest.h>

#include "kiln/core/str.h"
#include "kiln/text/regex.h"
#include "kiln/text/unicode.h"
#include "kiln/text/utf8.h"
#include "tokenizer_test_util.h"

namespace kiln::text {
namespace {

std::string from_hex(const std::string& field) {
  std::string out;
  for (const std::string& h : split(field, ' '))
    if (!h.empty()) append_utf8(out, static_cast<char32_t>(std::stoul(h, nullptr, 16)));
  return out;
}

TEST(UnicodeNormalization, ConformanceSample) {
  std::ifstream f(tok_test::fixture_dir() / "unicode_normalization_sample.txt");
  ASSERT_TRUE(f.good()) << "missing unicode_normalization_sample.txt (tools/make_unicode_tables.py writes it)";
  std::string line;
  int n = 0, failures = 0;
  while (std::getline(f, line)) {
    if (line.empty() || line[0] == '#') continue;
    const auto cols = split(line, ';');
    ASSERT_GE(cols.size(), 5u) << line;
    std::string c[5];
    for (int i = 0; i < 5; ++i) c[i] = from_hex(cols[static_cast<size_t>(i)]);
    ++n;
    const bool ok = normalize(c[0], NormalizationForm::kNfc) == c[1] && normalize(c[0], NormalizationForm::kNfd) == c[2] &&
                    normalize(c[0], NormalizationForm::kNfkc) == c[3] &&
                    normalize(c[0], NormalizationForm::kNfkd) == c[4] && normalize(c[2], NormalizationForm::kNfc) == c[1] &&
                    normalize(c[4], NormalizationForm::kNfkc) == c[3];
    if (!ok && ++failures < 10) ADD_FAILURE() << "line: " << line;
  }
  EXPECT_GT(n, 2000);
  EXPECT_EQ(failures, 0);
}

TEST(UnicodeNormalization, Examples) {
  EXPECT_EQ(normalize("e\xCC\x81", NormalizationForm::kNfc), "\xC3\xA9");
  EXPECT_EQ(normalize("\xE2\x84\xAB", NormalizationForm::kNfc), "\xC3\x85");  // Angstrom sign -> Å
  EXPECT_EQ(normalize("\xEF\xAC\x81", NormalizationForm::kNfkc), "fi");
  EXPECT_EQ(normalize("\xEF\xAC\x81", NormalizationForm::kNfc), "\xEF\xAC\x81");
  EXPECT_EQ(normalize("\xE1\x84\x92\xE1\x85\xA1\xE1\x86\xAB", NormalizationForm::kNfc), "\xED\x95\x9C");  // 한
  EXPECT_EQ(normalize("plain ascii", NormalizationForm::kNfd), "plain ascii");
}

TEST(Utf8, LossyDecodingReplacesMaximalSubparts) {
  // As Rust's String::from_utf8_lossy and Python's decode("utf-8", "replace").
  EXPECT_EQ(utf8_lossy("a\xF0\x80\x80z"), "a\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBDz");
  EXPECT_EQ(utf8_lossy("\xE2\x82"), "\xEF\xBF\xBD");
  EXPECT_EQ(utf8_lossy("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(utf8_lossy("\xE2\x82\xAC\xFF"), "\xE2\x82\xAC\xEF\xBF\xBD");
  EXPECT_EQ(utf8_lossy("\xF4\x90\x80\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
  Utf8LossyStream st;
  std::string out;
  st.push("\xE2", out);
  st.push("\x82", out);
  EXPECT_EQ(out, "");
  st.push("\xAC!", out);
  EXPECT_EQ(out, "\xE2\x82\xAC!");
  st.push("\xF0\x9F", out);
  st.finish(out);
  EXPECT_EQ(out, "\xE2\x82\xAC!\xEF\xBF\xBD");
}

TEST(Regex, OnigurumaEscapesMeanWhatTheyMeanThere) {
  // Oniguruma's \s includes NEL (U+0085); PCRE2's does not, so kiln rewrites it.
  auto r = Regex::compile("\\s+");
  ASSERT_TRUE(r.is_ok());
  std::vector<std::pair<size_t, size_t>> m;
  ASSERT_TRUE(r->find_all("a\xC2\x85\xE3\x80\x80" "b", m).is_ok());
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0], (std::pair<size_t, size_t>{1, 6}));
  EXPECT_EQ(Regex::translate_onig("[^\\s\\p{L}]"), "[^\\t\\n\\x{0B}\\f\\r\\x{85}\\p{Z}\\p{L}]");
  // Empty matches advance by one character and never repeat at the previous match's end.
  auto e = Regex::compile("x*");
  ASSERT_TRUE(e.is_ok());
  m.clear();
  ASSERT_TRUE(e->find_all("axxb", m).is_ok());
  EXPECT_EQ(m, (std::vector<std::pair<size_t, size_t>>{{0, 0}, {1, 3}, {4, 4}}));
}

}  // namespace
}  // namespace kiln::text
