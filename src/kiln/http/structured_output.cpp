#include "kiln/http/structured_output.h"

#include <vector>

#include "kiln/core/str.h"
#include "kiln/grammar/limits.h"
#include "kiln/http/json_fields.h"

namespace kiln::http {
namespace {

using grammar::GrammarSpec;

StructuredOutput make(GrammarSpec::Kind kind, std::string text, std::string param) {
  StructuredOutput s;
  s.spec.kind = kind;
  s.spec.text = std::move(text);
  s.param = std::move(param);
  return s;
}

// A schema given as a JSON value: an object or a boolean schema, passed on as JSON text.
std::optional<ApiError> schema_text(const Json& v, const std::string& param, std::string* out) {
  if (!v.is_object() && !v.is_boolean()) return invalid_type(param, "a JSON Schema object", json_type_phrase(v));
  *out = v.dump();
  return std::nullopt;
}

std::optional<ApiError> parse_response_format(const Json& rf, std::optional<StructuredOutput>* out) {
  if (!rf.is_object()) return invalid_type("response_format", "an object", json_type_phrase(rf));
  auto type = rf.find("type");
  if (type == rf.end() || type->is_null()) {
    return invalid_param("response_format.type", "response_format needs a type.", "missing_required_parameter");
  }
  if (!type->is_string()) return invalid_type("response_format.type", "a string", json_type_phrase(*type));
  const std::string t = type->get<std::string>();
  if (t == "text") return std::nullopt;
  if (t == "json_object") {
    *out = make(GrammarSpec::Kind::kJsonObject, "", "response_format");
    return std::nullopt;
  }
  if (t != "json_schema") {
    return invalid_param("response_format.type", str_cat("'", echo_value(t),
                                                         "' is not one of ['text', 'json_object', 'json_schema']."));
  }
  auto js = rf.find("json_schema");
  if (js == rf.end() || js->is_null()) {
    return invalid_param("response_format.json_schema", "a json_schema response format needs a json_schema object.",
                         "missing_required_parameter");
  }
  if (!js->is_object()) return invalid_type("response_format.json_schema", "an object", json_type_phrase(*js));
  auto name = js->find("name");
  if (name == js->end() || name->is_null()) {
    return invalid_param("response_format.json_schema.name", "the schema needs a name.", "missing_required_parameter");
  }
  if (!name->is_string()) return invalid_type("response_format.json_schema.name", "a string", json_type_phrase(*name));
  const std::string n = name->get<std::string>();
  bool ok = !n.empty() && n.size() <= kMaxSchemaNameLength;
  for (char c : n) ok = ok && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-');
  if (!ok) {
    return invalid_param("response_format.json_schema.name",
                         str_cat("'", echo_value(n), "' is not a valid name: use 1 to ", kMaxSchemaNameLength,
                                 " letters, digits, underscores and dashes."));
  }
  auto desc = js->find("description");
  if (desc != js->end() && !desc->is_null() && !desc->is_string()) {
    return invalid_type("response_format.json_schema.description", "a string", json_type_phrase(*desc));
  }
  bool strict = false;
  auto st = js->find("strict");
  if (st != js->end() && !st->is_null()) {
    if (!st->is_boolean()) return invalid_type("response_format.json_schema.strict", "a boolean", json_type_phrase(*st));
    strict = st->get<bool>();
  }
  std::string text = "{}";  // OpenAI's schema is optional: without one, any JSON value
  auto schema = js->find("schema");
  if (schema != js->end() && !schema->is_null()) {
    KILN_API_CHECK(schema_text(*schema, "response_format.json_schema.schema", &text));
  }
  StructuredOutput s = make(GrammarSpec::Kind::kJsonSchema, std::move(text), "response_format.json_schema.schema");
  // Strict mode (OpenAI): objects take no properties their schema does not name unless it says so.
  s.spec.json.default_additional_properties = !strict;
  *out = std::move(s);
  return std::nullopt;
}

std::optional<ApiError> parse_extension(const Json& so, std::optional<StructuredOutput>* out) {
  if (!so.is_object()) return invalid_type("structured_outputs", "an object", json_type_phrase(so));
  std::vector<StructuredOutput> found;
  for (auto e = so.begin(); e != so.end(); ++e) {
    const std::string& key = e.key();
    const Json& v = e.value();
    const std::string param = "structured_outputs." + key;
    if (v.is_null()) continue;
    if (key == "json") {
      std::string text;
      if (v.is_string()) {
        text = v.get<std::string>();  // vLLM accepts the schema as JSON text too
      } else {
        KILN_API_CHECK(schema_text(v, param, &text));
      }
      found.push_back(make(GrammarSpec::Kind::kJsonSchema, std::move(text), param));
    } else if (key == "json_object") {
      if (!v.is_boolean()) return invalid_type(param, "a boolean", json_type_phrase(v));
      if (v.get<bool>()) found.push_back(make(GrammarSpec::Kind::kJsonObject, "", param));
    } else if (key == "regex" || key == "grammar") {
      if (!v.is_string()) return invalid_type(param, "a string", json_type_phrase(v));
      found.push_back(make(key == "regex" ? GrammarSpec::Kind::kRegex : GrammarSpec::Kind::kGrammarText,
                           v.get<std::string>(), param));
    } else if (key == "choice") {
      if (!v.is_array()) return invalid_type(param, "an array of strings", json_type_phrase(v));
      if (v.empty()) return invalid_param(param, "the choice list must not be empty.");
      if (v.size() > grammar::limits::kMaxChoices) {
        return invalid_param(param, str_cat("at most ", grammar::limits::kMaxChoices, " choices are allowed; got ",
                                            v.size(), "."));
      }
      StructuredOutput s = make(GrammarSpec::Kind::kChoice, "", param);
      for (const Json& c : v) {
        if (!c.is_string()) return invalid_type(param, "an array of strings", "an array holding " + json_type_phrase(c));
        s.spec.choices.push_back(c.get<std::string>());
      }
      found.push_back(std::move(s));
    } else {
      // Fail closed: an option kiln does not know might have changed what is allowed.
      return invalid_param(param, str_cat("'", echo_value(key),
                                          "' is not supported; use one of json, regex, choice, grammar, json_object."),
                           "unsupported_value");
    }
  }
  if (found.empty()) {
    return invalid_param("structured_outputs", "give one of json, regex, choice, grammar or json_object.");
  }
  if (found.size() > 1) {
    return invalid_param(found[1].param, str_cat("give only one of json, regex, choice, grammar or json_object; got ",
                                                 found[0].param, " and ", found[1].param, "."));
  }
  *out = std::move(found[0]);
  return std::nullopt;
}

}  // namespace

std::optional<ApiError> parse_structured_output(const Json& body, std::optional<StructuredOutput>* out) {
  out->reset();
  std::vector<StructuredOutput> found;
  auto take = [&](std::optional<StructuredOutput> s) {
    if (s) found.push_back(std::move(*s));
  };
  auto rf = body.find("response_format");
  if (rf != body.end() && !rf->is_null()) {
    std::optional<StructuredOutput> s;
    KILN_API_CHECK(parse_response_format(*rf, &s));
    take(std::move(s));
  }
  auto so = body.find("structured_outputs");
  if (so != body.end() && !so->is_null()) {
    std::optional<StructuredOutput> s;
    KILN_API_CHECK(parse_extension(*so, &s));
    take(std::move(s));
  }
  // llama.cpp's server names: a GBNF grammar and a JSON Schema at the top level.
  auto g = body.find("grammar");
  if (g != body.end() && !g->is_null()) {
    if (!g->is_string()) return invalid_type("grammar", "a string", json_type_phrase(*g));
    take(make(GrammarSpec::Kind::kGrammarText, g->get<std::string>(), "grammar"));
  }
  auto js = body.find("json_schema");
  if (js != body.end() && !js->is_null()) {
    std::string text;
    KILN_API_CHECK(schema_text(*js, "json_schema", &text));
    take(make(GrammarSpec::Kind::kJsonSchema, std::move(text), "json_schema"));
  }
  if (found.size() > 1) {
    return invalid_param(found[1].param, str_cat("only one of response_format, structured_outputs, grammar and "
                                                 "json_schema may constrain the output; got ",
                                                 found[0].param, " and ", found[1].param, "."));
  }
  if (!found.empty()) *out = std::move(found[0]);
  return std::nullopt;
}

}  // namespace kiln::http
