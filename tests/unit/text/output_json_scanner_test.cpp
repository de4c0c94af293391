// The incremental JSON validator the parsers stream arguments through, checked against
// nlohmann's parser: on hand-picked values and on random mutations of JSON texts, the scanner
// completes a value exactly when the text is one JSON value, and never later than its end.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <random>

#include "kiln/text/output_parser_internal.h"
#include "kiln/text/utf8.h"

namespace kiln::text::output {
namespace {

// 1: the scanner completes a value at the last character and finds nothing wrong before;
// 0: it reports an error or is still waiting at the end.
bool scanner_accepts(const std::string& s) {
  JsonScanner sc;
  for (size_t i = 0; i < s.size(); ++i) {
    const JsonScanner::Step st = sc.feed(s[i]);
    if (st == JsonScanner::Step::kError) return false;
    if (st == JsonScanner::Step::kDone) return trim_ws(s.substr(i + 1)).empty();
    if (st == JsonScanner::Step::kDoneBefore) return false;  // a bare number: not used at the top
  }
  return false;
}

bool reference_accepts(const std::string& s) {
  auto j = nlohmann::json::parse(s, nullptr, false);
  return !j.is_discarded() && (j.is_object() || j.is_array() || j.is_string() || j.is_boolean() || j.is_null());
}

TEST(JsonScanner, HandPicked) {
  for (const char* ok : {"{}", "[]", " {\"a\": [1, -2.5e+3, 0, 0.0, true, false, null, \"x\\u00e9\\n\"]} ",
                               "{\"\": {}}", "\"str\"", "[[[]]]", "{\"a\":{\"b\":{\"c\":[{}]}}}", "[1e5,1E-5,-0]"}) {
    EXPECT_TRUE(scanner_accepts(ok)) << ok;
  }
  for (const char* bad : {"{,}", "{\"a\" 1}", "{\"a\": 01}", "[1,]", "{\"a\":1,}", "[-]", "[1.]", "[1e]",
                                "[tru]", "{\"a\": \"\\x\"}", "{\"a\": \"\\u12G4\"}", "{\"a\n\": 1}", "{]", "[}",
                                "{'a': 1}", "[+1]", "[.5]", "{\"a\": NaN}", "[\"\\ud83d\"]", "[\"\\ude80\"]",
                                "[\"\\ud83d\\n\"]", "[\"\\ud83d\\ud83d\"]"}) {
    EXPECT_FALSE(scanner_accepts(bad)) << bad;
  }
}

TEST(JsonScanner, DepthIsBounded) {
  EXPECT_FALSE(scanner_accepts(std::string(1000, '[') + std::string(1000, ']')));
  EXPECT_TRUE(scanner_accepts(std::string(100, '[') + std::string(100, ']')));
}

TEST(JsonScanner, AgreesWithNlohmannOnMutations) {
  const std::vector<std::string> seeds = {
      "{\"name\": \"f\", \"arguments\": {\"a\": [1, 2.5, -3e2], \"b\": {\"c\": null, \"d\": true}}}",
      "[\"x\\\"y\", {\"k\": false}, [], {}, 0, -0.25E+7]",
      "{\"u\": \"\\u00e9\\ud83d\\ude80 东京\", \"e\": \"\\\\/\\b\\f\\n\\r\\t\"}",
  };
  const std::string alphabet = "{}[]\",:0123456789.-+eE truefalsn\\u/x";
  std::mt19937_64 rng(7);
  int checked = 0;
  for (int iter = 0; iter < 20000; ++iter) {
    std::string s = seeds[rng() % seeds.size()];
    const int edits = 1 + static_cast<int>(rng() % 3);
    for (int e = 0; e < edits; ++e) {
      const size_t pos = rng() % (s.size() + 1);
      switch (rng() % 3) {
        case 0: s.insert(pos, 1, alphabet[rng() % alphabet.size()]); break;
        case 1: if (pos < s.size()) s.erase(pos, 1); break;
        default: if (pos < s.size()) s[pos] = alphabet[rng() % alphabet.size()]; break;
      }
    }
    // The parsers see valid UTF-8 only (detokenized text): a cut through a character is not a case.
    if (s.empty() || kiln::text::utf8_lossy(s) != s) continue;
    ASSERT_EQ(scanner_accepts(s), reference_accepts(s)) << s;
    ++checked;
  }
  EXPECT_GT(checked, 15000);
}

}  // namespace
}  // namespace kiln::text::output
