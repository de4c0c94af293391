// Splits a template into data and tag tokens exactly as Python jinja2's lexer does with
// trim_blocks=True and lstrip_blocks=True (transformers' settings), including `-`/`+` whitespace
// control, comments and raw blocks.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/core/status.h"

namespace kiln::text::jinja {

enum class TokenType {
  kData,
  kVariableBegin,
  kVariableEnd,
  kBlockBegin,
  kBlockEnd,
  kName,
  kString,
  kInteger,
  kFloat,
  kOperator,
  kEof,
};

struct Token {
  TokenType type;
  std::string text;  // data, name, operator, or the unescaped string literal
  int64_t int_value = 0;
  double float_value = 0;
  int line = 1;
};

struct LexOptions {
  bool trim_blocks = true;
  bool lstrip_blocks = true;
};

// Errors name the line: "line 3: unexpected char '$'".
Result<std::vector<Token>> tokenize(std::string_view source, const LexOptions& options = {});

}  // namespace kiln::text::jinja
