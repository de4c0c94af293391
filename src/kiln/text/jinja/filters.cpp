// jinja2's builtin filters as transformers' environment has them (tojson replaced by
// transformers' json.dumps version). Filters that return generators in Python return lists here;
// a template can only iterate, join or |list them, which gives the same text.
#include <algorithm>
#include <cmath>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>

#include "kiln/core/str.h"
#include "kiln/text/jinja/builtins.h"
#include "kiln/text/jinja/interpreter.h"
#include "kiln/text/jinja/py_format.h"
#include "kiln/text/jinja/unicode.h"

namespace kiln::text::jinja {
namespace {

using In = Interpreter;

// Attribute lookup for attribute= arguments: "a.b" and "items.0" walk dicts and lists.
Value get_attribute(In& in, const Value& item, const Value& attribute) {
  if (!attribute.is_string()) return in.getitem(item, attribute);
  Value cur = item;
  for (const auto& part : split(attribute.str(), '.')) {
    bool numeric = !part.empty() && std::all_of(part.begin(), part.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
    cur = numeric ? in.getitem(cur, Value(static_cast<int64_t>(std::strtoll(part.c_str(), nullptr, 10)))) : in.getitem(cur, Value(part));
  }
  return cur;
}

// Sort/compare key: lower-cased strings unless case_sensitive.
Value ignore_case(const Value& v, bool case_sensitive) {
  if (!case_sensitive && v.is_string()) return Value(py_str_lower(v.str()));
  return v;
}

Value f_abs(In&, const Value& v, CallArgs&) {
  if (v.is_float()) return Value(std::fabs(v.as_float()));
  if (v.is_int() || v.is_bool()) {
    int64_t i = v.to_int();
    if (i == INT64_MIN) throw RenderError(RenderError::Kind::kLimit, "integer overflow");
    return Value(i < 0 ? -i : i);
  }
  throw_type_error("bad operand type for abs(): '" + type_name(v) + "'");
}

Value f_attr(In& in, const Value& v, CallArgs& a) {
  const Value* name = arg(a, 0, "name");
  if (!name || !name->is_string()) throw_type_error("attr filter needs an attribute name");
  // Python attributes only: unlike `.name`, |attr never falls back to dict items.
  if (v.is_undefined()) throw_undefined(v);
  if (v.is_namespace()) return in.getattr(v, name->str());
  Value method;
  if (find_method(v, name->str(), &method)) return method;
  return Value::undefined(name->str());
}

Value f_batch(In& in, const Value& v, CallArgs& a) {
  int64_t n = arg_or(a, 0, "linecount", Value(1)).to_int();
  if (n <= 0) throw_value_error("batch size must be positive");
  Value fill = arg_or(a, 1, "fill_with", Value(nullptr));
  bool has_fill = !fill.is_none();
  std::vector<Value> out, cur;
  for (auto& item : in.iterate(v)) {
    if (static_cast<int64_t>(cur.size()) == n) {
      out.push_back(in.make_list(std::move(cur)));
      cur.clear();
    }
    cur.push_back(std::move(item));
  }
  if (!cur.empty()) {
    if (has_fill)
      while (static_cast<int64_t>(cur.size()) < n) cur.push_back(fill);
    out.push_back(in.make_list(std::move(cur)));
  }
  return Value::sequence(std::move(out), SeqKind::kGenerator);
}

Value f_capitalize(In&, const Value& v, CallArgs&) { return Value(py_capitalize(soft_str(v))); }

Value f_center(In& in, const Value& v, CallArgs& a) {
  Value width = arg_or(a, 0, "width", Value(80));
  CallArgs ca;
  ca.positional.push_back(width);
  Value m;
  find_method(Value(soft_str(v)), "center", &m);
  return in.call(m, ca);
}

Value f_default(In&, const Value& v, CallArgs& a) {
  Value def = arg_or(a, 0, "default_value", Value(""));
  bool boolean = truthy(arg_or(a, 1, "boolean", Value(false)));
  if (v.is_undefined() || (boolean && !truthy(v))) return def;
  return v;
}

Value f_dictsort(In& in, const Value& v, CallArgs& a) {
  if (v.is_undefined()) throw_undefined(v);
  if (!v.is_dict()) throw_type_error("dictsort needs a mapping");
  bool cs = truthy(arg_or(a, 0, "case_sensitive", Value(false)));
  Value by = arg_or(a, 1, "by", Value("key"));
  bool reverse = truthy(arg_or(a, 2, "reverse", Value(false)));
  int pos;
  if (by.is_string() && by.str() == "key") pos = 0;
  else if (by.is_string() && by.str() == "value") pos = 1;
  else throw RenderError(RenderError::Kind::kValue, "FilterArgumentError: You can only sort by either \"key\" or \"value\"");
  std::vector<std::pair<Value, Value>> items = v.dict_data().items;
  std::stable_sort(items.begin(), items.end(), [&](const auto& x, const auto& y) {
    const Value& kx = pos == 0 ? x.first : x.second;
    const Value& ky = pos == 0 ? y.first : y.second;
    return reverse ? py_less(ignore_case(ky, cs), ignore_case(kx, cs)) : py_less(ignore_case(kx, cs), ignore_case(ky, cs));
  });
  std::vector<Value> out;
  for (auto& [k, val] : items) out.push_back(in.make_list({k, val}, true));
  return in.make_list(std::move(out));
}

}  // namespace

std::string html_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out.push_back(c);
    }
  }
  return out;
}

namespace {

Value f_escape(In&, const Value& v, CallArgs&) {
  if (v.is_markup()) return v;
  return Value::markup(html_escape(soft_str(v)));
}

Value f_forceescape(In&, const Value& v, CallArgs&) { return Value::markup(html_escape(soft_str(v))); }

Value f_first(In& in, const Value& v, CallArgs&) {
  auto items = in.iterate(v);
  return items.empty() ? Value::undefined("first") : items.front();
}

Value f_last(In& in, const Value& v, CallArgs&) {
  if (v.is_list() && (v.seq_kind() == SeqKind::kGenerator || v.seq_kind() == SeqKind::kReverseIterator))
    throw_type_error("'" + type_name(v) + "' object is not reversible");
  auto items = in.iterate(v);
  return items.empty() ? Value::undefined("last") : items.back();
}

// Python's float(str): optional whitespace, sign, digits with single underscores, inf/nan.
bool parse_py_float(std::string_view s, double* out) {
  std::string t(trim(s));
  std::string clean;
  for (size_t i = 0; i < t.size(); ++i) {
    if (t[i] == '_') {
      if (i == 0 || i + 1 >= t.size() || !std::isdigit(static_cast<unsigned char>(t[i - 1])) || !std::isdigit(static_cast<unsigned char>(t[i + 1])))
        return false;
      continue;
    }
    clean.push_back(t[i]);
  }
  if (clean.empty()) return false;
  std::string low = py_str_lower(clean);
  std::string body = (low[0] == '+' || low[0] == '-') ? low.substr(1) : low;
  if (body == "inf" || body == "infinity" || body == "nan") {
    double d = body == "nan" ? NAN : INFINITY;
    *out = low[0] == '-' ? -d : d;
    return true;
  }
  if (body.find_first_not_of("0123456789.e+-") != std::string::npos || body.find("0x") != std::string::npos) return false;
  char* end = nullptr;
  *out = std::strtod(clean.c_str(), &end);
  return end && *end == '\0';
}

// Python's int(str, base) for base 10 (and the 0x/0o/0b forms for base 0).
bool parse_py_int(std::string_view s, int base, int64_t* out) {
  std::string t(trim(s));
  bool neg = false;
  if (!t.empty() && (t[0] == '+' || t[0] == '-')) {
    neg = t[0] == '-';
    t = t.substr(1);
  }
  if (base == 0 || base == 16 || base == 8 || base == 2) {
    if (t.size() > 2 && t[0] == '0' && std::strchr("xXoObB", t[1])) {
      int b = (t[1] == 'x' || t[1] == 'X') ? 16 : (t[1] == 'o' || t[1] == 'O') ? 8 : 2;
      if (base != 0 && base != b) return false;
      base = b;
      t = t.substr(2);
      if (!t.empty() && t[0] == '_') t = t.substr(1);
    } else if (base == 0) {
      base = 10;
    }
  }
  if (t.empty() || t.front() == '_' || t.back() == '_' || t.find("__") != std::string::npos) return false;
  std::string clean;
  for (char c : t)
    if (c != '_') clean.push_back(c);
  char* end = nullptr;
  errno = 0;
  long long v = std::strtoll(clean.c_str(), &end, base);
  if (!end || *end != '\0' || errno == ERANGE || clean.find_first_of("+- ") != std::string::npos) return false;
  *out = neg ? -v : v;
  return true;
}

Value f_float(In&, const Value& v, CallArgs& a) {
  Value def = arg_or(a, 0, "default", Value(0.0));
  if (v.is_undefined()) throw_undefined(v);
  if (v.is_number()) return Value(v.to_double());
  if (v.is_string()) {
    double d;
    if (parse_py_float(v.str(), &d)) return Value(d);
  }
  return def;
}

Value f_int(In&, const Value& v, CallArgs& a) {
  Value def = arg_or(a, 0, "default", Value(0));
  int base = static_cast<int>(arg_or(a, 1, "base", Value(10)).to_int());
  if (v.is_undefined()) throw_undefined(v);
  if (v.is_int() || v.is_bool()) return Value(v.to_int());
  if (v.is_float()) {
    double d = v.as_float();
    if (std::isnan(d) || std::isinf(d) || std::fabs(d) > 9.2e18) throw_value_error("cannot convert float to integer");
    return Value(static_cast<int64_t>(std::trunc(d)));
  }
  if (v.is_string()) {
    int64_t i;
    if (parse_py_int(v.str(), base, &i)) return Value(i);
    double d;
    if (parse_py_float(v.str(), &d) && !std::isnan(d) && !std::isinf(d) && std::fabs(d) < 9.2e18)
      return Value(static_cast<int64_t>(std::trunc(d)));
  }
  return def;
}

Value f_indent(In&, const Value& v, CallArgs& a) {
  if (v.is_undefined()) throw_undefined(v);
  Value width = arg_or(a, 0, "width", Value(4));
  bool first = truthy(arg_or(a, 1, "first", Value(false)));
  bool blank = truthy(arg_or(a, 2, "blank", Value(false)));
  std::string ind = width.is_string() ? width.str() : std::string(static_cast<size_t>(std::clamp<int64_t>(width.to_int(), 0, 10000)), ' ');
  std::string s = soft_str(v) + "\n";
  auto lines = py_splitlines(s, false);
  std::string rv;
  if (blank) {
    for (size_t i = 0; i < lines.size(); ++i) rv += (i ? "\n" + ind : "") + lines[i];
  } else {
    rv = lines.empty() ? "" : lines[0];
    for (size_t i = 1; i < lines.size(); ++i) rv += "\n" + (lines[i].empty() ? lines[i] : ind + lines[i]);
  }
  if (first) rv = ind + rv;
  return Value(std::move(rv));
}

Value f_items(In& in, const Value& v, CallArgs&) {
  if (v.is_undefined()) return Value::sequence({}, SeqKind::kGenerator);
  if (!v.is_dict()) throw_type_error("Can only get item pairs from a mapping.");
  std::vector<Value> out;
  for (const auto& [k, val] : v.dict_data().items) out.push_back(in.make_list({k, val}, true));
  return Value::sequence(std::move(out), SeqKind::kGenerator);
}

Value f_join(In& in, const Value& v, CallArgs& a) {
  std::string sep = soft_str(arg_or(a, 0, "d", Value("")));
  Value attribute = arg_or(a, 1, "attribute", Value(nullptr));
  std::string out;
  bool first = true;
  for (auto& item : in.iterate(v)) {
    if (!first) out += sep;
    first = false;
    out += soft_str(attribute.is_none() ? item : get_attribute(in, item, attribute));
    in.check_size(out.size());
  }
  return Value(std::move(out));
}

Value f_length(In&, const Value& v, CallArgs&) { return Value(py_len(v)); }
Value f_list(In& in, const Value& v, CallArgs&) { return in.make_list(in.iterate(v)); }
// Markup in, Markup out: str methods on Markup return Markup.
Value same_kind(const Value& in, std::string s) { return in.is_markup() ? Value::markup(std::move(s)) : Value(std::move(s)); }
Value f_lower(In&, const Value& v, CallArgs&) { return same_kind(v, py_str_lower(soft_str(v))); }
Value f_upper(In&, const Value& v, CallArgs&) { return same_kind(v, py_str_upper(soft_str(v))); }
Value f_safe(In&, const Value& v, CallArgs&) { return v.is_markup() ? v : Value::markup(soft_str(v)); }
Value f_string(In&, const Value& v, CallArgs&) { return v.is_string() ? v : Value(soft_str(v)); }

Value f_map(In& in, const Value& v, CallArgs& a) {
  std::vector<Value> out;
  if (!truthy(v)) return Value::sequence({}, SeqKind::kGenerator);  // jinja2: `if value:`
  const Value* attribute = nullptr;
  Value def;
  bool has_default = false;
  for (auto& [k, val] : a.keyword) {
    if (k == "attribute") attribute = &val;
    else if (k == "default") {
      def = val;
      has_default = true;
    }
  }
  if (attribute) {
    for (auto& item : in.iterate(v)) {
      Value r = get_attribute(in, item, *attribute);
      out.push_back(r.is_undefined() && has_default ? def : r);
    }
    return Value::sequence(std::move(out), SeqKind::kGenerator);
  }
  if (a.positional.empty()) throw_type_error("map requires a filter argument");
  if (!a.positional[0].is_string()) throw_type_error("map filter name must be a string");
  std::string name = a.positional[0].str();
  CallArgs rest;
  rest.positional.assign(a.positional.begin() + 1, a.positional.end());
  rest.keyword = a.keyword;
  for (auto& item : in.iterate(v)) {
    CallArgs call = rest;
    out.push_back(in.run_filter(name, item, call));
  }
  return Value::sequence(std::move(out), SeqKind::kGenerator);
}

Value min_max(In& in, const Value& v, CallArgs& a, bool want_max) {
  bool cs = truthy(arg_or(a, 0, "case_sensitive", Value(false)));
  Value attribute = arg_or(a, 1, "attribute", Value(nullptr));
  auto items = in.iterate(v);
  if (items.empty()) return Value::undefined(want_max ? "max" : "min");
  auto key = [&](const Value& x) { return ignore_case(attribute.is_none() ? x : get_attribute(in, x, attribute), cs); };
  size_t best = 0;
  for (size_t i = 1; i < items.size(); ++i) {
    bool better = want_max ? py_less(key(items[best]), key(items[i])) : py_less(key(items[i]), key(items[best]));
    if (better) best = i;
  }
  return items[best];
}
Value f_max(In& in, const Value& v, CallArgs& a) { return min_max(in, v, a, true); }
Value f_min(In& in, const Value& v, CallArgs& a) { return min_max(in, v, a, false); }

Value select_or_reject(In& in, const Value& v, CallArgs& a, bool select, bool by_attr) {
  std::vector<Value> out;
  if (!truthy(v)) return Value::sequence({}, SeqKind::kGenerator);  // jinja2: `if value:`
  size_t next = 0;
  Value attribute;
  if (by_attr) {
    if (a.positional.empty()) throw_type_error("Missing parameter for attribute name");
    attribute = a.positional[next++];
  }
  std::string test_name;
  CallArgs test_args;
  bool has_test = next < a.positional.size();
  if (has_test) {
    if (!a.positional[next].is_string()) throw_type_error("test name must be a string");
    test_name = a.positional[next++].str();
    test_args.positional.assign(a.positional.begin() + static_cast<long>(next), a.positional.end());
    test_args.keyword = a.keyword;
  }
  for (auto& item : in.iterate(v)) {
    Value x = by_attr ? get_attribute(in, item, attribute) : item;
    bool ok;
    if (has_test) {
      CallArgs call = test_args;
      ok = in.run_test(test_name, x, call);
    } else {
      ok = truthy(x);
    }
    if (ok == select) out.push_back(std::move(item));
  }
  return Value::sequence(std::move(out), SeqKind::kGenerator);
}
Value f_select(In& in, const Value& v, CallArgs& a) { return select_or_reject(in, v, a, true, false); }
Value f_reject(In& in, const Value& v, CallArgs& a) { return select_or_reject(in, v, a, false, false); }
Value f_selectattr(In& in, const Value& v, CallArgs& a) { return select_or_reject(in, v, a, true, true); }
Value f_rejectattr(In& in, const Value& v, CallArgs& a) { return select_or_reject(in, v, a, false, true); }

Value f_replace(In& in, const Value& v, CallArgs& a) {
  if (v.is_undefined()) return Value("");
  std::string old = soft_str(arg_or(a, 0, "old", Value(""))), repl = soft_str(arg_or(a, 1, "new", Value("")));
  Value count = arg_or(a, 2, "count", Value(nullptr));
  std::string out = py_replace(soft_str(v), old, repl, count.is_none() ? -1 : count.to_int());
  in.check_size(out.size());
  return Value(std::move(out));
}

Value f_reverse(In& in, const Value& v, CallArgs&) {
  if (v.is_string()) {
    auto cps = utf8_decode(v.str());
    std::reverse(cps.begin(), cps.end());
    return Value(utf8_encode(cps));
  }
  auto items = in.iterate(v);
  std::reverse(items.begin(), items.end());
  if (v.is_plain_list()) return Value::sequence(std::move(items), SeqKind::kReverseIterator);
  return in.make_list(std::move(items));
}

// Python's round(x, n) for floats: correctly rounded decimal, ties to even on exact halves.
double py_round(double x, int64_t n) {
  if (std::isnan(x) || std::isinf(x)) return x;
  if (n > 300) return x;
  if (n == 0) return std::nearbyint(x);
  if (n < 0) {
    double p = std::pow(10.0, static_cast<double>(-n));
    return std::nearbyint(x / p) * p;
  }
  char buf[512];
  std::snprintf(buf, sizeof buf, "%.*f", static_cast<int>(n), x);
  return std::strtod(buf, nullptr);
}

Value f_round(In&, const Value& v, CallArgs& a) {
  int64_t precision = arg_or(a, 0, "precision", Value(0)).to_int();
  Value method = arg_or(a, 1, "method", Value("common"));
  if (v.is_undefined()) throw_type_error("type Undefined doesn't define __round__ method");
  if (!v.is_number()) throw_type_error("type " + type_name(v) + " doesn't define __round__ method");
  std::string m = method.is_string() ? method.str() : "";
  if (m != "common" && m != "ceil" && m != "floor")
    throw RenderError(RenderError::Kind::kValue, "FilterArgumentError: method must be common, ceil or floor");
  if (m == "common") {
    if (v.is_int() || v.is_bool()) return Value(v.to_int());
    return Value(py_round(v.as_float(), precision));
  }
  double p = std::pow(10.0, static_cast<double>(precision));
  double x = v.to_double() * p;
  return Value((m == "ceil" ? std::ceil(x) : std::floor(x)) / p);
}

Value f_sort(In& in, const Value& v, CallArgs& a) {
  bool reverse = truthy(arg_or(a, 0, "reverse", Value(false)));
  bool cs = truthy(arg_or(a, 1, "case_sensitive", Value(false)));
  Value attribute = arg_or(a, 2, "attribute", Value(nullptr));
  auto items = in.iterate(v);
  std::vector<Value> keys;
  for (const auto& x : items) keys.push_back(ignore_case(attribute.is_none() ? x : get_attribute(in, x, attribute), cs));
  std::vector<size_t> order(items.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t x, size_t y) {
    return reverse ? py_less(keys[y], keys[x]) : py_less(keys[x], keys[y]);
  });
  std::vector<Value> out;
  for (size_t i : order) out.push_back(items[i]);
  return in.make_list(std::move(out));
}

Value f_sum(In& in, const Value& v, CallArgs& a) {
  Value attribute = arg_or(a, 0, "attribute", Value(nullptr));
  Value total = arg_or(a, 1, "start", Value(0));
  for (auto& item : in.iterate(v)) {
    Value x = attribute.is_none() ? item : get_attribute(in, item, attribute);
    if (!x.is_number() || !total.is_number())
      throw_type_error("unsupported operand type(s) for +: '" + type_name(total) + "' and '" + type_name(x) + "'");
    if (x.is_float() || total.is_float()) total = Value(total.to_double() + x.to_double());
    else {
      int64_t r;
      if (__builtin_add_overflow(total.to_int(), x.to_int(), &r)) throw RenderError(RenderError::Kind::kLimit, "integer overflow");
      total = Value(r);
    }
  }
  return total;
}

Value f_title(In&, const Value& v, CallArgs&) {
  // jinja2's title: split before runs of [-\s({[<], then upper the first character of each piece
  // and lower the rest.
  std::string s = soft_str(v), out;
  auto cps = utf8_decode(s);
  auto is_sep = [](char32_t c) { return py_isspace(c) || c == '-' || c == '(' || c == '{' || c == '[' || c == '<'; };
  size_t i = 0;
  while (i < cps.size()) {
    size_t j = i;
    bool sep = is_sep(cps[i]);
    while (j < cps.size() && is_sep(cps[j]) == sep) ++j;
    for (size_t k = i; k < j; ++k) utf8_append(&out, k == i ? py_upper(cps[k]) : py_lower(cps[k]));
    i = j;
  }
  return Value(std::move(out));
}

Value f_tojson(In& in, const Value& v, CallArgs& a) {
  JsonOptions o;
  o.ensure_ascii = truthy(arg_or(a, 0, "ensure_ascii", Value(false)));
  Value indent = arg_or(a, 1, "indent", Value(nullptr));
  Value separators = arg_or(a, 2, "separators", Value(nullptr));
  o.sort_keys = truthy(arg_or(a, 3, "sort_keys", Value(false)));
  if (indent.is_string()) o.indent = indent.str();
  else if (indent.is_int() || indent.is_bool()) o.indent = std::string(static_cast<size_t>(std::clamp<int64_t>(indent.to_int(), 0, 1000)), ' ');
  else if (!indent.is_none()) throw_type_error("indent must be an int or a string");
  if (o.indent) o.item_separator = ",";
  if (!separators.is_none()) {
    if (!separators.is_list() || separators.items().size() != 2 || !separators.items()[0].is_string() ||
        !separators.items()[1].is_string())
      throw_value_error("separators must be a pair of strings");
    o.item_separator = separators.items()[0].str();
    o.key_separator = separators.items()[1].str();
  }
  std::string out = json_dumps(v, o);
  in.check_size(out.size());
  return Value(std::move(out));
}

Value f_trim(In&, const Value& v, CallArgs& a) {
  return same_kind(v, py_strip(soft_str(v), arg_or(a, 0, "chars", Value(nullptr)), true, true));
}

Value f_truncate(In&, const Value& v, CallArgs& a) {
  std::string s = soft_str(v);
  int64_t length = arg_or(a, 0, "length", Value(255)).to_int();
  bool killwords = truthy(arg_or(a, 1, "killwords", Value(false)));
  std::string end = soft_str(arg_or(a, 2, "end", Value("...")));
  Value leeway_v = arg_or(a, 3, "leeway", Value(nullptr));
  int64_t leeway = leeway_v.is_none() ? 5 : leeway_v.to_int();
  auto end_len = static_cast<int64_t>(utf8_length(end));
  if (length < end_len) throw_value_error(str_cat("expected length >= ", end_len, ", got ", length));
  if (leeway < 0) throw_value_error(str_cat("expected leeway >= 0, got ", leeway));
  auto offs = utf8_offsets(s);
  auto n = static_cast<int64_t>(offs.size() - 1);
  if (n <= length + leeway) return Value(s);
  std::string head = s.substr(0, offs[static_cast<size_t>(length - end_len)]);
  if (killwords) return Value(head + end);
  size_t sp = head.rfind(' ');
  if (sp != std::string::npos) head = head.substr(0, sp);
  return Value(head + end);
}

Value f_unique(In& in, const Value& v, CallArgs& a) {
  bool cs = truthy(arg_or(a, 0, "case_sensitive", Value(false)));
  Value attribute = arg_or(a, 1, "attribute", Value(nullptr));
  std::vector<Value> seen, out;
  for (auto& item : in.iterate(v)) {
    Value key = ignore_case(attribute.is_none() ? item : get_attribute(in, item, attribute), cs);
    if (std::any_of(seen.begin(), seen.end(), [&](const Value& s) { return py_equal(s, key); })) continue;
    seen.push_back(key);
    out.push_back(item);
  }
  return Value::sequence(std::move(out), SeqKind::kGenerator);
}

Value f_wordcount(In&, const Value& v, CallArgs&) {
  std::string s = soft_str(v);
  int64_t n = 0;
  bool in_word = false;
  for (size_t i = 0; i < s.size();) {
    char32_t c = utf8_next(s, &i);
    bool w = c == '_' || py_isalnum(c);
    if (w && !in_word) ++n;
    in_word = w;
  }
  return Value(n);
}

Value f_format(In&, const Value& v, CallArgs& a) {
  if (!a.positional.empty() && !a.keyword.empty())
    throw RenderError(RenderError::Kind::kValue, "FilterArgumentError: can't handle positional and keyword arguments at the same time");
  if (!a.keyword.empty()) {
    DictData d;
    for (auto& [k, val] : a.keyword) d.set(Value(k), val);
    return Value(percent_format(soft_str(v), Value::dict(std::move(d))));
  }
  return Value(percent_format(soft_str(v), Value::tuple(a.positional)));
}

const std::map<std::string_view, FilterFn>& filters() {
  static const std::map<std::string_view, FilterFn> kFilters = {
      {"abs", f_abs},         {"attr", f_attr},           {"batch", f_batch},       {"capitalize", f_capitalize},
      {"center", f_center},   {"count", f_length},        {"d", f_default},         {"default", f_default},
      {"dictsort", f_dictsort}, {"e", f_escape},          {"escape", f_escape},     {"first", f_first},
      {"float", f_float},     {"forceescape", f_forceescape},  {"format", f_format},     {"indent", f_indent},
      {"int", f_int},         {"items", f_items},         {"join", f_join},         {"last", f_last},
      {"length", f_length},   {"list", f_list},           {"lower", f_lower},       {"map", f_map},
      {"max", f_max},         {"min", f_min},             {"reject", f_reject},     {"rejectattr", f_rejectattr},
      {"replace", f_replace}, {"reverse", f_reverse},     {"round", f_round},       {"safe", f_safe},
      {"select", f_select},   {"selectattr", f_selectattr}, {"sort", f_sort},       {"string", f_string},
      {"sum", f_sum},         {"title", f_title},         {"tojson", f_tojson},     {"trim", f_trim},
      {"truncate", f_truncate}, {"unique", f_unique},     {"upper", f_upper},       {"wordcount", f_wordcount},
  };
  return kFilters;
}

}  // namespace

FilterFn find_filter(std::string_view name) {
  auto it = filters().find(name);
  return it == filters().end() ? nullptr : it->second;
}

}  // namespace kiln::text::jinja
