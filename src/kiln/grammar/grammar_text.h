// Grammar text to a Grammar: llama.cpp's GBNF (`rule ::= ...`, root rule `root`) and a Lark-style
// form (`rule: ...`, `TERMINAL: ...`, /regex/ literals, start rule `start`), detected from the
// text. Errors give the line and column.
#pragma once

#include <string_view>

#include "kiln/core/status.h"
#include "kiln/grammar/grammar.h"

namespace kiln::grammar {

Result<Grammar> grammar_from_text(std::string_view text);

}  // namespace kiln::grammar
