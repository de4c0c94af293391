// A compiled Jinja template: parse once (at model load), render many times (per request, from
// any thread: rendering shares nothing mutable between calls).
#pragma once

#include <ctime>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/core/status.h"
#include "kiln/text/jinja/ast.h"
#include "kiln/text/jinja/interpreter.h"
#include "kiln/text/jinja/parser.h"
#include "kiln/text/jinja/value.h"

namespace kiln::text::jinja {

struct RenderOptions {
  RenderLimits limits;
  // The clock strftime_now reads; the system clock when empty.
  std::function<std::time_t()> now;
};

// Why a render failed, beside the Status: kRaised means the template called raise_exception and
// the Status message is exactly its argument.
struct RenderFailure {
  RenderError::Kind kind = RenderError::Kind::kValue;
  int line = 0;
};

class Template {
 public:
  // Syntax errors are kInvalidArgument and constructs kiln cannot run are kUnimplemented; both
  // name the line ("line 12: no filter named 'from_json'").
  static Result<Template> parse(std::string_view source, const ParseLimits& limits = {});

  // Renders with `context` as the template's variables, over jinja2's globals plus
  // raise_exception and strftime_now. Errors: raise_exception gives kInvalidArgument with its
  // message; exceeded limits give kResourceExhausted; anything else kInvalidArgument naming the line.
  Result<std::string> render(const DictData& context, const RenderOptions& options = {},
                             RenderFailure* failure = nullptr) const;

  // Missing filters/tests in branches that only fail if they run (see ParsedTemplate).
  const std::vector<std::string>& warnings() const { return *warnings_; }

 private:
  std::shared_ptr<const Body> body_;
  std::shared_ptr<const std::vector<std::string>> warnings_;
};

// Parses JSON text into Values (objects keep their key order). Nesting deeper than max_depth is
// an error rather than a risk to the stack.
Result<Value> value_from_json(std::string_view json_text, int max_depth = 128);

}  // namespace kiln::text::jinja
