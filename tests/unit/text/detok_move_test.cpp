// A detokenizer keeps streaming correctly after it is moved (the server keeps one per choice in a
// vector that may grow while streams are open).
#include <gtest/gtest.h>

#include <vector>

#include "kiln/text/detokenizer.h"
#include "tokenizer_test_util.h"

namespace kiln::text {
namespace {

TEST(DetokMove, StreamsAfterMoves) {
  for (const char* name : {"llama3", "llama2"}) {
    auto tok = tok_test::shared_tokenizer(name);
    ASSERT_TRUE(tok.is_ok()) << tok.status().to_string();
    auto encoded = (*tok)->encode("Moved streams still say h\xC3\xA9llo, w\xC3\xB6rld \xF0\x9F\x98\x80!", false);
    ASSERT_TRUE(encoded.is_ok());
    const std::vector<int32_t>& ids = *encoded;
    std::vector<IncrementalDetokenizer> detoks;
    detoks.emplace_back(*tok, false);
    std::string text;
    for (size_t i = 0; i < ids.size(); ++i) {
      // Grow the vector so the first detokenizer is moved between pushes.
      for (int k = 0; k < 3; ++k) detoks.emplace_back(*tok, false);
      text += detoks.front().push(ids[i]);
    }
    text += detoks.front().finish();
    EXPECT_EQ(text, (*tok)->decode(ids, false)) << name;
  }
}

}  // namespace
}  // namespace kiln::text
