// Encode and decode must equal Hugging Face `tokenizers` exactly on the committed corpus
// (tests/fixtures/tokenizers/*.jsonl, written by tools/make_tokenizer_fixtures.py).
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "kiln/core/str.h"
#include "tokenizer_test_util.h"

namespace kiln::text {
namespace {

using nlohmann::json;
using tok_test::decode_varints_base64;

std::vector<std::string> read_lines(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(f, line))
    if (!line.empty()) lines.push_back(line);
  return lines;
}

std::string expected_decode(const json& rec, const char* key, const std::string& text) {
  auto it = rec.find(key);
  if (it == rec.end()) return text;
  if (it->is_string()) return it->get<std::string>();
  if (it->contains("p")) return (*it)["p"].get<std::string>() + text;
  return text + (*it)["s"].get<std::string>();
}

std::string show(const std::string& s) {
  return json(s).dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string show_ids(const std::vector<int32_t>& ids) {
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < ids.size() && i < 40; ++i) os << (i ? "," : "") << ids[i];
  if (ids.size() > 40) os << ",... (" << ids.size() << ")";
  os << "]";
  return os.str();
}

class TokenizerParity : public ::testing::TestWithParam<std::string> {};

TEST_P(TokenizerParity, MatchesHuggingFaceOnCorpus) {
  const std::string name = GetParam();
  const auto fixture = tok_test::fixture_dir() / (name + ".jsonl");
  ASSERT_TRUE(std::filesystem::exists(fixture))
      << "fixture missing: " << fixture << "\nGenerate it with tools/make_tokenizer_fixtures.py where Hugging Face "
      << "`tokenizers` is installed (see the script's usage).";
  auto tok_or = tok_test::shared_tokenizer(name);
  ASSERT_TRUE(tok_or.is_ok()) << tok_or.status().to_string() << "\n(run scripts/setup to install the npm test data)";
  const Tokenizer& tok = **tok_or;

  const auto corpus = read_lines(tok_test::fixture_dir() / "corpus.jsonl");
  const auto lines = read_lines(fixture);
  ASSERT_GE(lines.size(), corpus.size() + 1);
  const json header = json::parse(lines[0]);
  ASSERT_EQ(header["strings"].get<size_t>(), corpus.size()) << "fixture was made from another corpus";

  int failures = 0;
  auto report = [&](const std::string& what) {
    if (++failures <= 12) ADD_FAILURE() << name << ": " << what;
  };
  for (size_t i = 0; i < corpus.size(); ++i) {
    const std::string text = json::parse(corpus[i])["text"].get<std::string>();
    const json rec = json::parse(lines[i + 1]);
    const auto ids = decode_varints_base64(rec["ids"].get<std::string>());
    std::vector<int32_t> ids_sp;
    if (rec.contains("sp")) {
      ids_sp = rec["sp"][0].get<std::vector<int32_t>>();
      ids_sp.insert(ids_sp.end(), ids.begin(), ids.end());
      const auto suffix = rec["sp"][1].get<std::vector<int32_t>>();
      ids_sp.insert(ids_sp.end(), suffix.begin(), suffix.end());
    } else {
      ids_sp = decode_varints_base64(rec["ids_sp"].get<std::string>());
    }
    const std::string shown = show(text.substr(0, 120));
    auto got = tok.encode(text, false);
    if (!got.is_ok()) {
      report(str_cat("string ", i, " ", shown, ": encode failed: ", got.status().to_string()));
      continue;
    }
    if (*got != ids) report(str_cat("string ", i, " ", shown, ": encode\n  want ", show_ids(ids), "\n  got  ", show_ids(*got)));
    auto got_sp = tok.encode(text, true);
    if (got_sp.is_ok() && *got_sp != ids_sp)
      report(str_cat("string ", i, " ", shown, ": encode with special tokens\n  want ", show_ids(ids_sp), "\n  got  ",
                     show_ids(*got_sp)));
    for (bool skip : {false, true}) {
      const std::string want = expected_decode(rec, skip ? "ds" : "d", text);
      const std::string dec = tok.decode(ids_sp, skip);
      if (dec != want)
        report(str_cat("string ", i, " ", shown, ": decode(skip_special_tokens=", skip, ")\n  want ",
                       show(want), "\n  got  ", show(dec)));
    }
  }
  for (size_t i = corpus.size() + 1; i < lines.size(); ++i) {
    const json rec = json::parse(lines[i]);
    const auto ids = decode_varints_base64(rec["rand"].get<std::string>());
    for (bool skip : {false, true}) {
      const std::string want = rec[skip ? "ds" : "d"].get<std::string>();
      const std::string dec = tok.decode(ids, skip);
      if (dec != want)
        report(str_cat("random ids ", show_ids(ids), ": decode(skip_special_tokens=", skip, ")\n  want ",
                       show(want), "\n  got  ", show(dec)));
    }
  }
  EXPECT_EQ(failures, 0) << name << ": " << failures << " mismatches with Hugging Face tokenizers "
                         << header.value("hf_tokenizers", "?");
}

INSTANTIATE_TEST_SUITE_P(All, TokenizerParity, ::testing::ValuesIn(tok_test::tokenizer_names()),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

}  // namespace
}  // namespace kiln::text
