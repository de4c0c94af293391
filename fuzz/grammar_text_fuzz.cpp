// libFuzzer target: any bytes as a regex (with Lark's flags), a regex grammar, a choice list or a
// GBNF / Lark grammar text must give a valid Grammar or a Status, never crash, hang, overflow the
// stack or grow without bound; and no grammar a text yields has a terminal matching the empty string.
//   clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -Isrc fuzz/grammar_text_fuzz.cpp \
//     src/kiln/grammar/*.cpp src/kiln/text/*.cpp src/kiln/text/jinja/*.cpp src/kiln/core/*.cpp -lpcre2-8 \
//     -o grammar_text_fuzz && ./grammar_text_fuzz -max_total_time=60 fuzz/corpus/grammar_text_fuzz
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/core/str.h"
#include "kiln/grammar/grammar_text.h"
#include "kiln/grammar/grammar_text_internal.h"
#include "kiln/grammar/regex_text.h"

namespace {

void check(const kiln::Result<kiln::grammar::Grammar>& g) {
  if (!g.is_ok()) return;
  if (!g->validate().is_ok()) std::abort();
  for (const auto& t : g->terminals) {
    if (kiln::grammar::text_detail::nullable(g->regexes, t.regex)) std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 4) {
    case 0: {
      kiln::grammar::RegexPool pool;
      kiln::grammar::RegexFlags flags{.ignore_case = (data[0] & 4) != 0, .dot_all = (data[0] & 8) != 0};
      (void)kiln::grammar::parse_regex(pool, text, flags).is_ok();
      break;
    }
    case 1: check(kiln::grammar::regex_grammar(text)); break;
    case 2: {
      std::vector<std::string> choices = kiln::split(text, '\n');
      check(kiln::grammar::choice_grammar(choices));
      break;
    }
    default: check(kiln::grammar::grammar_from_text(text)); break;
  }
  return 0;
}
