// JSON Schema to Grammar: objects (properties in declared order), arrays, and any JSON value.
#include <algorithm>
#include <map>

#include "kiln/core/str.h"
#include "kiln/grammar/json_schema_impl.h"
#include "kiln/grammar/json_schema_lex.h"
#include "kiln/grammar/limits.h"

namespace kiln::grammar::jsonschema {

namespace {

using Alts = std::vector<std::vector<Symbol>>;

}  // namespace

static Seq& seq_syms(Seq& s, const std::vector<Symbol>& syms) {
  for (Symbol x : syms) s.sym(x);
  return s;
}

// One alternative stays inline; several become a rule.
static std::vector<Symbol> use(Compiler& c, Alts alts, const std::string& name) {
  if (alts.size() == 1) return std::move(alts[0]);
  uint32_t rule = c.g_.add_rule(name);
  for (auto& a : alts) c.g_.add_alternative(rule, std::move(a));
  return {Symbol::rule(rule)};
}

// A sequence as one symbol.
static Symbol as_symbol(Compiler& c, std::vector<Symbol> body, const std::string& name) {
  if (body.size() == 1) return body[0];
  uint32_t rule = c.g_.add_rule(name);
  c.g_.add_alternative(rule, std::move(body));
  return Symbol::rule(rule);
}

Result<Sym> Compiler::object_symbol(const JsonValue& s, const std::string& ptr, size_t depth) {
  struct Prop {
    std::string key;
    Symbol value;
    bool required;
  };
  std::vector<std::string> required;
  if (const JsonValue* r = s.find("required")) {
    if (!r->is_array()) return error_at("'required' is not an array", ptr);
    for (const JsonValue& k : r->items) {
      if (!k.is_string()) return error_at("'required' holds a non-string", ptr);
      if (std::find(required.begin(), required.end(), k.text) == required.end()) required.push_back(k.text);
    }
  }
  const JsonValue* addl = s.find("additionalProperties");
  Sym addl_sym;
  if (addl == nullptr) {
    if (options_.default_additional_properties) addl_sym = any_value();
  } else {
    KILN_ASSIGN_OR_RETURN(addl_sym, compile(*addl, ptr + "/additionalProperties", depth + 1));
  }
  std::vector<Prop> props;
  std::vector<std::string> declared;
  if (const JsonValue* ps = s.find("properties")) {
    if (!ps->is_object()) return error_at("'properties' is not an object", ptr);
    for (const auto& [k, v] : ps->members) {
      bool req = std::find(required.begin(), required.end(), k) != required.end();
      declared.push_back(k);
      KILN_ASSIGN_OR_RETURN(Sym value, compile(v, str_cat(ptr, "/properties/", pointer_escape(k)), depth + 1));
      if (!value) {
        if (req) return Sym();
        continue;
      }
      props.push_back({k, *value, req});
    }
  }
  // Required names the schema does not describe take additionalProperties' schema, after the rest.
  for (const std::string& k : required) {
    const JsonValue* ps = s.find("properties");
    if (ps != nullptr && ps->find(k) != nullptr) continue;
    if (!addl_sym) return Sym();
    declared.push_back(k);
    props.push_back({k, *addl_sym, true});
  }

  RegexId comma = punct(",");
  auto key_re = [&](std::string_view k) {
    std::string quoted = "\"";
    append_canonical_string(quoted, k);
    quoted += "\"";
    return p_.concat({ws_, p_.literal(quoted), ws_, p_.literal(":")});
  };
  std::string name = str_cat("object ", ptr.empty() ? "/" : ptr);
  // After the declared properties: more properties the schema does not name, each `,key:value`.
  // minProperties 1: an object with nothing written may not end.
  bool nonempty = false;
  if (const JsonValue* mp = s.find("minProperties"); mp != nullptr && mp->is_number() && mp->text == "1") nonempty = true;
  std::vector<Symbol> tail_started;                // after something was written
  std::optional<std::vector<Symbol>> tail_fresh;   // nothing written yet (none: cannot end so)
  if (!nonempty) tail_fresh.emplace();
  // patternProperties, where kiln can say it exactly: with additionalProperties false and no
  // named properties, every property is a name matching a pattern, all patterns with one schema.
  std::optional<RegexId> pattern_keys;
  if (const JsonValue* pp = s.find("patternProperties")) {
    const JsonValue* first = pp->is_object() && !pp->members.empty() ? &pp->members[0].second : nullptr;
    bool one_schema = first != nullptr && std::all_of(pp->members.begin(), pp->members.end(),
                                                      [first](const JsonMember& m) { return json_equal(m.second, *first); });
    bool closed = addl != nullptr && addl->is_bool() && !addl->boolean;
    if (!closed || !props.empty() || !one_schema) {
      return error_at("unsupported JSON Schema keyword 'patternProperties' (only alone, with one schema and "
                      "additionalProperties false)", ptr);
    }
    std::vector<RegexId> keys;
    for (const JsonMember& m : pp->members) {
      JsonValue pattern;
      pattern.kind = JsonValue::Kind::kString;
      pattern.text = m.first;
      KILN_ASSIGN_OR_RETURN(RegexId k, pattern_regex(pattern, ptr + "/patternProperties"));
      keys.push_back(jsonlex::encode_canonical(p_, k));
    }
    pattern_keys = p_.alt(std::move(keys));
    KILN_ASSIGN_OR_RETURN(addl_sym, compile(*first, str_cat(ptr, "/patternProperties/", pointer_escape(pp->members[0].first)), depth + 1));
  }
  if (addl_sym) {
    RegexId other_key = p_.concat({ws_, p_.literal("\""), pattern_keys ? *pattern_keys : jsonlex::canonical_not_in(p_, declared), p_.literal("\""), ws_, p_.literal(":")});
    uint32_t more = g_.add_rule(name + " more");
    g_.add_alternative(more, {});
    g_.add_alternative(more, Seq(*this).re(comma).re(other_key).sym(*addl_sym).sym(Symbol::rule(more)).done());
    tail_started = {Symbol::rule(more)};
    Alts fresh = {Seq(*this).re(other_key).sym(*addl_sym).sym(Symbol::rule(more)).done()};
    if (!nonempty) fresh.push_back({});
    tail_fresh = use(*this, std::move(fresh), name + " rest");
  }
  for (size_t i = props.size(); i-- > 0;) {
    const Prop& pr = props[i];
    Alts started = {seq_syms(Seq(*this).re(comma).re(key_re(pr.key)).sym(pr.value), tail_started).done()};
    Alts fresh = {seq_syms(Seq(*this).re(key_re(pr.key)).sym(pr.value), tail_started).done()};
    if (!pr.required) {
      started.push_back(tail_started);
      if (tail_fresh) fresh.push_back(*tail_fresh);
    }
    tail_started = use(*this, std::move(started), str_cat(name, " after ", i));
    tail_fresh = use(*this, std::move(fresh), str_cat(name, " from ", i));
  }
  if (!tail_fresh) return Sym();
  std::vector<Symbol> body = seq_syms(Seq(*this).re(punct("{")), *tail_fresh).re(punct("}")).done();
  return Sym(as_symbol(*this, std::move(body), name));
}

Result<Sym> Compiler::array_symbol(const JsonValue& s, const std::string& ptr, size_t depth) {
  std::vector<Sym> prefix;
  const JsonValue* prefix_items = s.find("prefixItems");
  const JsonValue* items = s.find("items");
  const JsonValue* rest_schema = items;
  std::string rest_ptr = ptr + "/items";
  if (prefix_items == nullptr && items != nullptr && items->is_array()) {
    prefix_items = items;  // draft 2019 and earlier: an array `items` is prefixItems
    rest_schema = s.find("additionalItems");
    rest_ptr = ptr + "/additionalItems";
  } else if (s.find("additionalItems") != nullptr && prefix_items == nullptr) {
    rest_schema = items;  // additionalItems without an array items has no effect
  }
  if (prefix_items != nullptr) {
    if (!prefix_items->is_array()) return error_at("'prefixItems' is not an array", ptr);
    std::string key = prefix_items == items ? "/items/" : "/prefixItems/";
    for (size_t i = 0; i < prefix_items->items.size(); ++i) {
      KILN_ASSIGN_OR_RETURN(Sym x, compile(prefix_items->items[i], str_cat(ptr, key, i), depth + 1));
      prefix.push_back(x);
    }
  }
  Sym rest;
  if (rest_schema == nullptr) {
    rest = any_value();
  } else {
    KILN_ASSIGN_OR_RETURN(rest, compile(*rest_schema, rest_ptr, depth + 1));
  }
  KILN_ASSIGN_OR_RETURN(uint64_t min, count(s, "minItems", 0, ptr));
  KILN_ASSIGN_OR_RETURN(uint64_t max, count(s, "maxItems", kUnbounded, ptr));
  if (min > max) return Sym();
  RegexId open = punct("["), close = punct("]"), comma = punct(",");
  std::string name = str_cat("array ", ptr.empty() ? "/" : ptr);

  // Items all of one terminal: the whole array is one lexeme.
  if (prefix.empty() && rest && rest->is_terminal()) {
    RegexId r = regex_of(*rest);
    uint32_t more_min = min == 0 ? 0 : static_cast<uint32_t>(min - 1);
    uint32_t more_max = max >= kUnbounded ? kUnbounded : static_cast<uint32_t>(max - 1);
    RegexId elements = max == 0 ? p_.empty() : p_.concat({r, p_.repeat(p_.concat({comma, r}), more_min, more_max)});
    if (min == 0 && max > 0) elements = p_.optional(elements);
    RegexId whole = p_.concat({open, elements, close});
    if (nfa_cost(whole) <= kMaxArrayLexemeStates) return Sym(terminal(whole, "array"));
  }

  // tails[i]: what follows once i items are written, the closing bracket included.
  size_t k = prefix.size();
  uint64_t base = std::max<uint64_t>(min, k);
  uint64_t top = max >= kUnbounded ? base : max;
  if (top > limits::kMaxRepeat) return error_at(str_cat("an array with more than ", limits::kMaxRepeat, " items"), ptr);
  std::optional<std::vector<Symbol>> next;  // tails[i + 1]
  for (uint64_t i = top + 1; i-- > 0;) {
    Sym elem = i < k ? prefix[i] : rest;
    RegexId sep = i == 0 ? p_.empty() : comma;
    Alts alts;
    if (i >= min) alts.push_back(Seq(*this).re(close).done());
    if (i == top && max >= kUnbounded && elem) {
      // The unbounded part: a loop of `,item`.
      uint32_t loop = g_.add_rule(name + " more");
      g_.add_alternative(loop, Seq(*this).re(close).done());
      g_.add_alternative(loop, Seq(*this).re(comma).sym(*elem).sym(Symbol::rule(loop)).done());
      if (i == 0) {
        alts.push_back(Seq(*this).sym(*elem).sym(Symbol::rule(loop)).done());
      } else {
        alts = {{Symbol::rule(loop)}};
      }
    } else if (i < top && elem && next) {
      // Unrolled, an item merged with its comma is copied once per position: past a size, the
      // item stays one terminal shared by every position.
      Seq head(*this);
      head.re(sep);
      if (elem->is_terminal() && top * nfa_cost(regex_of(*elem)) > kMaxArrayLexemeStates) {
        head.shared(*elem);
      } else {
        head.sym(*elem);
      }
      alts.push_back(seq_syms(head, *next).done());
    }
    if (alts.empty()) {
      next.reset();
    } else {
      next = use(*this, std::move(alts), str_cat(name, " at ", i));
    }
  }
  if (!next) return Sym();
  std::vector<Symbol> body = seq_syms(Seq(*this).re(open), *next).done();
  return Sym(as_symbol(*this, std::move(body), name));
}

Symbol Compiler::any_value() {
  if (any_value_) return *any_value_;
  uint32_t value = g_.add_rule("value");
  uint32_t object = g_.add_rule("object");
  uint32_t members = g_.add_rule("members");
  uint32_t array = g_.add_rule("array");
  uint32_t elements = g_.add_rule("elements");
  any_value_ = Symbol::rule(value);
  any_object_ = Symbol::rule(object);
  RegexId string = jsonlex::string_of_length(p_, 0, kUnbounded);
  RegexId primitive = p_.concat({ws_, p_.alt({string, jsonlex::any_number(p_), p_.literal("true"), p_.literal("false"), p_.literal("null")})});
  RegexId key = p_.concat({ws_, string, ws_, p_.literal(":")});
  RegexId comma = punct(",");
  g_.add_alternative(value, {terminal(primitive, "value")});
  g_.add_alternative(value, {Symbol::rule(object)});
  g_.add_alternative(value, {Symbol::rule(array)});
  g_.add_alternative(object, Seq(*this).re(punct("{")).re(punct("}")).done());
  g_.add_alternative(object, Seq(*this).re(punct("{")).re(key).sym(Symbol::rule(value)).sym(Symbol::rule(members)).re(punct("}")).done());
  g_.add_alternative(members, {});
  g_.add_alternative(members, Seq(*this).re(comma).re(key).sym(Symbol::rule(value)).sym(Symbol::rule(members)).done());
  g_.add_alternative(array, Seq(*this).re(punct("[")).re(punct("]")).done());
  g_.add_alternative(array, Seq(*this).re(punct("[")).sym(Symbol::rule(value)).sym(Symbol::rule(elements)).re(punct("]")).done());
  g_.add_alternative(elements, {});
  g_.add_alternative(elements, Seq(*this).re(comma).sym(Symbol::rule(value)).sym(Symbol::rule(elements)).done());
  return *any_value_;
}

Symbol Compiler::any_object() {
  any_value();
  return *any_object_;
}

}  // namespace kiln::grammar::jsonschema
