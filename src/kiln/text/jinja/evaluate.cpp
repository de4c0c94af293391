// Expressions: evaluation, attribute and item access, slicing, arithmetic with Python's rules,
// and comparisons. Statements live in interpreter.cpp.
#include <algorithm>
#include <cmath>
#include <limits>

#include "kiln/core/str.h"
#include "kiln/text/jinja/builtins.h"
#include "kiln/text/jinja/interpreter.h"
#include "kiln/text/jinja/py_format.h"
#include "kiln/text/jinja/unicode.h"

namespace kiln::text::jinja {
namespace {

void check_overflow(bool overflow) {
  if (overflow) throw RenderError(RenderError::Kind::kLimit, "integer overflow (kiln's integers are 64-bit)");
}

int64_t floor_div(int64_t a, int64_t b) {
  if (b == 0) throw RenderError(RenderError::Kind::kValue, "integer division or modulo by zero");
  check_overflow(a == std::numeric_limits<int64_t>::min() && b == -1);
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

int64_t py_mod(int64_t a, int64_t b) {
  if (b == 0) throw RenderError(RenderError::Kind::kValue, "integer division or modulo by zero");
  if (b == -1) return 0;
  int64_t r = a % b;
  if (r != 0 && ((r < 0) != (b < 0))) r += b;
  return r;
}

double py_fmod(double a, double b) {
  if (b == 0) throw RenderError(RenderError::Kind::kValue, "float modulo");
  double r = std::fmod(a, b);
  if (r != 0 && ((r < 0) != (b < 0))) r += b;
  else if (r == 0) r = std::copysign(0.0, b);
  return r;
}

}  // namespace

Value Interpreter::getattr(const Value& obj, std::string_view name) {
  if (obj.is_undefined()) throw_undefined(obj);
  if (obj.is_namespace()) {
    const Value* v = obj.namespace_data().attrs.find(name);
    return v ? *v : Value::undefined(std::string(name));
  }
  Value method;
  if (find_method(obj, name, &method)) return method;
  if (obj.is_dict()) {
    const Value* v = obj.dict_data().find(name);
    if (v) return *v;
  }
  return Value::undefined(std::string(name));
}

Value Interpreter::getitem(const Value& obj, const Value& key) {
  if (obj.is_undefined()) throw_undefined(obj);
  if (obj.is_dict()) {
    const Value* v = obj.dict_data().find(key);
    if (v) return *v;
  } else if ((obj.is_plain_list() || obj.is_string()) && (key.is_int() || key.is_bool())) {
    int64_t i = key.to_int();
    if (obj.is_list()) {
      auto n = static_cast<int64_t>(obj.items().size());
      if (i < 0) i += n;
      if (i >= 0 && i < n) return obj.items()[static_cast<size_t>(i)];
    } else {
      const std::string& s = obj.str();
      if (is_ascii(s)) {
        auto n = static_cast<int64_t>(s.size());
        if (i < 0) i += n;
        if (i >= 0 && i < n) return Value(s.substr(static_cast<size_t>(i), 1));
      } else {
        auto offs = utf8_offsets(s);
        auto n = static_cast<int64_t>(offs.size() - 1);
        if (i < 0) i += n;
        if (i >= 0 && i < n)
          return Value(s.substr(offs[static_cast<size_t>(i)], offs[static_cast<size_t>(i) + 1] - offs[static_cast<size_t>(i)]));
      }
    }
    return Value::undefined();
  }
  if (key.is_string() && !obj.is_namespace()) {
    Value method;
    if (find_method(obj, key.str(), &method)) return method;
  }
  if (key.is_string() && obj.is_namespace()) {
    const Value* v = obj.namespace_data().attrs.find(key.str());
    if (v) return *v;
  }
  return Value::undefined(key.is_string() ? key.str() : py_repr(key));
}

Value Interpreter::slice(const Value& obj, const Value& start_v, const Value& stop_v, const Value& step_v) {
  if (obj.is_undefined()) throw_undefined(obj);
  auto index_of = [](const Value& v, const char* what) -> std::optional<int64_t> {
    if (v.is_none() || v.is_undefined()) return std::nullopt;
    if (v.is_int() || v.is_bool()) return v.to_int();
    throw_type_error(str_cat("slice indices must be integers or None (", what, " is ", type_name(v), ")"));
  };
  auto start = index_of(start_v, "start");
  auto stop = index_of(stop_v, "stop");
  auto step_o = index_of(step_v, "step");
  int64_t step = step_o.value_or(1);
  if (step == 0) throw_value_error("slice step cannot be zero");
  if (!obj.is_plain_list() && !obj.is_string()) return Value::undefined();
  bool is_str = obj.is_string();
  std::vector<size_t> offs;
  int64_t n;
  if (is_str) {
    offs = utf8_offsets(obj.str());
    n = static_cast<int64_t>(offs.size() - 1);
  } else {
    n = static_cast<int64_t>(obj.items().size());
  }
  auto clamp = [&](std::optional<int64_t> v, int64_t def_lo_or_hi, bool is_start) -> int64_t {
    if (!v) return def_lo_or_hi;
    int64_t x = *v;
    if (x < 0) {
      x += n;
      if (x < 0) x = step < 0 ? -1 : 0;
    } else if (x >= n) {
      x = step < 0 ? n - 1 : n;
    }
    (void)is_start;
    return x;
  };
  int64_t lo = clamp(start, step < 0 ? n - 1 : 0, true);
  int64_t hi = clamp(stop, step < 0 ? -1 : n, false);
  std::vector<int64_t> idx;
  if (step > 0) {
    for (int64_t i = lo; i < hi; i += step) idx.push_back(i);
  } else {
    for (int64_t i = lo; i > hi; i += step) idx.push_back(i);
  }
  if (is_str) {
    const std::string& s = obj.str();
    if (step == 1) {
      if (idx.empty()) return Value(std::string());
      return Value(s.substr(offs[static_cast<size_t>(idx.front())], offs[static_cast<size_t>(idx.back()) + 1] - offs[static_cast<size_t>(idx.front())]));
    }
    std::string out;
    for (int64_t i : idx) out.append(s, offs[static_cast<size_t>(i)], offs[static_cast<size_t>(i) + 1] - offs[static_cast<size_t>(i)]);
    return Value(std::move(out));
  }
  std::vector<Value> out;
  out.reserve(idx.size());
  for (int64_t i : idx) out.push_back(obj.items()[static_cast<size_t>(i)]);
  return make_list(std::move(out), obj.is_tuple());
}

Value Interpreter::eval(const Expr& e) {
  tick();
  try {
    switch (e.kind) {
      case ExprKind::kConst: return e.constant;
      case ExprKind::kName: {
        const Value* v = scope_->lookup(e.name);
        return v ? *v : Value::undefined(e.name);
      }
      case ExprKind::kList:
      case ExprKind::kTuple: {
        std::vector<Value> items;
        items.reserve(e.children.size());
        for (const auto& c : e.children) items.push_back(eval(*c));
        return make_list(std::move(items), e.kind == ExprKind::kTuple);
      }
      case ExprKind::kDict: {
        DictData d;
        for (size_t i = 0; i + 1 < e.children.size(); i += 2) {
          Value k = eval(*e.children[i]);
          if (k.is_list() && !k.is_tuple()) throw_type_error("unhashable type: '" + type_name(k) + "'");
          if (k.is_dict()) throw_type_error("unhashable type: 'dict'");
          d.set(std::move(k), eval(*e.children[i + 1]));
        }
        return make_dict(std::move(d));
      }
      case ExprKind::kGetAttr: return getattr(eval(*e.children[0]), e.name);
      case ExprKind::kGetItem: return getitem(eval(*e.children[0]), eval(*e.children[1]));
      case ExprKind::kSlice: {
        Value obj = eval(*e.children[0]);
        auto opt = [&](size_t i) { return e.children[i] ? eval(*e.children[i]) : Value(nullptr); };
        Value a = opt(1), b = opt(2), c = opt(3);
        return slice(obj, a, b, c);
      }
      case ExprKind::kCall: {
        Value fn = eval(*e.children[0]);
        CallArgs args = eval_args(e.call);
        return call(fn, args);
      }
      case ExprKind::kFilter: return apply_filter(e, nullptr);
      case ExprKind::kTest: {
        Value v = eval(*e.children[0]);
        CallArgs args = eval_args(e.call);
        if (!e.test) throw RenderError(RenderError::Kind::kUnsupported, "No test named '" + e.name + "' found.");
        return Value(e.test(*this, v, args));
      }
      case ExprKind::kNeg:
      case ExprKind::kPos: {
        Value v = eval(*e.children[0]);
        if (v.is_undefined()) throw_undefined(v);
        bool neg = e.kind == ExprKind::kNeg;
        if (v.is_float()) return Value(neg ? -v.as_float() : v.as_float());
        if (v.is_int() || v.is_bool()) {
          int64_t i = v.to_int();
          if (!neg) return Value(i);
          check_overflow(i == std::numeric_limits<int64_t>::min());
          return Value(-i);
        }
        throw_type_error(str_cat("bad operand type for unary ", neg ? "-" : "+", ": '", type_name(v), "'"));
      }
      case ExprKind::kNot: return Value(!truthy(eval(*e.children[0])));
      case ExprKind::kBinary: return eval_binary(e);
      case ExprKind::kCompare: return eval_compare(e);
      case ExprKind::kAnd: {
        Value l = eval(*e.children[0]);
        return truthy(l) ? eval(*e.children[1]) : l;
      }
      case ExprKind::kOr: {
        Value l = eval(*e.children[0]);
        return truthy(l) ? l : eval(*e.children[1]);
      }
      case ExprKind::kCond: {
        if (truthy(eval(*e.children[0]))) return eval(*e.children[1]);
        return e.children[2] ? eval(*e.children[2]) : Value::undefined();
      }
      case ExprKind::kConcat: {
        std::string out;
        for (const auto& c : e.children) {
          Value v = eval(*c);
          append(&out, v.is_string() ? v.str() : py_str(v));
        }
        return Value(std::move(out));
      }
      case ExprKind::kNsRef: throw RenderError(RenderError::Kind::kSyntax, "namespace reference outside an assignment");
    }
  } catch (RenderError& err) {
    err.set_line(e.line);
    throw;
  }
  return Value::undefined();
}

Value Interpreter::eval_binary(const Expr& e) {
  Value l = eval(*e.children[0]);
  Value r = eval(*e.children[1]);
  const std::string& op = e.name;
  if (l.is_undefined()) throw_undefined(l);
  if (r.is_undefined()) throw_undefined(r);
  auto unsupported = [&]() -> Value {
    throw_type_error(str_cat("unsupported operand type(s) for ", op, ": '", type_name(l), "' and '", type_name(r), "'"));
  };
  if (l.is_number() && r.is_number()) {
    bool fl = l.is_float() || r.is_float();
    if (op == "/") {
      double d = r.to_double();
      if (d == 0) throw_value_error("division by zero");
      return Value(l.to_double() / d);
    }
    if (op == "**") {
      if (!fl && r.to_int() >= 0) {
        int64_t base = l.to_int(), exp = r.to_int(), result = 1;
        while (exp > 0) {
          if (exp & 1) check_overflow(__builtin_mul_overflow(result, base, &result));
          exp >>= 1;
          if (exp) check_overflow(__builtin_mul_overflow(base, base, &base));
        }
        return Value(result);
      }
      if (l.to_double() == 0 && r.to_double() < 0) throw_value_error("0.0 cannot be raised to a negative power");
      return Value(std::pow(l.to_double(), r.to_double()));
    }
    if (fl) {
      double a = l.to_double(), b = r.to_double();
      if (op == "+") return Value(a + b);
      if (op == "-") return Value(a - b);
      if (op == "*") return Value(a * b);
      if (op == "//") {
        if (b == 0) throw_value_error("float floor division by zero");
        return Value(std::floor(a / b));
      }
      if (op == "%") return Value(py_fmod(a, b));
    } else {
      int64_t a = l.to_int(), b = r.to_int(), out = 0;
      if (op == "+") {
        check_overflow(__builtin_add_overflow(a, b, &out));
        return Value(out);
      }
      if (op == "-") {
        check_overflow(__builtin_sub_overflow(a, b, &out));
        return Value(out);
      }
      if (op == "*") {
        check_overflow(__builtin_mul_overflow(a, b, &out));
        return Value(out);
      }
      if (op == "//") return Value(floor_div(a, b));
      if (op == "%") return Value(py_mod(a, b));
    }
    return unsupported();
  }
  if (op == "+") {
    if (l.is_string() && r.is_string()) {
      check_size(l.str().size() + r.str().size());
      if (l.is_markup() != r.is_markup()) {
        // markupsafe: the plain side is HTML-escaped and the result stays Markup.
        return l.is_markup() ? Value::markup(l.str() + html_escape(r.str())) : Value::markup(html_escape(l.str()) + r.str());
      }
      return l.is_markup() ? Value::markup(l.str() + r.str()) : Value(l.str() + r.str());
    }
    if (l.is_plain_list() && r.is_plain_list() && l.is_tuple() == r.is_tuple()) {
      std::vector<Value> items = l.items();
      items.insert(items.end(), r.items().begin(), r.items().end());
      return make_list(std::move(items), l.is_tuple());
    }
    if (l.is_list() && r.is_list())
      throw_type_error(str_cat("can only concatenate ", type_name(l), " (not \"", type_name(r), "\") to ", type_name(l)));
    return unsupported();
  }
  if (op == "*") {
    const Value* seq = (l.is_string() || l.is_plain_list()) ? &l : (r.is_string() || r.is_plain_list()) ? &r : nullptr;
    const Value* count = seq == &l ? &r : &l;
    if (seq && (count->is_int() || count->is_bool())) {
      int64_t times = std::max<int64_t>(0, count->to_int());
      if (seq->is_string()) {
        check_size(static_cast<size_t>(times) * seq->str().size() > limits_.max_output_bytes
                       ? limits_.max_output_bytes + 1
                       : static_cast<size_t>(times) * seq->str().size());
        std::string out;
        for (int64_t i = 0; i < times; ++i) out += seq->str();
        return Value(std::move(out));
      }
      size_t total = static_cast<size_t>(times) * seq->items().size();
      if (times > 0 && total / static_cast<size_t>(times) != seq->items().size()) limit_error("list too large");
      check_size(total * 16);
      std::vector<Value> items;
      items.reserve(total);
      for (int64_t i = 0; i < times; ++i) items.insert(items.end(), seq->items().begin(), seq->items().end());
      return make_list(std::move(items), seq->is_tuple());
    }
    return unsupported();
  }
  if (op == "%" && l.is_string()) {
    std::string out = percent_format(l.str(), r);
    check_size(out.size());
    return Value(std::move(out));
  }
  return unsupported();
}

namespace {

bool contains(const Value& container, const Value& item) {
  switch (container.kind()) {
    case Value::Kind::kUndefined: return false;
    case Value::Kind::kString:
      if (!item.is_string())
        throw_type_error("'in <string>' requires string as left operand, not " + type_name(item));
      return container.str().find(item.str()) != std::string::npos;
    case Value::Kind::kList:
      for (const auto& v : container.items())
        if (py_equal(v, item)) return true;
      return false;
    case Value::Kind::kDict: return container.dict_data().find(item) != nullptr;
    default: throw_type_error("argument of type '" + type_name(container) + "' is not iterable");
  }
}

}  // namespace

Value Interpreter::eval_compare(const Expr& e) {
  Value left = eval(*e.children[0]);
  for (size_t i = 0; i < e.ops.size(); ++i) {
    Value right = eval(*e.children[i + 1]);
    const std::string& op = e.ops[i];
    bool ok;
    if (op == "==") ok = py_equal(left, right);
    else if (op == "!=") ok = !py_equal(left, right);
    else if (op == "<") ok = py_less(left, right);
    else if (op == ">") ok = py_less(right, left);
    else if (op == "<=") ok = py_less(left, right) || py_equal(left, right);
    else if (op == ">=") ok = py_less(right, left) || py_equal(left, right);
    else if (op == "in") ok = contains(right, left);
    else ok = !contains(right, left);
    if (!ok) return Value(false);
    left = std::move(right);
  }
  return Value(true);
}

}  // namespace kiln::text::jinja
