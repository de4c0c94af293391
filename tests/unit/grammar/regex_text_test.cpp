#include "kiln/grammar/regex_text.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "kiln/core/str.h"
#include "kiln/grammar/limits.h"
#include "unit/grammar/grammar_reference.h"

namespace kiln::grammar {
namespace {

using json = nlohmann::json;

std::string source_dir() {
  const char* env = std::getenv("KILN_SOURCE_DIR");
  return env != nullptr ? env : KILN_SOURCE_DIR;
}

// Full match of `s` against the pattern, as kiln reads it (anchors make no difference to a full
// match except through the padding of a partly anchored pattern).
bool matches(std::string_view pattern, std::string_view s) {
  RegexPool pool;
  auto r = parse_regex(pool, pattern);
  EXPECT_TRUE(r.is_ok()) << pattern << ": " << r.status().to_string();
  return r.is_ok() && reference::full_match(pool, r->regex, s);
}

// Whether the pattern matches somewhere in `s` (JSON Schema's reading): unanchored ends padded.
RegexId search_regex(RegexPool& pool, const ParsedRegex& r) {
  RegexId any = pool.star(pool.any_char());
  return pool.concat({r.anchored_start ? pool.empty() : any, r.regex, r.anchored_end ? pool.empty() : any});
}

bool search(std::string_view pattern, std::string_view s) {
  RegexPool pool;
  auto r = parse_regex(pool, pattern);
  EXPECT_TRUE(r.is_ok()) << pattern << ": " << r.status().to_string();
  return r.is_ok() && reference::full_match(pool, search_regex(pool, *r), s);
}

std::string error_of(std::string_view pattern) {
  RegexPool pool;
  auto r = parse_regex(pool, pattern);
  return r.is_ok() ? "" : r.status().message();
}

TEST(ParseRegex, LiteralsClassesAndQuantifiers) {
  EXPECT_TRUE(matches("abc", "abc"));
  EXPECT_FALSE(matches("abc", "abd"));
  EXPECT_TRUE(matches("a|bc|", ""));
  EXPECT_TRUE(matches("[a-c]{2,3}", "cab"));
  EXPECT_FALSE(matches("[a-c]{2,3}", "cabc"));
  EXPECT_TRUE(matches("x{2,}", "xxxxx"));
  EXPECT_FALSE(matches("x{2,}", "x"));
  EXPECT_TRUE(matches("(?:ab)+?c", "ababc"));
  EXPECT_TRUE(matches("(?<year>\\d{4})-(\\d\\d)", "2024-05"));
  EXPECT_TRUE(matches("[^\\d\\s]+", "ab_!"));
  EXPECT_FALSE(matches("[^\\d\\s]+", "a b"));
  EXPECT_TRUE(matches("\\x41\\u0042\\u{1F600}\\uD83D\\uDE00", "AB\xF0\x9F\x98\x80\xF0\x9F\x98\x80"));
  EXPECT_TRUE(matches("[\\b]\\cJ\\0", std::string("\b\n\0", 3)));
  EXPECT_TRUE(matches("\\s", "\xE3\x80\x80"));  // U+3000, a Unicode space separator
  EXPECT_TRUE(matches(".", "\xE2\x82\xAC"));
  EXPECT_FALSE(matches(".", "\n"));
  EXPECT_FALSE(matches(".", "\xE2\x80\xA8"));  // U+2028
  EXPECT_TRUE(matches("[^]", "\n"));
  EXPECT_FALSE(matches("[]", ""));
  EXPECT_TRUE(matches("a{,2}", "a{,2}"));  // not a quantifier: literal braces (Annex B)
  EXPECT_TRUE(matches("[-a]\\-[a-]", "---"));
  EXPECT_TRUE(matches("\\/\\.\\*", "/.*"));
}

TEST(ParseRegex, AnchorsGiveSearchSemantics) {
  RegexPool pool;
  auto r = parse_regex(pool, "^ab$");
  ASSERT_TRUE(r.is_ok());
  EXPECT_TRUE(r->anchored_start && r->anchored_end);
  EXPECT_EQ(pool.to_string(r->regex), "ab");
  r = parse_regex(pool, "ab");
  ASSERT_TRUE(r.is_ok());
  EXPECT_FALSE(r->anchored_start || r->anchored_end);
  // Anchors inside a group that starts the pattern count; an alternative without one is padded.
  EXPECT_TRUE(search("(^a|b)c", "xxbcx"));
  EXPECT_TRUE(search("(^a|b)c", "acx"));
  EXPECT_FALSE(search("(^a|b)c", "xxac"));
  EXPECT_TRUE(search("^a$|b", "xbx"));
  EXPECT_FALSE(search("^a$|b", "ax"));
  EXPECT_TRUE(search("^$", ""));
  EXPECT_FALSE(search("^$", "a"));
  EXPECT_TRUE(search("^", "anything"));
  EXPECT_TRUE(search("a", "xax"));
}

TEST(ParseRegex, RefusesWhatItCannotEnforce) {
  EXPECT_EQ(error_of("a^b"), "regex: '^' not at the start of the pattern or a top-level alternative at offset 1");
  EXPECT_EQ(error_of("(a$)*"), "regex: '$' not at the end of the pattern or a top-level alternative at offset 2");
  EXPECT_EQ(error_of("(a)\\1"), "regex: a backreference (\\1-\\9) is not supported at offset 3");
  EXPECT_EQ(error_of("(?<n>a)\\k<n>"), "regex: the backreference \\k is not supported at offset 7");
  EXPECT_EQ(error_of("a(?=b)"), "regex: lookahead (?= / (?! is not supported at offset 1");
  EXPECT_EQ(error_of("(?<!a)b"), "regex: lookbehind (?<= / (?<! is not supported at offset 0");
  EXPECT_EQ(error_of("\\bword"), "regex: the word boundary \\b is not supported at offset 0");
  EXPECT_EQ(error_of("\\p{L}"),
            "regex: the Unicode property escape \\p{L} is not supported (only Zs, ASCII and Any are) at offset 0");
  EXPECT_EQ(error_of("\\P"), "regex: the Unicode property escape \\P{} is not supported (only Zs, ASCII and Any are) at offset 0");
  EXPECT_EQ(error_of("(?i)a"), "regex: an unsupported group '(?' (inline flags and modifiers are not supported) at offset 0");
  EXPECT_EQ(error_of("\\a"), "regex: an unknown escape '\\a' at offset 0");
  EXPECT_EQ(error_of("*a"), "regex: nothing to repeat at offset 0");
  EXPECT_EQ(error_of("a**"), "regex: nothing to repeat at offset 2");
  EXPECT_EQ(error_of("a{3,2}"), "regex: a repeat range out of order at offset 1");
  EXPECT_EQ(error_of("a{10001}"), "regex: a repeat count over 10000 at offset 1");
  EXPECT_EQ(error_of("[z-a]"), "regex: a character range out of order at offset 1");
  EXPECT_EQ(error_of("[\\d-z]"), "regex: a class escape as a range bound at offset 1");
  EXPECT_EQ(error_of("(ab"), "regex: an unterminated group at offset 0");
  EXPECT_EQ(error_of("ab)"), "regex: unmatched ')' at offset 2");
  EXPECT_EQ(error_of("[ab"), "regex: an unterminated character class at offset 0");
  EXPECT_EQ(error_of("ab\\"), "regex: '\\' at the end of the pattern at offset 2");
  EXPECT_EQ(error_of("\xC3("), "regex: invalid UTF-8 at offset 0");
  EXPECT_EQ(error_of("\\012"), "regex: an octal escape at offset 0");
  std::string deep(limits::kMaxNesting, '(');
  deep += std::string(limits::kMaxNesting, ')');
  EXPECT_EQ(error_of(deep), "");
  EXPECT_EQ(error_of("(" + deep + ")"), "regex: groups nested deeper than 64 at offset 64");
  EXPECT_NE(error_of(std::string(limits::kMaxSourceBytes + 1, 'a')), "");
}

TEST(ParseRegex, FlagsFromLark) {
  RegexPool pool;
  auto r = parse_regex(pool, "[a-c]x.", RegexFlags{.ignore_case = true, .dot_all = true});
  ASSERT_TRUE(r.is_ok());
  EXPECT_TRUE(reference::full_match(pool, r->regex, "BX\n"));
  EXPECT_FALSE(reference::full_match(pool, r->regex, "DX\n"));
}

TEST(RegexGrammar, WholeOutputMatches) {
  auto g = regex_grammar("^[0-9]+(\\.[0-9]+)?$");
  ASSERT_TRUE(g.is_ok()) << g.status().to_string();
  EXPECT_TRUE(reference::accepts(*g, "12.5"));
  EXPECT_FALSE(reference::accepts(*g, "12."));
  auto e = regex_grammar("");
  ASSERT_TRUE(e.is_ok());
  EXPECT_TRUE(reference::accepts(*e, ""));
  EXPECT_FALSE(reference::accepts(*e, "a"));
  auto star = regex_grammar("(ab)*c?");
  ASSERT_TRUE(star.is_ok());
  EXPECT_TRUE(reference::accepts(*star, ""));
  EXPECT_TRUE(reference::accepts(*star, "ababc"));
  EXPECT_FALSE(reference::accepts(*star, "abcab"));
  for (const Terminal& t : star->terminals) EXPECT_FALSE(reference::full_match(star->regexes, t.regex, ""));
  EXPECT_EQ(regex_grammar("[]").status().message(), "regex: the pattern matches no string");
  EXPECT_FALSE(regex_grammar("(?=a)").is_ok());
}

TEST(ChoiceGrammar, ExactlyOneChoice) {
  std::vector<std::string> choices = {"yes", "no", "yes please", "\xC3\xA9t\xC3\xA9", ""};
  auto g = choice_grammar(choices);
  ASSERT_TRUE(g.is_ok()) << g.status().to_string();
  for (const auto& c : choices) EXPECT_TRUE(reference::accepts(*g, c)) << c;
  EXPECT_FALSE(reference::accepts(*g, "ye"));
  EXPECT_FALSE(reference::accepts(*g, "yesno"));
  EXPECT_EQ(choice_grammar({}).status().message(), "choice: the list of choices is empty");
  std::vector<std::string> many(limits::kMaxChoices + 1, "x");
  EXPECT_EQ(choice_grammar(many).status().message(), "choice: more than 10000 choices");
  std::vector<std::string> bad = {"\xFF"};
  EXPECT_FALSE(choice_grammar(bad).is_ok());
}

// Hand-picked corners of the dialect, checked against Node beside the JSON Schema corpus.
const char* const kTrickyPatterns[] = {
    "a|b|",  "(a|ab)(c|bcd)(d*)", "[\\w.-]+@[\\w-]+\\.[a-z]{2,}", "^\\s*$",  "[^\\W\\d]", "\\S\\D\\W",
    ".{2,4}", "[\\u0041-\\u005A\\u{1F600}-\\u{1F64F}]+", "x{0}y{1}z{0,0}", "(?:a?){3}", "[\\]\\[\\\\]",
    "\\cM\\t\\v\\f", "[.]\\.", "(\\d+|\\d+\\.\\d*)e?", "^(a|b)*?$", "[^\\s\\S]", "[\\s\\S]",
    "\\u00e9|e\\u0301", "[\\p{Zs}x]\\P{ASCII}",
};

std::vector<std::string> mutations(std::string s, std::mt19937& rng) {
  static const std::string kAlphabet = "aAzZ09_-.@ \t\n/\\[](){}|*+?^$\xC3\xA9\xE2\x80\xA8\xF0\x9F\x98\x80";
  std::vector<std::string> out;
  auto pick = [&rng](size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng); };
  for (int i = 0; i < 3; ++i) {
    std::string m = s;
    size_t at = m.empty() ? 0 : pick(m.size() + 1);
    switch (pick(3)) {
      case 0: m.insert(at, 1, kAlphabet[pick(16)]); break;
      case 1: if (at < m.size()) m.erase(at, 1); break;
      default: if (at < m.size()) m[at] = kAlphabet[pick(16)]; break;
    }
    if (is_valid_utf8(m)) out.push_back(m);
  }
  return out;
}

// kiln's language for each pattern (through the reference matcher) must equal ECMAScript's, both
// for "matches somewhere" (JSON Schema) and, for patterns without anchors, for full matches, on
// strings sampled from kiln's language and small edits of them.
TEST(ParseRegex, AgreesWithNodeRegExp) {
  std::ifstream f(source_dir() + "/tests/fixtures/grammar/jsonschema_patterns.json");
  ASSERT_TRUE(f.good());
  std::vector<std::string> patterns = json::parse(f).get<std::vector<std::string>>();
  for (const char* p : kTrickyPatterns) patterns.emplace_back(p);
  std::mt19937 rng(1234);
  struct Case {
    std::string pattern;
    std::vector<std::string> strings;
    std::vector<bool> search;  // kiln's answers
    std::vector<bool> full;    // set only for patterns without anchors
  };
  std::vector<Case> cases;
  size_t refused = 0;
  for (const std::string& p : patterns) {
    RegexPool pool;
    auto r = parse_regex(pool, p);
    if (!r.is_ok()) {
      ++refused;
      continue;
    }
    Case c{p, {}, {}, {}};
    for (int i = 0; i < 6; ++i) {
      std::string s;
      if (!reference::sample(pool, r->regex, rng, &s)) continue;
      c.strings.push_back(s);
      for (auto& m : mutations(s, rng)) c.strings.push_back(std::move(m));
    }
    c.strings.push_back("");
    RegexId searched = search_regex(pool, *r);
    bool unanchored = !r->anchored_start && !r->anchored_end;
    for (const auto& s : c.strings) {
      c.search.push_back(reference::full_match(pool, searched, s));
      if (unanchored) c.full.push_back(reference::full_match(pool, r->regex, s));
    }
    cases.push_back(std::move(c));
  }
  const auto input = std::filesystem::temp_directory_path() / str_cat("kiln_regex_", ::getpid(), ".jsonl");
  {
    std::ofstream o(input, std::ios::binary);
    for (const Case& c : cases) o << json{{"pattern", c.pattern}, {"strings", c.strings}}.dump() << "\n";
  }
  const std::string cmd = str_cat("node \"", source_dir(), "/tests/grammar/regexp_reference.mjs\" < \"", input.string(), "\"");
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr) << cmd;
  std::string out;
  char buf[65536];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int rc = pclose(p);
  std::filesystem::remove(input);
  ASSERT_EQ(rc, 0) << "node failed: " << cmd;
  auto lines = split(out, '\n');
  ASSERT_GE(lines.size(), cases.size());
  size_t compared = 0, failures = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    json res = json::parse(lines[i]);
    EXPECT_TRUE(res["ok"].get<bool>()) << "kiln accepts a pattern RegExp refuses: " << cases[i].pattern;
    if (!res["ok"].get<bool>()) continue;
    const Case& c = cases[i];
    for (size_t k = 0; k < c.strings.size(); ++k) {
      ++compared;
      bool want = res["search"][k].get<bool>();
      if (want != c.search[k] && ++failures <= 10) {
        ADD_FAILURE() << "pattern " << json(c.pattern).dump() << " string " << json(c.strings[k]).dump()
                      << ": RegExp test " << want << ", kiln " << c.search[k];
      }
      if (c.full.empty()) continue;
      want = res["full"][k].get<bool>();
      if (want != c.full[k] && ++failures <= 10) {
        ADD_FAILURE() << "pattern " << json(c.pattern).dump() << " string " << json(c.strings[k]).dump()
                      << ": RegExp full match " << want << ", kiln " << c.full[k];
      }
    }
  }
  EXPECT_EQ(failures, 0u);
  EXPECT_GT(compared, 3000u);
  EXPECT_LE(refused, patterns.size() / 50) << "more than 2% of the corpus patterns refused";
}

}  // namespace
}  // namespace kiln::grammar
