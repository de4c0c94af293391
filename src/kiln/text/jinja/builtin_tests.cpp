// jinja2's builtin tests (`x is defined`, `x is divisibleby 3`, ...).
#include <cmath>
#include <map>

#include "kiln/text/jinja/builtins.h"
#include "kiln/text/jinja/interpreter.h"
#include "kiln/text/jinja/unicode.h"

namespace kiln::text::jinja {
namespace {

using In = Interpreter;

const Value& first_arg(CallArgs& a, const char* test) {
  if (a.positional.empty() && a.keyword.empty())
    throw_type_error(std::string(test) + "() missing 1 required positional argument");
  return a.positional.empty() ? a.keyword[0].second : a.positional[0];
}

bool t_defined(In&, const Value& v, CallArgs&) { return !v.is_undefined(); }
bool t_undefined(In&, const Value& v, CallArgs&) { return v.is_undefined(); }
bool t_none(In&, const Value& v, CallArgs&) { return v.is_none(); }
bool t_boolean(In&, const Value& v, CallArgs&) { return v.is_bool(); }
bool t_true(In&, const Value& v, CallArgs&) { return v.is_bool() && v.as_bool(); }
bool t_false(In&, const Value& v, CallArgs&) { return v.is_bool() && !v.as_bool(); }
bool t_integer(In&, const Value& v, CallArgs&) { return v.is_int(); }
bool t_float(In&, const Value& v, CallArgs&) { return v.is_float(); }
bool t_number(In&, const Value& v, CallArgs&) { return v.is_number(); }
bool t_string(In&, const Value& v, CallArgs&) { return v.is_string(); }
bool t_mapping(In&, const Value& v, CallArgs&) { return v.is_dict(); }
bool t_iterable(In&, const Value& v, CallArgs&) { return v.is_undefined() || v.is_string() || v.is_list() || v.is_dict(); }
bool t_sequence(In&, const Value& v, CallArgs&) {
  if (v.is_list()) return v.is_plain_list() || v.seq_kind() == SeqKind::kDictKeys || v.seq_kind() == SeqKind::kDictItems;
  return v.is_undefined() || v.is_string() || v.is_dict();
}
bool t_callable(In&, const Value& v, CallArgs&) { return v.is_function(); }
bool t_escaped(In&, const Value&, CallArgs&) { return false; }

int64_t int_operand(const Value& v) {
  if (v.is_undefined()) throw_undefined(v);
  if (!(v.is_int() || v.is_bool())) throw_type_error("unsupported operand type(s) for %: '" + type_name(v) + "' and 'int'");
  return v.to_int();
}
bool t_odd(In&, const Value& v, CallArgs&) { return int_operand(v) % 2 != 0; }
bool t_even(In&, const Value& v, CallArgs&) { return int_operand(v) % 2 == 0; }
bool t_divisibleby(In&, const Value& v, CallArgs& a) {
  const Value& d = first_arg(a, "divisibleby");
  if (v.is_float() || d.is_float()) {
    double y = d.to_double();
    if (y == 0) throw_value_error("float modulo");
    return std::fmod(v.to_double(), y) == 0;
  }
  int64_t y = int_operand(d);
  if (y == 0) throw_value_error("integer division or modulo by zero");
  if (y == -1) return true;
  return int_operand(v) % y == 0;
}

bool t_lower(In&, const Value& v, CallArgs&) {
  std::string s = soft_str(v);
  bool cased = false;
  for (size_t i = 0; i < s.size();) {
    char32_t c = utf8_next(s, &i);
    if (py_is_upper(c)) return false;
    cased |= py_is_lower(c);
  }
  return cased;
}
bool t_upper(In&, const Value& v, CallArgs&) {
  std::string s = soft_str(v);
  bool cased = false;
  for (size_t i = 0; i < s.size();) {
    char32_t c = utf8_next(s, &i);
    if (py_is_lower(c)) return false;
    cased |= py_is_upper(c);
  }
  return cased;
}

bool t_eq(In&, const Value& v, CallArgs& a) { return py_equal(v, first_arg(a, "eq")); }
bool t_ne(In&, const Value& v, CallArgs& a) { return !py_equal(v, first_arg(a, "ne")); }
bool t_lt(In&, const Value& v, CallArgs& a) { return py_less(v, first_arg(a, "lt")); }
bool t_gt(In&, const Value& v, CallArgs& a) { return py_less(first_arg(a, "gt"), v); }
bool t_le(In&, const Value& v, CallArgs& a) { return py_less(v, first_arg(a, "le")) || py_equal(v, first_arg(a, "le")); }
bool t_ge(In&, const Value& v, CallArgs& a) { return py_less(first_arg(a, "ge"), v) || py_equal(v, first_arg(a, "ge")); }
bool t_sameas(In&, const Value& v, CallArgs& a) {
  const Value& o = first_arg(a, "sameas");
  if (v.kind() != o.kind()) return false;
  switch (v.kind()) {
    case Value::Kind::kNone:
    case Value::Kind::kUndefined: return true;
    case Value::Kind::kBool: return v.as_bool() == o.as_bool();
    case Value::Kind::kInt: return v.as_int() == o.as_int() && v.as_int() >= -5 && v.as_int() <= 256;
    default: return v.identity() == o.identity();
  }
}
bool t_in(In&, const Value& v, CallArgs& a) {
  const Value& seq = first_arg(a, "in");
  if (seq.is_string()) {
    if (!v.is_string()) throw_type_error("'in <string>' requires string as left operand, not " + type_name(v));
    return seq.str().find(v.str()) != std::string::npos;
  }
  if (seq.is_list()) {
    for (const auto& x : seq.items())
      if (py_equal(x, v)) return true;
    return false;
  }
  if (seq.is_dict()) return seq.dict_data().find(v) != nullptr;
  if (seq.is_undefined()) return false;
  throw_type_error("argument of type '" + type_name(seq) + "' is not iterable");
}
bool t_filter(In&, const Value& v, CallArgs&) { return v.is_string() && find_filter(v.str()) != nullptr; }
bool t_test(In&, const Value& v, CallArgs&) { return v.is_string() && find_test(v.str()) != nullptr; }

const std::map<std::string_view, TestFn>& tests() {
  static const std::map<std::string_view, TestFn> kTests = {
      {"defined", t_defined},   {"undefined", t_undefined}, {"none", t_none},         {"boolean", t_boolean},
      {"true", t_true},         {"false", t_false},         {"integer", t_integer},   {"float", t_float},
      {"number", t_number},     {"string", t_string},       {"mapping", t_mapping},   {"iterable", t_iterable},
      {"sequence", t_sequence}, {"callable", t_callable},   {"escaped", t_escaped},   {"odd", t_odd},
      {"even", t_even},         {"divisibleby", t_divisibleby}, {"lower", t_lower},   {"upper", t_upper},
      {"eq", t_eq},             {"equalto", t_eq},          {"==", t_eq},             {"ne", t_ne},
      {"!=", t_ne},             {"lt", t_lt},               {"lessthan", t_lt},       {"<", t_lt},
      {"gt", t_gt},             {"greaterthan", t_gt},      {">", t_gt},              {"le", t_le},
      {"<=", t_le},             {"ge", t_ge},               {">=", t_ge},             {"sameas", t_sameas},
      {"in", t_in},             {"filter", t_filter},       {"test", t_test},
  };
  return kTests;
}

}  // namespace

TestFn find_test(std::string_view name) {
  auto it = tests().find(name);
  return it == tests().end() ? nullptr : it->second;
}

}  // namespace kiln::text::jinja
