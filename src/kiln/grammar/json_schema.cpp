// JSON Schema to Grammar: the driver, keyword checks, $ref, types, and the lexemes of strings and
// numbers. Objects and arrays are in json_schema_struct.cpp, allOf / oneOf in json_schema_merge.cpp.
#include "kiln/grammar/json_schema.h"

#include <algorithm>
#include <array>

#include "kiln/core/str.h"
#include "kiln/grammar/json_schema_impl.h"
#include "kiln/grammar/json_schema_lex.h"
#include "kiln/grammar/limits.h"
#include "kiln/grammar/regex_text.h"

namespace kiln::grammar {
namespace jsonschema {

namespace {

constexpr std::array<std::string_view, 32> kSupported = {"not", "patternProperties",
    "type", "properties", "required", "additionalProperties", "items", "prefixItems", "additionalItems",
    "enum", "const", "anyOf", "oneOf", "allOf", "$ref", "$defs", "definitions", "minItems", "maxItems",
    "minLength", "maxLength", "pattern", "format", "minimum", "maximum", "exclusiveMinimum",
    "exclusiveMaximum", "multipleOf", "nullable", "uniqueItems", "minProperties", "maxProperties"};

// Keywords of the JSON Schema drafts (3 to 2020-12) and OpenAPI that carry no assertion.
constexpr std::array<std::string_view, 22> kAnnotations = {
    "title", "description", "default", "examples", "example", "$comment", "$schema", "$id", "id",
    "deprecated", "readOnly", "writeOnly", "contentEncoding", "contentMediaType", "$anchor",
    "$dynamicAnchor", "$vocabulary", "$recursiveAnchor", "discriminator", "xml", "externalDocs", "contentSchema"};

// Assertion and applicator keywords of the drafts that kiln cannot enforce.
constexpr std::array<std::string_view, 18> kRefused = {
    "if", "then", "else", "dependentSchemas", "dependentRequired", "dependencies",
    "propertyNames", "unevaluatedProperties", "unevaluatedItems", "contains",
    "minContains", "maxContains", "$dynamicRef", "$recursiveRef", "divisibleBy", "disallow", "extends",
    "requires"};

template <size_t N>
bool in(const std::array<std::string_view, N>& set, std::string_view k) {
  return std::find(set.begin(), set.end(), k) != set.end();
}

std::string where(const std::string& ptr) { return ptr.empty() ? "the root" : ptr; }

}  // namespace

bool is_annotation_keyword(std::string_view k) { return in(kAnnotations, k); }
bool is_supported_keyword(std::string_view k) { return in(kSupported, k); }
bool is_assertion_keyword(std::string_view k) { return in(kSupported, k) || in(kRefused, k); }

Seq& Seq::re(RegexId r) {
  pending_.push_back(r);
  return *this;
}

Seq& Seq::sym(Symbol s) {
  if (s.is_terminal() && c_.nfa_cost(c_.regex_of(s)) <= kMaxInlineStates) return re(c_.regex_of(s));
  return shared(s);
}

Seq& Seq::shared(Symbol s) {
  flush();
  out_.push_back(s);
  return *this;
}

uint64_t Compiler::nfa_cost(RegexId r) {
  constexpr uint64_t kCap = uint64_t{1} << 40;
  if (cost_.size() <= r) cost_.resize(p_.size(), 0);
  if (cost_[r] != 0) return cost_[r];
  const RegexNode& n = p_.node(r);
  uint64_t c = 1;
  switch (n.kind) {
    case RegexNode::Kind::kNothing:
    case RegexNode::Kind::kEmpty:
    case RegexNode::Kind::kBytes: break;
    case RegexNode::Kind::kChars:
      // A multi-byte range adds up to three continuation states; shared suffixes make it less.
      for (const CharRange& cr : n.ranges) c += cr.hi < 0x80 ? 0 : 3;
      break;
    case RegexNode::Kind::kConcat:
    case RegexNode::Kind::kAlt:
      for (RegexId ch : n.children) c += nfa_cost(ch);
      break;
    case RegexNode::Kind::kRepeat: {
      const uint64_t copies = n.max == kUnbounded ? uint64_t{n.min} + 1 : n.max;
      c += copies * nfa_cost(n.children[0]);
      break;
    }
  }
  cost_[r] = std::min(c, kCap);
  return cost_[r];
}

void Seq::flush() {
  if (pending_.empty()) return;
  RegexId r = c_.p_.concat(pending_);
  pending_.clear();
  if (r != c_.p_.empty()) out_.push_back(c_.terminal(r, "json"));
}

std::vector<Symbol> Seq::done() {
  flush();
  return std::move(out_);
}

Compiler::Compiler(const JsonValue& root, const JsonSchemaOptions& options)
    : p_(g_.regexes), root_(root), options_(options) {
  ws_ = options_.compact_whitespace
            ? p_.empty()
            : p_.repeat(p_.chars({{' ', ' '}, {'\t', '\t'}, {'\n', '\n'}, {'\r', '\r'}}), 0,
                        std::min<uint32_t>(options_.max_whitespace, limits::kMaxRepeat));
}

Symbol Compiler::terminal(RegexId r, std::string name) { return Symbol::terminal(g_.add_terminal(r, std::move(name))); }

RegexId Compiler::punct(std::string_view text) { return p_.concat({ws_, p_.literal(text)}); }

const JsonValue* Compiler::keep(JsonValue v) {
  synthetic_.push_back(std::move(v));
  return &synthetic_.back();
}

Status Compiler::error_at(std::string_view what, const std::string& ptr) const {
  return invalid_argument(str_cat(what, " at ", where(ptr)));
}

Status Compiler::check_keywords(const JsonValue& s, const std::string& ptr) const {
  for (const auto& [k, v] : s.members) {
    if (in(kRefused, k)) return error_at(str_cat("unsupported JSON Schema keyword '", k, "'"), ptr);
    if (k == "uniqueItems" && v.is_bool() && v.boolean) {
      const JsonValue* max = s.find("maxItems");
      if (max == nullptr || !max->is_number() || (max->text != "0" && max->text != "1")) {
        return error_at("unsupported JSON Schema keyword 'uniqueItems'", ptr);
      }
    }
    if ((k == "minProperties" && !(v.is_number() && (v.text == "0" || v.text == "1"))) || k == "maxProperties") {
      return error_at(str_cat("unsupported JSON Schema keyword '", k, "'"), ptr);
    }
  }
  return Status::ok();
}

Result<const JsonValue*> Compiler::resolve_ref(const JsonValue& ref, const std::string& ptr, std::string* target_ptr) const {
  if (!ref.is_string()) return error_at("'$ref' is not a string", ptr);
  std::string_view text = ref.text;
  if (text.empty() || text[0] != '#') {
    return error_at(str_cat("unsupported JSON Schema keyword '$ref' to another document ('", text, "')"), ptr);
  }
  if (text.size() > 1 && text[1] != '/') {
    return error_at(str_cat("unsupported JSON Schema keyword '$ref' to an anchor ('", text, "')"), ptr);
  }
  // Percent-decoding (a URI fragment), then the JSON pointer's segments.
  std::string decoded;
  for (size_t i = 1; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size() + 0 && std::isxdigit(static_cast<unsigned char>(text[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(text[i + 2]))) {
      decoded += static_cast<char>(std::stoi(std::string(text.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else {
      decoded += text[i];
    }
  }
  const JsonValue* at = &root_;
  size_t pos = 1;
  while (pos <= decoded.size() && !decoded.empty()) {
    size_t end = decoded.find('/', pos);
    if (end == std::string::npos) end = decoded.size();
    std::string seg;
    for (size_t i = pos; i < end; ++i) {
      if (decoded[i] == '~' && i + 1 < end && (decoded[i + 1] == '0' || decoded[i + 1] == '1')) {
        seg += decoded[i + 1] == '0' ? '~' : '/';
        ++i;
      } else {
        seg += decoded[i];
      }
    }
    const JsonValue* next = nullptr;
    if (at->is_object()) {
      next = at->find(seg);
    } else if (at->is_array() && !seg.empty() && seg.find_first_not_of("0123456789") == std::string::npos &&
               seg.size() < 9 && std::stoul(seg) < at->items.size()) {
      next = &at->items[std::stoul(seg)];
    }
    if (next == nullptr) return error_at(str_cat("'$ref' '", text, "' points nowhere"), ptr);
    at = next;
    pos = end + 1;
  }
  *target_ptr = decoded;
  return at;
}

Result<Sym> Compiler::compile(const JsonValue& s, const std::string& ptr, size_t depth) {
  if (depth > limits::kMaxNesting) return error_at(str_cat("schema nesting deeper than ", limits::kMaxNesting), ptr);
  if (s.is_bool()) return s.boolean ? Sym(any_value()) : Sym();
  if (!s.is_object()) return error_at("a schema that is neither an object nor a boolean", ptr);
  if (auto it = done_.find(&s); it != done_.end()) return it->second;
  if (active_.contains(&s)) {
    auto [it, inserted] = forward_.emplace(&s, 0);
    if (inserted) it->second = g_.add_rule(str_cat("schema ", where(ptr)));
    return Sym(Symbol::rule(it->second));
  }
  active_.insert(&s);
  Result<Sym> r = compile_plain(s, ptr, depth);
  active_.erase(&s);
  if (!r.is_ok()) return r;
  Sym out = *r;
  if (auto it = forward_.find(&s); it != forward_.end()) {
    if (!out || *out == Symbol::rule(it->second)) return error_at("a recursive schema that accepts no value", ptr);
    g_.add_alternative(it->second, {*out});
    out = Symbol::rule(it->second);
  }
  done_.emplace(&s, out);
  return out;
}

namespace {
// The schema without the named keywords (and without annotations); empty when nothing is left.
std::optional<JsonValue> without(const JsonValue& s, std::initializer_list<std::string_view> keys) {
  JsonValue rest;
  rest.kind = JsonValue::Kind::kObject;
  for (const auto& [k, v] : s.members) {
    if (std::find(keys.begin(), keys.end(), k) != keys.end()) continue;
    if (k == "$defs" || k == "definitions" || !is_assertion_keyword(k)) continue;
    rest.members.push_back({k, v});
  }
  if (rest.members.empty()) return std::nullopt;
  return rest;
}
}  // namespace

Result<Sym> Compiler::compile_plain(const JsonValue& s, const std::string& ptr, size_t depth) {
  KILN_RETURN_IF_ERROR(check_keywords(s, ptr));
  if (const JsonValue* ref = s.find("$ref")) {
    std::string target_ptr;
    KILN_ASSIGN_OR_RETURN(const JsonValue* target, resolve_ref(*ref, ptr, &target_ptr));
    std::optional<JsonValue> rest = without(s, {"$ref"});
    if (!rest) return compile(*target, target_ptr, depth + 1);
    KILN_ASSIGN_OR_RETURN(const JsonValue* merged, merge_all({target, keep(std::move(*rest))}, ptr, depth));
    return compile(*merged, ptr, depth + 1);
  }
  if (const JsonValue* all = s.find("allOf")) {
    if (!all->is_array() || all->items.empty()) return error_at("'allOf' is not a non-empty array", ptr);
    std::vector<const JsonValue*> parts;
    for (const JsonValue& x : all->items) parts.push_back(&x);
    if (std::optional<JsonValue> rest = without(s, {"allOf"})) parts.push_back(keep(std::move(*rest)));
    KILN_ASSIGN_OR_RETURN(const JsonValue* merged, merge_all(parts, ptr + "/allOf", depth));
    return compile(*merged, ptr, depth + 1);
  }
  const JsonValue* any = s.find("anyOf");
  const JsonValue* one = s.find("oneOf");
  if (any != nullptr && one != nullptr) {
    // Both must hold: anyOf's options each merged with the rest, oneOf kept on each.
    std::optional<JsonValue> rest = without(s, {"anyOf"});
    std::vector<const JsonValue*> parts = {keep(std::move(*rest))};
    JsonValue only_any;
    only_any.kind = JsonValue::Kind::kObject;
    only_any.members.push_back({"anyOf", *any});
    parts.push_back(keep(std::move(only_any)));
    KILN_ASSIGN_OR_RETURN(const JsonValue* merged, merge_all(parts, ptr, depth));
    return compile(*merged, ptr, depth + 1);
  }
  if (any != nullptr || one != nullptr) {
    const JsonValue& list = any != nullptr ? *any : *one;
    std::string key = any != nullptr ? "anyOf" : "oneOf";
    if (!list.is_array() || list.items.empty()) return error_at(str_cat("'", key, "' is not a non-empty array"), ptr);
    std::optional<JsonValue> rest = without(s, {"anyOf", "oneOf"});
    const JsonValue* rest_node = rest ? keep(std::move(*rest)) : nullptr;
    std::vector<const JsonValue*> options;
    for (size_t i = 0; i < list.items.size(); ++i) {
      const JsonValue* o = &list.items[i];
      if (rest_node != nullptr) {
        KILN_ASSIGN_OR_RETURN(o, merge_all({rest_node, o}, str_cat(ptr, "/", key, "/", i), depth));
      }
      options.push_back(o);
    }
    if (one != nullptr && options.size() > 1 && std::all_of(list.items.begin(), list.items.end(), [](const JsonValue& o) {
          return o.is_object() && std::all_of(o.members.begin(), o.members.end(), [](const auto& m) {
                   return m.first == "required" ? m.second.is_array() && m.second.items.size() == 1 && m.second.items[0].is_string()
                                                : !is_assertion_keyword(m.first);
                 });
        })) {
      // oneOf [{required: [a]}, {required: [b]}, ...]: exactly one of the names, so each option
      // also forbids the others' names.
      options.clear();
      for (size_t i = 0; i < list.items.size(); ++i) {
        JsonValue o;
        o.kind = JsonValue::Kind::kObject;
        o.members.push_back({"required", *list.items[i].find("required")});
        JsonValue props;
        props.kind = JsonValue::Kind::kObject;
        const std::string& mine = list.items[i].find("required")->items[0].text;
        for (size_t j = 0; j < list.items.size(); ++j) {
          if (j == i) continue;
          const std::string& name = list.items[j].find("required")->items[0].text;
          if (name == mine) return error_at("unsupported JSON Schema keyword 'oneOf' (two options require the same name)", ptr);
          JsonValue no;
          no.kind = JsonValue::Kind::kBool;
          if (props.find(name) == nullptr) props.members.push_back({name, no});
        }
        o.members.push_back({"properties", std::move(props)});
        std::vector<const JsonValue*> parts;
        if (rest_node != nullptr) parts.push_back(rest_node);
        parts.push_back(keep(std::move(o)));
        KILN_ASSIGN_OR_RETURN(const JsonValue* merged, merge_all(parts, str_cat(ptr, "/oneOf/", i), depth));
        options.push_back(merged);
      }
    } else if (one != nullptr) {
      for (size_t i = 0; i < options.size(); ++i) {
        for (size_t j = i + 1; j < options.size(); ++j) {
          if (!disjoint(*options[i], *options[j], depth)) {
            return error_at(str_cat("unsupported JSON Schema keyword 'oneOf' (options ", i, " and ", j,
                                    " may both match)"), ptr);
          }
        }
      }
    }
    std::vector<Sym> syms;
    for (size_t i = 0; i < options.size(); ++i) {
      KILN_ASSIGN_OR_RETURN(Sym x, compile(*options[i], str_cat(ptr, "/", key, "/", i), depth + 1));
      syms.push_back(x);
    }
    return alternatives(std::move(syms), str_cat(key, " ", where(ptr)));
  }

  uint8_t types = kAllTypes;
  if (const JsonValue* t = s.find("type")) {
    types = 0;
    std::vector<const JsonValue*> names;
    if (t->is_string()) names.push_back(t);
    if (t->is_array()) for (const JsonValue& x : t->items) names.push_back(&x);
    if (names.empty() && !t->is_array()) return error_at("'type' is neither a string nor an array", ptr);
    for (const JsonValue* n : names) {
      static const std::pair<std::string_view, uint8_t> kNames[] = {
          {"null", kNull}, {"boolean", kBoolean}, {"object", kObject}, {"array", kArray},
          {"string", kString}, {"number", kNumber}, {"integer", kInteger}};
      auto it = std::find_if(std::begin(kNames), std::end(kNames), [n](const auto& e) { return n->is_string() && e.first == n->text; });
      if (it == std::end(kNames)) return error_at(str_cat("unknown type '", canonical_json(*n), "'"), ptr);
      types |= it->second;
    }
  }
  if (const JsonValue* n = s.find("nullable"); n != nullptr && n->is_bool() && n->boolean) types |= kNull;
  std::vector<std::string> not_strings;
  if (const JsonValue* n = s.find("not")) {
    // What kiln can say of `not`: not {} (nothing is valid), not false, and not {type: ...}.
    bool only_type = n->is_object() && std::all_of(n->members.begin(), n->members.end(), [](const auto& m) {
      return m.first == "type" || !is_assertion_keyword(m.first);
    });
    // not {enum: [strings]} (or const): strings other than those, and every other type.
    bool only_strings = n->is_object() && !n->members.empty() && std::all_of(n->members.begin(), n->members.end(), [](const auto& m) {
      if (m.first == "const") return m.second.is_string();
      if (m.first == "enum") {
        return m.second.is_array() && std::all_of(m.second.items.begin(), m.second.items.end(), [](const JsonValue& v) { return v.is_string(); });
      }
      return !is_assertion_keyword(m.first);
    }) && (n->find("enum") != nullptr || n->find("const") != nullptr);
    if (only_strings) {
      only_type = false;
      if (const JsonValue* e = n->find("enum")) for (const JsonValue& v : e->items) not_strings.push_back(v.text);
      if (const JsonValue* c = n->find("const")) not_strings.push_back(c->text);
    }
    if ((n->is_bool() && n->boolean) || (only_type && n->find("type") == nullptr)) return Sym();
    if (only_type) {
      uint8_t excluded = 0;
      const JsonValue* t = n->find("type");
      std::vector<const JsonValue*> names;
      if (t->is_string()) names.push_back(t);
      if (t->is_array()) for (const JsonValue& x : t->items) names.push_back(&x);
      for (const JsonValue* x : names) {
        if (!x->is_string()) continue;
        if (x->text == "null") excluded |= kNull;
        if (x->text == "boolean") excluded |= kBoolean;
        if (x->text == "object") excluded |= kObject;
        if (x->text == "array") excluded |= kArray;
        if (x->text == "string") excluded |= kString;
        if (x->text == "number") excluded |= kNumber | kInteger;
        if (x->text == "integer") excluded |= kInteger;
      }
      if ((excluded & kInteger) && !(excluded & kNumber) && (types & kNumber)) {
        return error_at("unsupported JSON Schema keyword 'not' (numbers that are not integers)", ptr);
      }
      types &= static_cast<uint8_t>(~excluded);
    } else if (!n->is_bool() && !only_strings) {
      return error_at("unsupported JSON Schema keyword 'not'", ptr);
    }
  }
  if ((types & kNumber) != 0) types &= static_cast<uint8_t>(~kInteger);

  if (const JsonValue* e = s.find("enum")) {
    if (!e->is_array()) return error_at("'enum' is not an array", ptr);
    if (const JsonValue* c = s.find("const")) {
      JsonValue both;
      both.kind = JsonValue::Kind::kArray;
      for (const JsonValue& v : e->items) {
        if (json_equal(v, *c)) both.items.push_back(v);
      }
      return compile_enum(s, both, ptr, types);
    }
    return compile_enum(s, *e, ptr, types);
  }
  if (const JsonValue* c = s.find("const")) {
    JsonValue one_value;
    one_value.kind = JsonValue::Kind::kArray;
    one_value.items.push_back(*c);
    return compile_enum(s, one_value, ptr, types);
  }

  std::vector<Sym> options;
  if (types & kNull) options.push_back(terminal(punct("null"), "null"));
  if (types & kBoolean) options.push_back(terminal(p_.concat({ws_, p_.alt({p_.literal("true"), p_.literal("false")})}), "boolean"));
  if (types & (kNumber | kInteger)) {
    KILN_ASSIGN_OR_RETURN(RegexId r, number_regex(s, (types & kNumber) == 0, ptr));
    if (r != p_.nothing()) options.push_back(terminal(p_.concat({ws_, r}), (types & kNumber) ? "number" : "integer"));
  }
  if ((types & kString) && !not_strings.empty()) {
    for (std::string_view k : {"minLength", "maxLength", "pattern", "format"}) {
      if (s.find(k) != nullptr) return error_at(str_cat("unsupported JSON Schema keyword 'not' together with '", k, "'"), ptr);
    }
    RegexId r = p_.concat({p_.literal("\""), jsonlex::canonical_not_in(p_, not_strings), p_.literal("\"")});
    options.push_back(terminal(p_.concat({ws_, r}), "string"));
  } else if (types & kString) {
    KILN_ASSIGN_OR_RETURN(RegexId r, string_regex(s, ptr));
    if (r != p_.nothing()) options.push_back(terminal(p_.concat({ws_, r}), "string"));
  }
  if (types & kObject) {
    KILN_ASSIGN_OR_RETURN(Sym x, object_symbol(s, ptr, depth));
    options.push_back(x);
  }
  if (types & kArray) {
    KILN_ASSIGN_OR_RETURN(Sym x, array_symbol(s, ptr, depth));
    options.push_back(x);
  }
  return alternatives(std::move(options), str_cat("schema ", where(ptr)));
}

Result<Sym> Compiler::alternatives(std::vector<Sym> options, const std::string& name) {
  std::vector<Symbol> syms;
  for (const Sym& o : options) {
    if (o && std::find(syms.begin(), syms.end(), *o) == syms.end()) syms.push_back(*o);
  }
  if (syms.empty()) return Sym();
  if (syms.size() == 1) return Sym(syms[0]);
  if (std::all_of(syms.begin(), syms.end(), [](Symbol s) { return s.is_terminal(); })) {
    std::vector<RegexId> res;
    for (Symbol s : syms) res.push_back(regex_of(s));
    return Sym(terminal(p_.alt(std::move(res)), "value"));
  }
  uint32_t rule = g_.add_rule(name);
  for (Symbol s : syms) g_.add_alternative(rule, {s});
  return Sym(Symbol::rule(rule));
}

Result<Sym> Compiler::compile_enum(const JsonValue& s, const JsonValue& values, const std::string& ptr, uint8_t types) {
  for (const auto& [k, v] : s.members) {
    if (k == "enum" || k == "const" || k == "type" || k == "nullable" || k == "$defs" || k == "definitions" ||
        !is_assertion_keyword(k)) {
      continue;
    }
    return error_at(str_cat("unsupported JSON Schema keyword '", k, "' together with 'enum' or 'const'"), ptr);
  }
  std::vector<RegexId> literals;
  for (const JsonValue& v : values.items) {
    uint8_t kind = 0;
    switch (v.kind) {
      case JsonValue::Kind::kNull: kind = kNull; break;
      case JsonValue::Kind::kBool: kind = kBoolean; break;
      case JsonValue::Kind::kString: kind = kString; break;
      case JsonValue::Kind::kArray: kind = kArray; break;
      case JsonValue::Kind::kObject: kind = kObject; break;
      case JsonValue::Kind::kNumber: {
        Decimal d;
        kind = parse_decimal(v.text, &d) && d.is_integer() ? (kNumber | kInteger) : kNumber;
        break;
      }
    }
    if ((kind & types) == 0) continue;
    literals.push_back(p_.literal(canonical_json(v)));
  }
  if (literals.empty()) return Sym();
  return Sym(terminal(p_.concat({ws_, p_.alt(std::move(literals))}), "enum"));
}

namespace {
// A non-negative integer keyword (minLength, maxItems, ...), or `dflt` when absent.
Result<uint64_t> count_keyword(const JsonValue& s, std::string_view k, uint64_t dflt) {
  const JsonValue* v = s.find(k);
  if (v == nullptr) return dflt;
  Decimal d;
  int64_t n = 0;
  if (!v->is_number() || !parse_decimal(v->text, &d) || (d.negative && !d.is_zero()) || !d.is_integer()) {
    return invalid_argument(str_cat("'", k, "' is not a non-negative integer"));
  }
  // A bound over kMaxRepeat is refused, a maximum too: a long generation can write more than
  // 10,000 characters or items, so dropping the bound would let output break the schema.
  if (!decimal_to_int64(d, &n) || n > static_cast<int64_t>(limits::kMaxRepeat)) {
    return invalid_argument(str_cat("'", k, "' over ", limits::kMaxRepeat, " (the largest bound kiln enforces)"));
  }
  return static_cast<uint64_t>(n);
}
}  // namespace

Result<uint64_t> Compiler::count(const JsonValue& s, std::string_view k, uint64_t dflt, const std::string& ptr) const {
  Result<uint64_t> r = count_keyword(s, k, dflt);
  if (!r.is_ok()) return error_at(r.status().message(), ptr);
  return r;
}

Result<RegexId> Compiler::pattern_regex(const JsonValue& pattern, const std::string& ptr) {
  if (!pattern.is_string()) return error_at("'pattern' is not a string", ptr);
  Result<ParsedRegex> parsed = parse_regex(p_, pattern.text);
  if (!parsed.is_ok()) return error_at(str_cat("unsupported JSON Schema keyword 'pattern': ", parsed.status().message()), ptr);
  // Patterns are unanchored: they match anywhere in the value unless ^ / $ say otherwise.
  RegexId anything = p_.star(p_.any_char());
  return p_.concat({parsed->anchored_start ? p_.empty() : anything, parsed->regex, parsed->anchored_end ? p_.empty() : anything});
}

Result<RegexId> Compiler::string_regex(const JsonValue& s, const std::string& ptr) {
  KILN_ASSIGN_OR_RETURN(uint64_t min, count(s, "minLength", 0, ptr));
  KILN_ASSIGN_OR_RETURN(uint64_t max, count(s, "maxLength", kUnbounded, ptr));
  const JsonValue* pattern = s.find("pattern");
  const JsonValue* format = s.find("format");
  std::optional<RegexId> decoded;
  if (pattern != nullptr) {
    KILN_ASSIGN_OR_RETURN(RegexId r, pattern_regex(*pattern, ptr));
    decoded = r;
  }
  if (format != nullptr) {
    if (!format->is_string()) return error_at("'format' is not a string", ptr);
    Result<RegexId> f = jsonlex::format_regex(p_, format->text);
    if (!f.is_ok()) {
      if (f.status().code() != StatusCode::kNotFound) return error_at(f.status().message(), ptr);
      // Formats JSON Schema defines are assertions kiln must not drop; any other name is an
      // annotation (the specification: unknown formats validate), e.g. OpenAPI's int32.
      static const std::string_view kDefined[] = {"idn-email", "idn-hostname", "iri", "iri-reference", "uri-template",
                                                  "json-pointer", "relative-json-pointer", "regex"};
      if (std::find(std::begin(kDefined), std::end(kDefined), format->text) != std::end(kDefined)) {
        return error_at(str_cat("unsupported JSON Schema keyword 'format' ('", format->text, "')"), ptr);
      }
    } else if (decoded) {
      return error_at("unsupported JSON Schema keyword 'format' together with 'pattern'", ptr);
    } else {
      decoded = *f;
    }
  }
  if (!decoded) {
    if (min > max) return p_.nothing();
    return jsonlex::string_of_length(p_, static_cast<uint32_t>(min), static_cast<uint32_t>(max));
  }
  bool exact = true;
  RegexId clamped = jsonlex::fit_length(p_, *decoded, min, max, &exact);
  if (!exact) {
    // Only a subset of the valid strings could be written: refused rather than narrowed.
    return error_at(str_cat("unsupported JSON Schema keyword '", s.find("maxLength") ? "maxLength" : "minLength",
                            "' together with '", pattern != nullptr ? "pattern" : "format", "'"), ptr);
  }
  if (clamped == p_.nothing()) return p_.nothing();
  return p_.concat({p_.literal("\""), jsonlex::encode_canonical(p_, clamped), p_.literal("\"")});
}

namespace {
// The tighter of an inclusive and an exclusive bound.
Result<std::optional<jsonlex::Bound>> bound(const JsonValue& s, std::string_view incl, std::string_view excl, bool lower) {
  std::optional<jsonlex::Bound> out;
  const JsonValue* e = s.find(excl);
  bool draft4_exclusive = e != nullptr && e->is_bool() && e->boolean;
  for (std::string_view k : {incl, excl}) {
    const JsonValue* v = s.find(k);
    if (v == nullptr || v->is_bool()) continue;
    Decimal d;
    if (!v->is_number() || !parse_decimal(v->text, &d)) return invalid_argument(str_cat("'", k, "' is not a number"));
    jsonlex::Bound b{d, k == excl || draft4_exclusive};
    if (!out) {
      out = b;
      continue;
    }
    int c = compare_decimal(b.value, out->value);
    if ((lower ? c > 0 : c < 0) || (c == 0 && b.exclusive)) out = b;
  }
  return out;
}
}  // namespace

Result<RegexId> Compiler::number_regex(const JsonValue& s, bool integer, const std::string& ptr) {
  Result<std::optional<jsonlex::Bound>> lo = bound(s, "minimum", "exclusiveMinimum", true);
  if (!lo.is_ok()) return error_at(lo.status().message(), ptr);
  Result<std::optional<jsonlex::Bound>> hi = bound(s, "maximum", "exclusiveMaximum", false);
  if (!hi.is_ok()) return error_at(hi.status().message(), ptr);
  uint32_t fraction_digits = kUnbounded;
  if (const JsonValue* m = s.find("multipleOf")) {
    Decimal k;
    if (!m->is_number() || !parse_decimal(m->text, &k) || k.negative || k.is_zero()) {
      return error_at("'multipleOf' is not a positive number", ptr);
    }
    int64_t kv = 0;
    if (k.digits == "1" && k.exponent < 0) {
      // 10^-n: any integer, or a number with at most n decimals.
      if (!integer) fraction_digits = static_cast<uint32_t>(std::min<int64_t>(-k.exponent, limits::kMaxRepeat));
    } else if (decimal_to_int64(k, &kv)) {
      if (kv != 1) {
        bool nonneg = *lo && !(*lo)->value.negative && (*lo)->value.is_zero() && !(*lo)->exclusive;
        if (*hi || (*lo && !nonneg)) {
          return error_at("unsupported JSON Schema keyword 'multipleOf' together with a bound", ptr);
        }
        Result<RegexId> r = jsonlex::integer_multiple_of(p_, kv, nonneg);
        if (!r.is_ok()) return error_at(str_cat("unsupported JSON Schema keyword 'multipleOf': ", r.status().message()), ptr);
        return r;
      }
      integer = true;
    } else {
      return error_at(str_cat("unsupported JSON Schema keyword 'multipleOf' (", m->text, ")"), ptr);
    }
  }
  Result<RegexId> r = jsonlex::number_in_range(p_, integer, *lo, *hi, fraction_digits);
  if (!r.is_ok()) return error_at(str_cat("unsupported JSON Schema keyword 'minimum'/'maximum': ", r.status().message()), ptr);
  return r;
}

Result<Grammar> Compiler::run() {
  KILN_ASSIGN_OR_RETURN(Sym root, compile(root_, "", 0));
  if (!root) return invalid_argument("the JSON Schema accepts no value");
  g_.start = g_.add_rule("start");
  g_.add_alternative(g_.start, {*root});
  KILN_RETURN_IF_ERROR(g_.validate());
  return std::move(g_);
}

Result<Grammar> Compiler::run_any_object() {
  Symbol obj = any_object();
  g_.start = g_.add_rule("start");
  g_.add_alternative(g_.start, {obj});
  KILN_RETURN_IF_ERROR(g_.validate());
  return std::move(g_);
}

}  // namespace jsonschema

Result<Grammar> json_schema_grammar(std::string_view schema_json, const JsonSchemaOptions& options) {
  if (schema_json.size() > limits::kMaxSourceBytes) {
    return invalid_argument(str_cat("the JSON Schema is longer than ", limits::kMaxSourceBytes, " bytes"));
  }
  KILN_ASSIGN_OR_RETURN(JsonValue root, parse_json(schema_json, 4 * limits::kMaxNesting));
  jsonschema::Compiler c(root, options);
  return c.run();
}

Result<Grammar> json_object_grammar(const JsonSchemaOptions& options) {
  JsonValue root;
  jsonschema::Compiler c(root, options);
  return c.run_any_object();
}

}  // namespace kiln::grammar
