// A slow, simple recognizer over a Grammar for tests: Earley parsing over terminals, each terminal
// matched by a memoized walk of its regex over the bytes. Independent of the matcher, so the two
// can be checked against each other.
#pragma once

#include <cstddef>
#include <string_view>

#include "kiln/grammar/grammar.h"

namespace kiln::grammar::testing {

struct Recognition {
  bool complete = false;  // the whole text is a sentence of the grammar
  bool viable = false;    // the text is a prefix of a sentence
};

Recognition recognize(const Grammar& g, std::string_view text);

}  // namespace kiln::grammar::testing
