#include "kiln/grammar/tool_call.h"

#include <algorithm>

#include "kiln/core/str.h"
#include "kiln/grammar/json_schema.h"
#include "kiln/grammar/json_value.h"
#include "kiln/grammar/limits.h"
#include "kiln/grammar/matcher.h"

namespace kiln::grammar {
namespace {

// How a call writes its arguments: one JSON object, or one parameter at a time in Qwen3-Coder's
// `<parameter=k>\nv\n</parameter>\n` or GLM's `<arg_key>k</arg_key>\n<arg_value>v</arg_value>\n`.
enum class Args { kJson, kQwenXml, kGlmXml };

// A family's call syntax, as the exact text its chat templates write for a call in the history
// (so a real model's own calls pass unchanged); inside JSON arguments whitespace is free, as models
// write it either way. A call is head NAME after_name ARGS tail; calls are separated by
// `separator`; `begin` and `end` wrap all the calls of an answer.
struct Frame {
  std::string_view family;
  std::string_view dialect;
  std::string_view hint;  // template text that selects this dialect ("" : the family's default)
  std::string_view begin, head, after_name;
  Args args;
  std::string_view tail, separator, end;
  bool parallel;  // the format has several calls in one answer
  // Under auto, the marker a call starts with (empty: none to wait for), and whether it is the
  // start of the frame's text (else it comes before the frame: llama3's <|python_tag|>).
  std::string_view trigger;
  bool trigger_in_frame;
  std::vector<std::string_view> markers;  // texts that may be special tokens
};

const std::vector<Frame>& frames() {
  static const std::vector<Frame> f = {
      // Qwen2.5 / Qwen3 / Hermes. Qwen's <tool_call> is an added but not special token: text.
      {"hermes", "", "", "", "<tool_call>\n{\"name\": \"", "\", \"arguments\": ", Args::kJson, "}\n</tool_call>", "\n", "",
       true, "<tool_call>", true, {"<tool_call>", "</tool_call>"}},
      // Llama 3.1-3.3: the bare JSON object the templates write, calls separated by "; "; under
      // auto the model marks a call with <|python_tag|>, before the object.
      {"llama3", "", "", "", "{\"name\": \"", "\", \"parameters\": ", Args::kJson, "}", "; ", "", true, "<|python_tag|>",
       false, {"<|python_tag|>"}},
      // Mistral v0.3 / Nemo: [TOOL_CALLS][{"name": "f", "arguments": {...}}, ...].
      {"mistral", "", "", "[TOOL_CALLS][", "{\"name\": \"", "\", \"arguments\": ", Args::kJson, "}", ", ", "]", true,
       "[TOOL_CALLS]", true, {"[TOOL_CALLS]"}},
      // Mistral Small 3.2, Devstral, Magistral, Ministral 3 (v11+): [TOOL_CALLS]f[ARGS]{...} per call.
      {"mistral", "v11", "[ARGS]", "", "[TOOL_CALLS]", "[ARGS]", Args::kJson, "", "", "", true, "[TOOL_CALLS]", true,
       {"[TOOL_CALLS]", "[ARGS]"}},
      // DeepSeek V3 / R1 and distills: a fenced JSON block per call.
      {"deepseek_v3", "", "```json", "<｜tool▁calls▁begin｜>", "<｜tool▁call▁begin｜>function<｜tool▁sep｜>",
       "\n```json\n", Args::kJson, "\n```<｜tool▁call▁end｜>", "\n", "<｜tool▁calls▁end｜>", true,
       "<｜tool▁calls▁begin｜>", true,
       {"<｜tool▁calls▁begin｜>", "<｜tool▁call▁begin｜>", "<｜tool▁sep｜>", "<｜tool▁call▁end｜>", "<｜tool▁calls▁end｜>"}},
      // DeepSeek V3.1: the name, then the bare JSON object.
      {"deepseek_v3", "v3.1", "", "<｜tool▁calls▁begin｜>", "<｜tool▁call▁begin｜>", "<｜tool▁sep｜>", Args::kJson,
       "<｜tool▁call▁end｜>", "", "<｜tool▁calls▁end｜>", true, "<｜tool▁calls▁begin｜>", true,
       {"<｜tool▁calls▁begin｜>", "<｜tool▁call▁begin｜>", "<｜tool▁sep｜>", "<｜tool▁call▁end｜>", "<｜tool▁calls▁end｜>"}},
      // Qwen3-Coder, Qwen3.5, Nemotron 3: one parameter per tag.
      {"qwen3_coder", "", "", "", "<tool_call>\n<function=", ">\n", Args::kQwenXml, "</function>\n</tool_call>", "\n", "",
       true, "<tool_call>", true, {"<tool_call>", "</tool_call>"}},
      // GLM-4.5 and later.
      {"glm45", "", "", "", "<tool_call>", "\n", Args::kGlmXml, "</tool_call>", "\n", "", true, "<tool_call>", true,
       {"<tool_call>", "</tool_call>", "<arg_key>", "</arg_key>", "<arg_value>", "</arg_value>"}},
      // gpt-oss: a call is a commentary message to the function, as the model writes it (the
      // template's history form puts the recipient in the header before the channel, which
      // follows `<|start|>assistant`); one call per message, which <|call|> (an end token) ends.
      {"harmony", "", "", "", "<|channel|>commentary to=functions.", " <|constrain|>json<|message|>", Args::kJson, "", "",
       "<|call|>", false, "<|channel|>commentary to=functions.", true,
       {"<|channel|>", "<|constrain|>", "<|message|>", "<|call|>"}},
  };
  return f;
}

const Frame* frame_of(std::string_view family, std::string_view dialect) {
  for (const Frame& f : frames()) {
    if (f.family == family && f.dialect == dialect) return &f;
  }
  return nullptr;
}

bool contains(const std::vector<std::string>& v, std::string_view s) { return std::find(v.begin(), v.end(), s) != v.end(); }

// Frame text as grammar bytes: the markers that are special tokens of the model become their
// special-token literals.
std::string render(std::string_view text, const ToolCallSpec& spec) {
  std::string out;
  for (size_t i = 0; i < text.size();) {
    bool marker = false;
    for (const std::string& m : spec.special_markers) {
      if (!m.empty() && text.substr(i).starts_with(m)) {
        out += special_token_literal(m);
        i += m.size();
        marker = true;
        break;
      }
    }
    if (!marker) out += text[i++];
  }
  return out;
}

void push_literal(Grammar* g, std::vector<Symbol>* seq, const std::string& bytes) {
  if (!bytes.empty()) seq->push_back(Symbol::terminal(g->add_terminal(g->regexes.literal(bytes), bytes)));
}

bool valid_name(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

// A string parameter written as bare text: no '<' (it would end the value's tag), and no newline
// at either edge (the parsers take one newline on each side as the format's); minLength and
// maxLength in code points; enum / const as their literals.
Result<RegexId> bare_string(Grammar* g, const JsonValue& s, std::string_view where) {
  RegexPool& r = g->regexes;
  for (const JsonMember& m : s.members) {
    static constexpr std::string_view kOk[] = {"type", "description", "title", "enum", "const", "minLength",
                                               "maxLength", "default", "examples"};
    if (std::find(std::begin(kOk), std::end(kOk), m.first) == std::end(kOk)) {
      return invalid_argument(str_cat(where, ": `", m.first, "` cannot be enforced on a string parameter written as bare text"));
    }
  }
  std::vector<const JsonValue*> values;
  if (const JsonValue* c = s.find("const")) values.push_back(c);
  if (const JsonValue* e = s.find("enum"); e && e->is_array()) {
    for (const JsonValue& v : e->items) values.push_back(&v);
  }
  if (s.find("const") || s.find("enum")) {
    std::vector<RegexId> alts;
    for (const JsonValue* v : values) {
      if (v->is_string() && v->text.find('<') == std::string::npos) alts.push_back(r.literal(v->text));
    }
    if (alts.empty()) return invalid_argument(str_cat(where, ": no enum value can be written as bare text"));
    return r.alt(std::move(alts));
  }
  auto bound = [&](const char* key, uint32_t dflt) -> uint32_t {
    const JsonValue* v = s.find(key);
    Decimal d;
    int64_t n = 0;
    if (!v || !v->is_number() || !parse_decimal(v->text, &d) || !decimal_to_int64(d, &n) || n < 0) return dflt;
    return static_cast<uint32_t>(std::min<int64_t>(n, limits::kMaxRepeat));
  };
  const uint32_t lo = bound("minLength", 0);
  const uint32_t hi = bound("maxLength", kUnbounded);
  if (lo > hi) return invalid_argument(str_cat(where, ": minLength is over maxLength"));
  const RegexId edge = r.chars(complement_ranges({{'<', '<'}, {'\n', '\n'}}));
  const RegexId inner = r.chars(complement_ranges({{'<', '<'}}));
  std::vector<RegexId> alts;
  if (lo == 0) alts.push_back(r.empty());
  if (lo <= 1 && hi >= 1) alts.push_back(edge);
  if (hi >= 2) {
    alts.push_back(r.concat({edge, r.repeat(inner, lo > 2 ? lo - 2 : 0, hi == kUnbounded ? kUnbounded : hi - 2), edge}));
  }
  return r.alt(std::move(alts));
}

// Qwen3-Coder / GLM arguments: each parameter of the schema's `properties`, in their order,
// required ones always, others optionally. A parameter whose schema type is "string" is bare text
// (as the parsers read it); any other is JSON valid for its schema. Keywords on the whole object
// that a sequence of parameters cannot express are refused.
// One parameter: its tag(s) around `value`.
std::vector<Symbol> xml_parameter(Grammar* g, Args form, Symbol name, Symbol value) {
  std::vector<Symbol> alt;
  push_literal(g, &alt, form == Args::kQwenXml ? "<parameter=" : "<arg_key>");
  alt.push_back(name);
  push_literal(g, &alt, form == Args::kQwenXml ? ">\n" : "</arg_key>\n<arg_value>");
  alt.push_back(value);
  push_literal(g, &alt, form == Args::kQwenXml ? "\n</parameter>\n" : "</arg_value>\n");
  return alt;
}

Result<uint32_t> xml_arguments(Grammar* g, const ToolCallTool& t, Args form, const JsonSchemaOptions& o,
                               std::string_view where) {
  const uint32_t args = g->add_rule(str_cat(where, ".args"));
  if (t.parameters_json == "{}") {
    // No schema (as for JSON, where it means any object): any parameters, any bare values.
    RegexPool& r = g->regexes;
    const uint32_t name = g->add_terminal(r.repeat(r.chars(complement_ranges({{'<', '<'}, {'>', '>'}, {'\n', '\n'}})), 1, 256),
                                          "parameter name");
    JsonValue any;
    any.kind = JsonValue::Kind::kObject;
    KILN_ASSIGN_OR_RETURN(RegexId text, bare_string(g, any, where));
    std::vector<Symbol> more = {Symbol::rule(args)};
    for (Symbol s : xml_parameter(g, form, Symbol::terminal(name), Symbol::terminal(g->add_terminal(text, "bare string")))) {
      more.push_back(s);
    }
    g->add_alternative(args, {});
    g->add_alternative(args, std::move(more));
    return args;
  }
  KILN_ASSIGN_OR_RETURN(JsonValue root, parse_json(t.parameters_json, 4 * limits::kMaxNesting));
  if (!root.is_object()) return invalid_argument(str_cat(where, ": the parameters schema is not an object"));
  static constexpr std::string_view kOk[] = {"type", "properties", "required", "additionalProperties", "description",
                                             "title", "$schema", "$defs", "definitions", "strict"};
  for (const JsonMember& m : root.members) {
    if (std::find(std::begin(kOk), std::end(kOk), m.first) == std::end(kOk)) {
      return invalid_argument(str_cat(where, ": `", m.first, "` cannot be enforced when parameters are written one by one"));
    }
  }
  const JsonValue* props = root.find("properties");
  std::vector<std::string> required;
  if (const JsonValue* req = root.find("required"); req && req->is_array()) {
    for (const JsonValue& v : req->items) {
      if (!v.is_string()) continue;
      if (!props || !props->find(v.text)) {
        return invalid_argument(str_cat(where, ": required parameter `", v.text, "` has no schema in properties"));
      }
      required.push_back(v.text);
    }
  }
  std::vector<Symbol> seq;
  for (const JsonMember& p : props ? props->members : std::vector<JsonMember>{}) {
    const std::string pw = str_cat(where, ".", p.first);
    if (p.first.find('<') != std::string::npos || p.first.find('>') != std::string::npos) {
      return invalid_argument(str_cat(pw, ": a parameter name with '<' or '>' cannot be written as a tag"));
    }
    const JsonValue* type = p.second.find("type");
    Symbol value;
    if (type && type->is_string() && type->text == "string") {
      KILN_ASSIGN_OR_RETURN(RegexId re, bare_string(g, p.second, pw));
      value = Symbol::terminal(g->add_terminal(re, "bare string"));
    } else {
      // The parameter's schema on its own, with the root's definitions for its $refs.
      JsonValue s = p.second;
      for (const char* defs : {"$defs", "definitions"}) {
        if (const JsonValue* d = root.find(defs); d && s.is_object() && !s.find(defs)) s.members.push_back({defs, *d});
      }
      auto sub = json_schema_grammar(canonical_json(s), o);
      if (!sub.is_ok()) return Status(sub.status().code(), str_cat(pw, ": ", sub.status().message()));
      value = Symbol::rule(embed_grammar(g, *sub, str_cat(pw, ".")));
    }
    const uint32_t param = g->add_rule(pw);
    g->add_alternative(param, xml_parameter(g, form, Symbol::terminal(g->add_terminal(g->regexes.literal(p.first), p.first)),
                                            value));
    if (!contains(required, p.first)) g->add_alternative(param, {});
    seq.push_back(Symbol::rule(param));
  }
  g->add_alternative(args, std::move(seq));
  return args;
}

}  // namespace

bool tool_call_family_supported(std::string_view family) { return frame_of(family, "") != nullptr; }

std::string tool_call_dialect(std::string_view family, std::string_view chat_template) {
  const Frame* fallback = nullptr;
  for (const Frame& f : frames()) {
    if (f.family != family) continue;
    if (!f.hint.empty() && chat_template.find(f.hint) != std::string_view::npos) return std::string(f.dialect);
    if (f.hint.empty() && !fallback) fallback = &f;
  }
  return fallback ? std::string(fallback->dialect) : std::string();
}

std::vector<std::string> tool_call_markers(std::string_view family, std::string_view dialect) {
  std::vector<std::string> out;
  if (const Frame* f = frame_of(family, dialect)) {
    for (std::string_view m : f->markers) out.emplace_back(m);
  }
  return out;
}

Result<Grammar> tool_call_grammar(const ToolCallSpec& spec) {
  const Frame* f = frame_of(spec.family, spec.dialect);
  if (!f) {
    return invalid_argument(str_cat("tool calls of the '", spec.family, "' format", spec.dialect.empty() ? "" : " (",
                                    spec.dialect, spec.dialect.empty() ? "" : ")", " cannot be enforced"));
  }
  if (spec.tools.empty()) return invalid_argument("no tools to call");
  size_t source = 0;
  for (const ToolCallTool& t : spec.tools) source += t.name.size() + t.parameters_json.size();
  if (source > limits::kMaxSourceBytes) {
    return invalid_argument(str_cat("the tools' schemas are longer than ", limits::kMaxSourceBytes, " bytes together"));
  }
  Grammar g;
  const uint32_t start = g.add_rule("answer");
  const uint32_t calls = g.add_rule("calls");
  const uint32_t call = g.add_rule("call");
  for (size_t i = 0; i < spec.tools.size(); ++i) {
    const ToolCallTool& t = spec.tools[i];
    const std::string where = str_cat("tools[", i, "] (", t.name, ")");
    if (!valid_name(t.name)) return invalid_argument(str_cat(where, ": the name is not [a-zA-Z0-9_-]{1,64}"));
    JsonSchemaOptions o;
    o.compact_whitespace = false;
    o.max_whitespace = 8;
    o.default_additional_properties = !t.strict;
    uint32_t args_rule = 0;
    if (f->args == Args::kJson) {
      // An absent schema ("{}") would allow any JSON value; arguments are always an object.
      auto args = t.parameters_json == "{}" ? json_object_grammar(o) : json_schema_grammar(t.parameters_json, o);
      if (!args.is_ok()) return Status(args.status().code(), str_cat(where, ": ", args.status().message()));
      args_rule = embed_grammar(&g, *args, str_cat("tool", i, "."));
    } else {
      KILN_ASSIGN_OR_RETURN(args_rule, xml_arguments(&g, t, f->args, o, where));
    }
    std::vector<Symbol> seq;
    push_literal(&g, &seq, render(str_cat(f->head, t.name, f->after_name), spec));
    seq.push_back(Symbol::rule(args_rule));
    push_literal(&g, &seq, render(f->tail, spec));
    g.add_alternative(call, std::move(seq));
  }
  g.add_alternative(calls, {Symbol::rule(call)});
  // Lazily, one block: several calls only inside a begin/end block.
  const bool parallel = spec.parallel && f->parallel && (!spec.lazy || !f->begin.empty());
  if (parallel) {
    std::vector<Symbol> more = {Symbol::rule(calls)};
    push_literal(&g, &more, render(f->separator, spec));
    more.push_back(Symbol::rule(call));
    g.add_alternative(calls, std::move(more));
  }
  std::vector<Symbol> answer;
  push_literal(&g, &answer, spec.lazy ? std::string() : spec.prefix);
  push_literal(&g, &answer, render(f->begin, spec));
  answer.push_back(Symbol::rule(calls));
  // An end marker that is the model's end token is left to the end token.
  if (!contains(spec.end_markers, f->end)) push_literal(&g, &answer, render(f->end, spec));
  g.add_alternative(start, std::move(answer));
  g.start = start;
  if (Status s = g.validate(); !s.is_ok()) return s;
  return g;
}

std::optional<ToolCallTrigger> tool_call_trigger(const ToolCallSpec& spec) {
  const Frame* f = frame_of(spec.family, spec.dialect);
  if (!f || f->trigger.empty()) return std::nullopt;
  ToolCallTrigger t;
  t.text = std::string(f->trigger);
  if (f->trigger_in_frame) {
    // The frame's own text up to the end of the marker (begin and head both start with it).
    const std::string_view text = !f->begin.empty() ? f->begin : f->head;
    const size_t at = text.find(f->trigger);
    if (at == std::string_view::npos) return std::nullopt;
    t.feed = render(text.substr(0, at + f->trigger.size()), spec);
  }
  return t;
}

}  // namespace kiln::grammar
