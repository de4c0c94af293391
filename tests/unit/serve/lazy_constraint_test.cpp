// The lazy constraint of `strict` tools under tool_choice "auto": free (every token allowed) until
// the family's call marker appears, as a special token or spelled across text tokens, then the
// call grammar from the marker on, then free again once the call block is whole.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "kiln/grammar/matcher.h"
#include "kiln/grammar/tool_call.h"
#include "kiln/serve/grammar_constraint.h"

namespace kiln::serve {
namespace {

// 0 "</s>" (end), 1 "[TOOL_CALLS]" and 2 "[ARGS]" special, then the multi-byte pieces below,
// then one token per printable ASCII character.
const std::vector<std::string> kPieces = {"<tool", "_call>\n{", "_call>x", "\n"};

struct Vocab {
  std::shared_ptr<const grammar::TokenVocabulary> v;
  int32_t piece(size_t i) const { return static_cast<int32_t>(3 + i); }
  int32_t ch(char c) const {
    return c == '\n' ? piece(3) : static_cast<int32_t>(3 + kPieces.size() + static_cast<size_t>(c - 32));
  }
};

Vocab vocab() {
  std::vector<std::string> toks = {"</s>", "[TOOL_CALLS]", "[ARGS]"};
  toks.insert(toks.end(), kPieces.begin(), kPieces.end());
  for (int c = 32; c < 127; ++c) toks.emplace_back(1, static_cast<char>(c));
  std::vector<bool> special(toks.size(), false);
  special[0] = special[1] = special[2] = true;
  return {grammar::TokenVocabulary::from_bytes(toks, special, {0})};
}

std::unique_ptr<TokenConstraint> lazy(const Vocab& v, grammar::ToolCallSpec s) {
  s.lazy = true;
  s.tools = {{"get_time", R"({"type": "object", "properties": {"tz": {"enum": ["UTC"]}}, "additionalProperties": false})",
              true}};
  auto g = grammar::tool_call_grammar(s);
  EXPECT_TRUE(g.is_ok()) << g.status().message();
  auto cg = grammar::CompiledGrammar::compile(std::move(g).value());
  EXPECT_TRUE(cg.is_ok());
  auto trigger = grammar::tool_call_trigger(s);
  EXPECT_TRUE(trigger.has_value());
  return lazy_grammar_constraint(*cg, v.v, *trigger)->make();
}

bool allowed(TokenConstraint& c, const Vocab& v, int32_t t) {
  std::vector<uint32_t> mask(v.v->mask_words() + 1);
  c.fill_mask(mask);
  return (mask[static_cast<size_t>(t) / 32] >> (t % 32) & 1u) != 0;
}

bool all_allowed(TokenConstraint& c, const Vocab& v) {
  std::vector<uint32_t> mask(v.v->mask_words() + 1);
  c.fill_mask(mask);
  return std::all_of(mask.begin(), mask.end(), [](uint32_t w) { return w == ~0u; });
}

void text(TokenConstraint& c, const Vocab& v, std::string_view s) {
  for (char ch : s) ASSERT_TRUE(c.accept(v.ch(ch))) << ch;
}

TEST(LazyGrammarConstraint, ASpecialMarkerStartsTheCallGrammarUntilTheCallEnds) {
  const Vocab v = vocab();
  grammar::ToolCallSpec s;
  s.family = "mistral";
  s.dialect = "v11";
  s.special_markers = {"[TOOL_CALLS]", "[ARGS]"};
  auto c = lazy(v, s);
  EXPECT_TRUE(all_allowed(*c, v));
  text(*c, v, "I will call it.");  // free text, anything goes
  EXPECT_TRUE(all_allowed(*c, v));
  ASSERT_TRUE(c->accept(1));  // [TOOL_CALLS]
  EXPECT_TRUE(allowed(*c, v, v.ch('g')));
  EXPECT_FALSE(allowed(*c, v, v.ch('x')));  // not an offered tool's name
  EXPECT_FALSE(allowed(*c, v, 0));          // no ending inside a call
  text(*c, v, "get_time");
  EXPECT_TRUE(allowed(*c, v, 2));
  EXPECT_FALSE(allowed(*c, v, v.ch('[')));  // [ARGS] spelled out is not the special token
  ASSERT_TRUE(c->accept(2));
  text(*c, v, "{\"tz\": ");
  EXPECT_FALSE(c->accept(v.ch('1')));  // the strict schema holds
  text(*c, v, "\"UTC\"}");
  EXPECT_FALSE(c->complete());
  EXPECT_TRUE(all_allowed(*c, v));  // the call is whole: free again
  text(*c, v, "Done.");
  ASSERT_TRUE(c->accept(1));  // and the next marker starts another call
  EXPECT_FALSE(allowed(*c, v, v.ch('x')));
}

TEST(LazyGrammarConstraint, AMarkerSpelledAcrossTokensAndTheTextAfterIt) {
  const Vocab v = vocab();
  grammar::ToolCallSpec s;
  s.family = "hermes";
  auto c = lazy(v, s);
  text(*c, v, "ok ");
  ASSERT_TRUE(c->accept(v.piece(0)));  // "<tool"
  EXPECT_TRUE(all_allowed(*c, v));
  ASSERT_TRUE(c->accept(v.piece(1)));  // "_call>\n{": the marker, and "\n{" of the call after it
  EXPECT_TRUE(allowed(*c, v, v.ch('"')));
  EXPECT_FALSE(allowed(*c, v, v.ch('}')));
  text(*c, v, "\"name\": \"get_time\", \"arguments\": {}}\n</tool_call>");
  EXPECT_TRUE(all_allowed(*c, v));
  // A token that completes the marker with text the call cannot have is let pass, unconstrained.
  auto d = lazy(v, s);
  ASSERT_TRUE(d->accept(v.piece(0)));
  ASSERT_TRUE(d->accept(v.piece(2)));  // "_call>x"
  EXPECT_TRUE(all_allowed(*d, v));
}

}  // namespace
}  // namespace kiln::serve
