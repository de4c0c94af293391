// Builds the AST from tokens with jinja2's grammar and precedence. Everything transformers'
// environment cannot run (include, extends, import, unknown tags, filters or tests) is an error
// here, at load time, naming the template line.
#pragma once

#include <string_view>

#include "kiln/core/status.h"
#include "kiln/text/jinja/ast.h"

namespace kiln::text::jinja {

struct ParseLimits {
  int max_depth = 256;  // nesting of expressions and blocks together
};

struct ParsedTemplate {
  Body body;
  // Filters and tests kiln lacks (as Python jinja2 lacks them) that sit inside an `if` branch
  // or a conditional expression: jinja2 loads such templates and fails only if that code runs,
  // and so does kiln. One line each: "line 90: no filter named 'from_json'".
  std::vector<std::string> warnings;
};

Result<ParsedTemplate> parse_template(std::string_view source, const ParseLimits& limits = {});

}  // namespace kiln::text::jinja
