#include "kiln/http/tool_request.h"

namespace kiln::http {

ToolConstraint tool_constraint(const ToolRequest& r, std::string_view tool_parser) {
  ToolConstraint c;
  c.family = std::string(tool_parser);
  c.parallel = r.parallel_tool_calls;
  if (!r.offered()) return c;
  switch (r.choice) {
    case ToolChoice::kRequired:
      c.kind = ToolConstraint::Kind::kAnyCall;
      c.tools = r.tools;
      break;
    case ToolChoice::kNamed:
      c.kind = ToolConstraint::Kind::kNamedCall;
      for (const auto& t : r.tools) {
        if (t.name == r.named) c.tools.push_back(t);
      }
      break;
    case ToolChoice::kAuto:
      for (const auto& t : r.tools) {
        if (t.strict) c.tools.push_back(t);
      }
      if (!c.tools.empty()) c.kind = ToolConstraint::Kind::kStrictLazy;
      break;
    case ToolChoice::kNone:
      break;
  }
  return c;
}

}  // namespace kiln::http
