#include "kiln/text/jinja/template.h"

#include <nlohmann/json.hpp>

#include "kiln/core/str.h"
#include "kiln/text/jinja/builtins.h"

namespace kiln::text::jinja {

Result<Template> Template::parse(std::string_view source, const ParseLimits& limits) {
  KILN_ASSIGN_OR_RETURN(ParsedTemplate parsed, parse_template(source, limits));
  Template t;
  t.body_ = std::make_shared<const Body>(std::move(parsed.body));
  t.warnings_ = std::make_shared<const std::vector<std::string>>(std::move(parsed.warnings));
  return t;
}

namespace {

std::string_view kind_name(RenderError::Kind kind) {
  switch (kind) {
    case RenderError::Kind::kRaised: return "TemplateError";
    case RenderError::Kind::kUndefined: return "UndefinedError";
    case RenderError::Kind::kType: return "TypeError";
    case RenderError::Kind::kValue: return "ValueError";
    case RenderError::Kind::kSecurity: return "SecurityError";
    case RenderError::Kind::kLimit: return "LimitError";
    case RenderError::Kind::kSyntax: return "TemplateSyntaxError";
    case RenderError::Kind::kUnsupported: return "TemplateRuntimeError";
  }
  return "Error";
}

}  // namespace

Result<std::string> Template::render(const DictData& context, const RenderOptions& options,
                                     RenderFailure* failure) const {
  auto now = options.now ? options.now : [] { return std::time(nullptr); };
  Interpreter interp(options.limits, now);
  static const DictData globals = make_globals();
  try {
    return interp.render(*body_, globals, context);
  } catch (const RenderError& e) {
    if (failure) {
      failure->kind = e.kind();
      failure->line = e.line();
    }
    if (e.kind() == RenderError::Kind::kRaised) return invalid_argument(e.message());
    if (e.kind() == RenderError::Kind::kLimit)
      return resource_exhausted(str_cat("line ", e.line(), ": ", e.message()));
    return invalid_argument(str_cat("line ", e.line(), ": ", kind_name(e.kind()), ": ", e.message()));
  } catch (const std::bad_alloc&) {
    return resource_exhausted("out of memory while rendering the template");
  }
}

namespace {

using Json = nlohmann::ordered_json;

Result<Value> from_json(const Json& j, int depth, int max_depth) {
  if (depth > max_depth) return invalid_argument(str_cat("JSON nested deeper than ", max_depth, " levels"));
  switch (j.type()) {
    case Json::value_t::null: return Value(nullptr);
    case Json::value_t::boolean: return Value(j.get<bool>());
    case Json::value_t::number_integer: return Value(j.get<int64_t>());
    case Json::value_t::number_unsigned: {
      auto u = j.get<uint64_t>();
      if (u > static_cast<uint64_t>(INT64_MAX)) return Value(static_cast<double>(u));
      return Value(static_cast<int64_t>(u));
    }
    case Json::value_t::number_float: return Value(j.get<double>());
    case Json::value_t::string: return Value(j.get<std::string>());
    case Json::value_t::array: {
      std::vector<Value> items;
      items.reserve(j.size());
      for (const auto& e : j) {
        KILN_ASSIGN_OR_RETURN(Value v, from_json(e, depth + 1, max_depth));
        items.push_back(std::move(v));
      }
      return Value::list(std::move(items));
    }
    case Json::value_t::object: {
      DictData d;
      for (const auto& [k, e] : j.items()) {
        KILN_ASSIGN_OR_RETURN(Value v, from_json(e, depth + 1, max_depth));
        d.set(Value(k), std::move(v));
      }
      return Value::dict(std::move(d));
    }
    default: return invalid_argument("unsupported JSON value");
  }
}

}  // namespace

Result<Value> value_from_json(std::string_view json_text, int max_depth) {
  // Depth is checked during parsing too, so a hostile document cannot recurse deeply anywhere.
  bool too_deep = false;
  Json::parser_callback_t cb = [&](int d, Json::parse_event_t event, Json&) {
    if ((event == Json::parse_event_t::object_start || event == Json::parse_event_t::array_start) && d > max_depth)
      too_deep = true;
    return !too_deep;
  };
  Json j = Json::parse(json_text.begin(), json_text.end(), cb, /*allow_exceptions=*/false);
  if (too_deep) return invalid_argument(str_cat("JSON nested deeper than ", max_depth, " levels"));
  if (j.is_discarded()) return invalid_argument("malformed JSON");
  return from_json(j, 0, max_depth);
}

}  // namespace kiln::text::jinja
