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

Result<Body> parse_template(std::string_view source, const ParseLimits& limits = {});

}  // namespace kiln::text::jinja
