#include "kiln/grammar/tool_call.h"

#include "kiln/core/str.h"
#include "kiln/grammar/json_schema.h"
#include "kiln/grammar/limits.h"

namespace kiln::grammar {
namespace {

// A family's call syntax as literal text around the call object. The frame is the exact text the
// family's chat templates write for a call in the history (so a real model's own calls pass
// unchanged); inside the arguments JSON whitespace is free, as models write it either way.
struct Frame {
  std::string_view open;       // before {"name": "
  std::string_view args_key;   // the key of the arguments
  std::string_view close;      // after the call object
  std::string_view separator;  // between two calls
};

bool frame_of(std::string_view family, Frame* f) {
  if (family == "hermes") {
    // Qwen2.5 / Qwen3 / Hermes. Qwen's <tool_call> is an added but not special token, so the
    // matcher allows it by its bytes (and its spelling in ordinary tokens, which reads the same).
    *f = {"<tool_call>\n", "arguments", "\n</tool_call>", "\n"};
    return true;
  }
  if (family == "llama3") {
    // Llama 3.1-3.3: the bare JSON object form, not <|python_tag|> (a special token the matcher
    // never allows); several calls separated by "; ", as the llama3 parser reads them.
    *f = {"", "parameters", "", "; "};
    return true;
  }
  return false;
}

std::string json_string(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

}  // namespace

bool tool_call_family_supported(std::string_view family) {
  Frame f;
  return frame_of(family, &f);
}

Result<Grammar> tool_call_grammar(const ToolCallSpec& spec) {
  Frame f;
  if (!frame_of(spec.family, &f)) {
    return invalid_argument(str_cat("tool calls of the '", spec.family, "' format cannot be enforced"));
  }
  if (spec.tools.empty()) return invalid_argument("no tools to call");
  size_t source = 0;
  for (const ToolCallTool& t : spec.tools) source += t.name.size() + t.parameters_json.size();
  if (source > limits::kMaxSourceBytes) {
    return invalid_argument(str_cat("the tools' schemas are longer than ", limits::kMaxSourceBytes, " bytes together"));
  }
  Grammar g;
  const uint32_t start = g.add_rule("calls");
  const uint32_t call = g.add_rule("call");
  for (size_t i = 0; i < spec.tools.size(); ++i) {
    const ToolCallTool& t = spec.tools[i];
    JsonSchemaOptions o;
    o.compact_whitespace = false;
    o.max_whitespace = 8;
    o.default_additional_properties = !t.strict;
    // An absent schema ("{}") would allow any JSON value; arguments are always an object.
    auto args = t.parameters_json == "{}" ? json_object_grammar(o) : json_schema_grammar(t.parameters_json, o);
    if (!args.is_ok()) {
      return Status(args.status().code(), str_cat("tools[", i, "] (", t.name, "): ", args.status().message()));
    }
    const uint32_t args_rule = embed_grammar(&g, *args, str_cat("tool", i, "."));
    const std::string head = str_cat(f.open, "{\"name\": ", json_string(t.name), ", ", json_string(f.args_key), ": ");
    const std::string tail = str_cat("}", f.close);
    g.add_alternative(call, {Symbol::terminal(g.add_terminal(g.regexes.literal(head), head)), Symbol::rule(args_rule),
                             Symbol::terminal(g.add_terminal(g.regexes.literal(tail), tail))});
  }
  g.add_alternative(start, {Symbol::rule(call)});
  if (spec.parallel) {
    const std::string sep(f.separator);
    g.add_alternative(start, {Symbol::rule(start), Symbol::terminal(g.add_terminal(g.regexes.literal(sep), sep)),
                              Symbol::rule(call)});
  }
  g.start = start;
  if (!spec.prefix.empty()) {
    g.start = g.add_rule("answer");
    g.add_alternative(g.start, {Symbol::terminal(g.add_terminal(g.regexes.literal(spec.prefix), spec.prefix)),
                                Symbol::rule(start)});
  }
  if (Status s = g.validate(); !s.is_ok()) return s;
  return g;
}

}  // namespace kiln::grammar
