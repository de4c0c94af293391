// JSON Schema to Grammar: allOf merged into one schema, and the disjointness that lets oneOf be
// compiled as anyOf.
#include <algorithm>

#include "kiln/core/str.h"
#include "kiln/grammar/json_schema_impl.h"
#include "kiln/grammar/limits.h"

namespace kiln::grammar::jsonschema {

namespace {

JsonValue object_value() {
  JsonValue v;
  v.kind = JsonValue::Kind::kObject;
  return v;
}

JsonValue all_of(const JsonValue& a, const JsonValue& b) {
  JsonValue list;
  list.kind = JsonValue::Kind::kArray;
  list.items = {a, b};
  JsonValue v = object_value();
  v.members.push_back({"allOf", std::move(list)});
  return v;
}

JsonValue* find_mut(JsonValue& v, std::string_view key) {
  for (auto& [k, x] : v.members) {
    if (k == key) return &x;
  }
  return nullptr;
}

bool is_true_schema(const JsonValue* v) { return v == nullptr || (v->is_bool() && v->boolean) || (v->is_object() && v->members.empty()); }

uint8_t type_bits(const JsonValue& t) {
  uint8_t bits = 0;
  auto one = [&bits](const JsonValue& n) {
    if (!n.is_string()) return;
    if (n.text == "null") bits |= kNull;
    if (n.text == "boolean") bits |= kBoolean;
    if (n.text == "object") bits |= kObject;
    if (n.text == "array") bits |= kArray;
    if (n.text == "string") bits |= kString;
    if (n.text == "number") bits |= kNumber | kInteger;
    if (n.text == "integer") bits |= kInteger;
  };
  if (t.is_array()) {
    for (const JsonValue& n : t.items) one(n);
  } else {
    one(t);
  }
  return bits;
}

JsonValue type_value(uint8_t bits) {
  JsonValue list;
  list.kind = JsonValue::Kind::kArray;
  auto add = [&list](std::string_view name) {
    JsonValue n;
    n.kind = JsonValue::Kind::kString;
    n.text = std::string(name);
    list.items.push_back(std::move(n));
  };
  if (bits & kNull) add("null");
  if (bits & kBoolean) add("boolean");
  if (bits & kObject) add("object");
  if (bits & kArray) add("array");
  if (bits & kString) add("string");
  if (bits & kNumber) add("number");
  else if (bits & kInteger) add("integer");
  return list;
}

uint8_t value_kind(const JsonValue& v) {
  switch (v.kind) {
    case JsonValue::Kind::kNull: return kNull;
    case JsonValue::Kind::kBool: return kBoolean;
    case JsonValue::Kind::kString: return kString;
    case JsonValue::Kind::kArray: return kArray;
    case JsonValue::Kind::kObject: return kObject;
    case JsonValue::Kind::kNumber: {
      Decimal d;
      return parse_decimal(v.text, &d) && d.is_integer() ? (kNumber | kInteger) : kNumber;
    }
  }
  return 0;
}

// enum / const as one list of values; null when the schema has neither.
std::optional<std::vector<JsonValue>> enum_values(const JsonValue& s) {
  std::optional<std::vector<JsonValue>> out;
  if (const JsonValue* e = s.find("enum"); e != nullptr && e->is_array()) out = e->items;
  if (const JsonValue* c = s.find("const")) {
    std::vector<JsonValue> one;
    if (!out || std::any_of(out->begin(), out->end(), [c](const JsonValue& v) { return json_equal(v, *c); })) one.push_back(*c);
    out = std::move(one);
  }
  return out;
}

bool lower_keyword(std::string_view k) { return k == "minLength" || k == "minItems" || k == "minimum" || k == "exclusiveMinimum"; }
bool upper_keyword(std::string_view k) { return k == "maxLength" || k == "maxItems" || k == "maximum" || k == "exclusiveMaximum"; }

}  // namespace

Result<const JsonValue*> Compiler::merge_all(const std::vector<const JsonValue*>& parts_in, const std::string& ptr, size_t depth) {
  if (depth > limits::kMaxNesting) return error_at(str_cat("schema nesting deeper than ", limits::kMaxNesting), ptr);
  // Flatten: $ref targets and nested allOf become parts of their own.
  std::vector<const JsonValue*> parts;
  std::vector<const JsonValue*> todo(parts_in.rbegin(), parts_in.rend());
  size_t steps = 0;
  while (!todo.empty()) {
    const JsonValue* s = todo.back();
    todo.pop_back();
    if (++steps > 10'000) return error_at("'allOf' expands too far", ptr);
    if (s->is_bool()) {
      if (!s->boolean) return keep(*s);
      continue;
    }
    if (!s->is_object()) return error_at("a schema that is neither an object nor a boolean", ptr);
    KILN_RETURN_IF_ERROR(check_keywords(*s, ptr));
    const JsonValue* ref = s->find("$ref");
    const JsonValue* all = s->find("allOf");
    if (ref == nullptr && all == nullptr) {
      parts.push_back(s);
      continue;
    }
    JsonValue rest = object_value();
    for (const auto& [k, v] : s->members) {
      if (k != "$ref" && k != "allOf") rest.members.push_back({k, v});
    }
    todo.push_back(keep(std::move(rest)));
    if (all != nullptr) {
      if (!all->is_array()) return error_at("'allOf' is not an array", ptr);
      for (auto it = all->items.rbegin(); it != all->items.rend(); ++it) todo.push_back(&*it);
    }
    if (ref != nullptr) {
      std::string target_ptr;
      KILN_ASSIGN_OR_RETURN(const JsonValue* target, resolve_ref(*ref, ptr, &target_ptr));
      todo.push_back(target);
    }
  }

  JsonValue acc = object_value();
  for (const JsonValue* part : parts) {
    const JsonValue& b = *part;
    // additionalProperties of one side constrains the properties only the other side names.
    const JsonValue* acc_props = acc.find("properties");
    const JsonValue* b_props = b.find("properties");
    const JsonValue* acc_addl = acc.find("additionalProperties");
    const JsonValue* b_addl = b.find("additionalProperties");
    JsonValue b_copy = b;
    if (!is_true_schema(acc_addl) && b_props != nullptr && b_props->is_object()) {
      JsonValue* props = find_mut(b_copy, "properties");
      for (auto& [k, v] : props->members) {
        if (acc_props == nullptr || acc_props->find(k) == nullptr) v = all_of(v, *acc_addl);
      }
    }
    if (!is_true_schema(b_addl) && acc_props != nullptr && acc_props->is_object()) {
      JsonValue* props = find_mut(acc, "properties");
      for (auto& [k, v] : props->members) {
        if (b_props == nullptr || b_props->find(k) == nullptr) v = all_of(v, *b_addl);
      }
    }
    std::optional<std::vector<JsonValue>> b_enum = enum_values(b);
    for (const auto& [k, v] : b_copy.members) {
      if (k == "$defs" || k == "definitions" || !is_assertion_keyword(k)) continue;
      if (k == "enum" || k == "const") continue;  // below
      JsonValue* have = find_mut(acc, k);
      if (have == nullptr) {
        acc.members.push_back({k, v});
        continue;
      }
      if (k == "type") {
        *have = type_value(type_bits(*have) & type_bits(v));
      } else if (k == "properties") {
        if (!v.is_object() || !have->is_object()) return error_at("'properties' is not an object", ptr);
        for (const auto& [pk, pv] : v.members) {
          if (JsonValue* same = find_mut(*have, pk)) {
            *same = all_of(*same, pv);
          } else {
            have->members.push_back({pk, pv});
          }
        }
      } else if (k == "required") {
        if (!v.is_array() || !have->is_array()) return error_at("'required' is not an array", ptr);
        for (const JsonValue& r : v.items) {
          if (std::none_of(have->items.begin(), have->items.end(), [&r](const JsonValue& x) { return json_equal(x, r); })) {
            have->items.push_back(r);
          }
        }
      } else if (k == "items" || k == "additionalProperties" || k == "additionalItems") {
        *have = all_of(*have, v);
      } else if ((lower_keyword(k) || upper_keyword(k)) && v.is_number() && have->is_number()) {
        Decimal x, y;
        if (!parse_decimal(v.text, &x) || !parse_decimal(have->text, &y)) return error_at(str_cat("'", k, "' is not a number"), ptr);
        int c = compare_decimal(x, y);
        if (lower_keyword(k) ? c > 0 : c < 0) *have = v;
      } else if (k == "nullable" || k == "uniqueItems") {
        if (v.is_bool() && have->is_bool()) have->boolean = k == "nullable" ? have->boolean && v.boolean : have->boolean || v.boolean;
      } else if (!json_equal(*have, v)) {
        return error_at(str_cat("unsupported JSON Schema keyword 'allOf' (two branches set '", k, "')"), ptr);
      }
    }
    if (b_enum) {
      std::optional<std::vector<JsonValue>> a_enum = enum_values(acc);
      std::vector<JsonValue> both;
      for (const JsonValue& x : *b_enum) {
        if (!a_enum || std::any_of(a_enum->begin(), a_enum->end(), [&x](const JsonValue& y) { return json_equal(x, y); })) {
          both.push_back(x);
        }
      }
      std::erase_if(acc.members, [](const auto& m) { return m.first == "enum" || m.first == "const"; });
      JsonValue list;
      list.kind = JsonValue::Kind::kArray;
      list.items = std::move(both);
      acc.members.push_back({"enum", std::move(list)});
    }
  }
  if (synthetic_.size() > 100'000) return error_at("'allOf' expands too far", ptr);
  return keep(std::move(acc));
}

uint8_t Compiler::possible_types(const JsonValue& s, size_t depth) {
  if (depth > limits::kMaxNesting) return kAllTypes;
  if (s.is_bool()) return s.boolean ? kAllTypes : 0;
  if (!s.is_object()) return kAllTypes;
  uint8_t bits = kAllTypes;
  if (const JsonValue* t = s.find("type")) {
    bits = type_bits(*t);
    if (const JsonValue* n = s.find("nullable"); n != nullptr && n->is_bool() && n->boolean) bits |= kNull;
  }
  if (std::optional<std::vector<JsonValue>> e = enum_values(s)) {
    uint8_t kinds = 0;
    for (const JsonValue& v : *e) kinds |= value_kind(v);
    bits &= kinds;
  }
  if (const JsonValue* ref = s.find("$ref")) {
    std::string target_ptr;
    Result<const JsonValue*> target = resolve_ref(*ref, "", &target_ptr);
    if (target.is_ok()) bits &= possible_types(**target, depth + 1);
  }
  if (const JsonValue* all = s.find("allOf"); all != nullptr && all->is_array()) {
    for (const JsonValue& x : all->items) bits &= possible_types(x, depth + 1);
  }
  for (std::string_view k : {"anyOf", "oneOf"}) {
    if (const JsonValue* list = s.find(k); list != nullptr && list->is_array()) {
      uint8_t any = 0;
      for (const JsonValue& x : list->items) any |= possible_types(x, depth + 1);
      bits &= any;
    }
  }
  return bits;
}

namespace {
const JsonValue* follow(Compiler& c, const JsonValue* s) {
  for (int i = 0; i < 32 && s->is_object(); ++i) {
    const JsonValue* ref = s->find("$ref");
    if (ref == nullptr) break;
    std::string target_ptr;
    Result<const JsonValue*> t = c.resolve_ref(*ref, "", &target_ptr);
    if (!t.is_ok()) break;
    s = *t;
  }
  return s;
}

bool values_disjoint(const std::vector<JsonValue>& a, const std::vector<JsonValue>& b) {
  for (const JsonValue& x : a) {
    for (const JsonValue& y : b) {
      if (json_equal(x, y)) return false;
    }
  }
  return true;
}

bool requires_key(const JsonValue& s, std::string_view key) {
  const JsonValue* r = s.find("required");
  return r != nullptr && r->is_array() &&
         std::any_of(r->items.begin(), r->items.end(), [key](const JsonValue& x) { return x.is_string() && x.text == key; });
}

bool forbids_key(const JsonValue& s, std::string_view key) {
  const JsonValue* props = s.find("properties");
  const JsonValue* p = props != nullptr ? props->find(key) : nullptr;
  if (p != nullptr) return p->is_bool() && !p->boolean;
  const JsonValue* addl = s.find("additionalProperties");
  return addl != nullptr && addl->is_bool() && !addl->boolean;
}
}  // namespace

bool Compiler::disjoint(const JsonValue& a_in, const JsonValue& b_in, size_t depth) {
  const JsonValue& a = *follow(*this, &a_in);
  const JsonValue& b = *follow(*this, &b_in);
  uint8_t common = possible_types(a, depth) & possible_types(b, depth);
  if (common == 0) return true;
  std::optional<std::vector<JsonValue>> ea = enum_values(a), eb = enum_values(b);
  if (ea && eb && values_disjoint(*ea, *eb)) return true;
  if (common != kObject || !a.is_object() || !b.is_object()) return false;
  // Objects told apart by a required property: different constant values, or absent in one.
  for (const JsonValue* s : {&a, &b}) {
    const JsonValue* other = s == &a ? &b : &a;
    const JsonValue* r = s->find("required");
    if (r == nullptr || !r->is_array()) continue;
    for (const JsonValue& key : r->items) {
      if (!key.is_string()) continue;
      if (forbids_key(*other, key.text)) return true;
      if (!requires_key(*other, key.text)) continue;
      const JsonValue* pa = s->find("properties") ? s->find("properties")->find(key.text) : nullptr;
      const JsonValue* pb = other->find("properties") ? other->find("properties")->find(key.text) : nullptr;
      if (pa == nullptr || pb == nullptr) continue;
      pa = follow(*this, pa);
      pb = follow(*this, pb);
      if (!pa->is_object() || !pb->is_object()) continue;
      std::optional<std::vector<JsonValue>> va = enum_values(*pa), vb = enum_values(*pb);
      if (va && vb && values_disjoint(*va, *vb)) return true;
    }
  }
  return false;
}

}  // namespace kiln::grammar::jsonschema
