// Documents generated from kiln's JSON Schema grammars (a seeded random walk over the rules and
// the terminals' regexes) must validate against their schema in an independent validator: npm's
// ajv with ajv-formats (tests/grammar/json_schema_ajv.mjs), over the corpus sample.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "bench_grammar/corpus.h"
#include "earley_reference.h"
#include "kiln/core/str.h"
#include "kiln/grammar/json_schema.h"
#include "kiln/text/utf8.h"
#include "unit/text/tokenizer_test_util.h"

namespace kiln::grammar {
namespace {

class Generator {
 public:
  Generator(const Grammar& g, uint32_t seed) : g_(g), rng_(seed) {
    // Each rule's least derivation height, so that deep walks can head for an end.
    height_.assign(g.rules.size(), kInf);
    for (bool changed = true; changed;) {
      changed = false;
      for (size_t r = 0; r < g.rules.size(); ++r) {
        for (const auto& alt : g.rules[r].alternatives) {
          uint32_t h = alt_height(alt);
          if (h < height_[r]) height_[r] = h, changed = true;
        }
      }
    }
  }

  std::string sentence() {
    std::string out;
    rule(g_.start, 0, out);
    return out;
  }

 private:
  static constexpr uint32_t kInf = 1u << 30;

  uint32_t alt_height(const std::vector<Symbol>& alt) const {
    uint32_t h = 1;
    for (Symbol s : alt) {
      if (!s.is_terminal()) h = std::max(h, height_[s.index()] >= kInf ? kInf : height_[s.index()] + 1);
    }
    return h;
  }

  void rule(uint32_t r, int depth, std::string& out) {
    const auto& alts = g_.rules[r].alternatives;
    size_t pick = std::uniform_int_distribution<size_t>(0, alts.size() - 1)(rng_);
    if (depth > 6) {  // the shallowest alternative from here on
      for (size_t a = 0; a < alts.size(); ++a) {
        if (alt_height(alts[a]) < alt_height(alts[pick])) pick = a;
      }
    }
    for (Symbol s : alts[pick]) {
      if (s.is_terminal()) regex(g_.terminals[s.index()].regex, out);
      else rule(s.index(), depth + 1, out);
    }
  }

  void regex(RegexId id, std::string& out) {
    const RegexNode& n = g_.regexes.node(id);
    switch (n.kind) {
      case RegexNode::Kind::kNothing:
      case RegexNode::Kind::kEmpty: return;
      case RegexNode::Kind::kBytes:
      case RegexNode::Kind::kChars: {
        // Mostly printable ASCII where the ranges allow it, else any code point of them.
        std::vector<CharRange> ascii;
        for (const CharRange& r : n.ranges) {
          if (r.lo <= 0x7E && r.hi >= 0x20) ascii.push_back({std::max<uint32_t>(r.lo, 0x20), std::min<uint32_t>(r.hi, 0x7E)});
        }
        const auto& from = !ascii.empty() && rng_() % 8 != 0 ? ascii : n.ranges;
        const CharRange& r = from[rng_() % from.size()];
        uint32_t c = r.lo + static_cast<uint32_t>(rng_() % (static_cast<uint64_t>(r.hi) - r.lo + 1));
        if (n.kind == RegexNode::Kind::kBytes) {
          out += static_cast<char>(c);
        } else {
          text::append_utf8(out, static_cast<char32_t>(c));
        }
        return;
      }
      case RegexNode::Kind::kConcat:
        for (RegexId c : n.children) regex(c, out);
        return;
      case RegexNode::Kind::kAlt: regex(n.children[rng_() % n.children.size()], out); return;
      case RegexNode::Kind::kRepeat: {
        uint64_t span = n.max == kUnbounded ? 4 : std::min<uint64_t>(n.max - n.min, 4);
        uint64_t count = n.min + rng_() % (span + 1);
        for (uint64_t i = 0; i < count; ++i) regex(n.children[0], out);
        return;
      }
    }
  }

  const Grammar& g_;
  std::mt19937 rng_;
  std::vector<uint32_t> height_;
};

TEST(JsonSchemaAjv, GeneratedDocumentsValidate) {
  if (std::system("node --version > /dev/null 2>&1") != 0) GTEST_SKIP() << "node is not installed";
  std::filesystem::path src = text::tok_test::source_dir();
  auto cases = corpus::read_corpus(src / "tests" / "fixtures" / "jsonschema");
  ASSERT_FALSE(cases.empty());
  std::filesystem::path input = std::filesystem::temp_directory_path() / ("kiln_ajv_" + std::to_string(::getpid()) + ".jsonl");
  size_t docs = 0;
  {
    std::ofstream f(input);
    for (const auto& c : cases) {
      Result<Grammar> g = json_schema_grammar(c.schema_text, {});
      if (!g.is_ok()) continue;
      Generator gen(*g, 1234);
      nlohmann::json line = {{"name", c.name}, {"schema", nlohmann::json::parse(c.schema_text)}, {"docs", nlohmann::json::array()}};
      for (int i = 0; i < 8; ++i) {
        std::string doc = gen.sentence();
        if (!is_valid_utf8(doc)) continue;
        ASSERT_TRUE(testing::recognize(*g, doc).complete) << c.name << ": generated " << doc;
        line["docs"].push_back(doc);
        ++docs;
      }
      f << line.dump() << "\n";
    }
  }
  std::string cmd = "node \"" + (src / "tests" / "grammar" / "json_schema_ajv.mjs").string() + "\" < \"" + input.string() + "\"";
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string output;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof buf, p)) output.append(buf, n);
  int rc = pclose(p);
  std::filesystem::remove(input);
  ASSERT_EQ(rc, 0) << output;
  std::vector<std::string> lines = split(output, '\n');
  std::erase_if(lines, [](const std::string& l) { return l.empty(); });
  ASSERT_FALSE(lines.empty());
  auto summary = nlohmann::json::parse(lines.back());
  std::printf("ajv checked %d of %zu generated documents (%d schemas ajv could not compile)\n", summary["checked"].get<int>(),
              docs, summary["skipped"].get<int>());
  EXPECT_GT(summary["checked"].get<int>(), 500);
  for (size_t i = 0; i + 1 < lines.size(); ++i) ADD_FAILURE() << "ajv rejects " << lines[i];
}

}  // namespace
}  // namespace kiln::grammar
