// Python methods of str, dict and list that templates call, with the immutable sandbox's rule:
// methods that would change a list or dict exist but are unsafe (undefined, an error to call).
#include <algorithm>

#include "kiln/core/str.h"
#include "kiln/text/jinja/builtins.h"
#include "kiln/text/jinja/interpreter.h"
#include "kiln/text/jinja/py_format.h"
#include "kiln/text/jinja/unicode.h"

namespace kiln::text::jinja {

const Value* arg(CallArgs& args, size_t index, std::string_view name) {
  if (index < args.positional.size()) return &args.positional[index];
  for (auto& [k, v] : args.keyword)
    if (k == name) return &v;
  return nullptr;
}

Value arg_or(CallArgs& args, size_t index, std::string_view name, Value fallback) {
  const Value* v = arg(args, index, name);
  return v ? *v : fallback;
}

std::string soft_str(const Value& v) { return v.is_string() ? v.str() : py_str(v); }

std::string py_strip(std::string_view s, const Value& chars, bool left, bool right) {
  std::vector<char32_t> set;
  bool whitespace = chars.is_none() || chars.is_undefined();
  if (!whitespace) {
    if (!chars.is_string()) throw_type_error("strip arg must be None or str");
    set = utf8_decode(chars.str());
  }
  auto strip_it = [&](char32_t c) {
    return whitespace ? py_isspace(c) : std::find(set.begin(), set.end(), c) != set.end();
  };
  auto offs = utf8_offsets(s);
  size_t n = offs.size() - 1, lo = 0, hi = n;
  auto cp = [&](size_t i) {
    size_t p = offs[i];
    return utf8_next(s, &p);
  };
  if (left)
    while (lo < hi && strip_it(cp(lo))) ++lo;
  if (right)
    while (hi > lo && strip_it(cp(hi - 1))) --hi;
  return std::string(s.substr(offs[lo], offs[hi] - offs[lo]));
}

std::vector<std::string> py_splitlines(std::string_view s, bool keepends) {
  std::vector<std::string> lines;
  size_t start = 0;
  for (size_t i = 0; i < s.size();) {
    size_t at = i;
    char32_t c = utf8_next(s, &i);
    bool br = c == '\n' || c == '\r' || c == 0x0B || c == 0x0C || c == 0x1C || c == 0x1D || c == 0x1E ||
              c == 0x85 || c == 0x2028 || c == 0x2029;
    if (!br) continue;
    if (c == '\r' && i < s.size() && s[i] == '\n') ++i;
    lines.emplace_back(s.substr(start, (keepends ? i : at) - start));
    start = i;
  }
  if (start < s.size()) lines.emplace_back(s.substr(start));
  return lines;
}

std::string py_replace(std::string_view s, std::string_view old, std::string_view repl, int64_t count) {
  std::string out;
  if (old.empty()) {
    // Python inserts `repl` before every code point and at the end.
    int64_t done = 0;
    size_t i = 0;
    while (i <= s.size()) {
      if (count >= 0 && done >= count) {
        out.append(s.substr(i));
        break;
      }
      out.append(repl);
      ++done;
      if (i == s.size()) break;
      size_t start = i;
      utf8_next(s, &i);
      out.append(s.substr(start, i - start));
    }
    return out;
  }
  size_t pos = 0;
  int64_t done = 0;
  while (count < 0 || done < count) {
    size_t f = s.find(old, pos);
    if (f == std::string_view::npos) break;
    out.append(s.substr(pos, f - pos));
    out.append(repl);
    pos = f + old.size();
    ++done;
  }
  out.append(s.substr(pos));
  return out;
}

std::string py_capitalize(std::string_view s) {
  std::string out;
  bool first = true;
  for (size_t i = 0; i < s.size();) {
    char32_t c = utf8_next(s, &i);
    utf8_append(&out, first ? py_upper(c) : py_lower(c));
    first = false;
  }
  return out;
}

namespace {

// Python's str.title(): a letter after a cased letter is lowered, any other letter raised.
std::string py_title(std::string_view s) {
  std::string out;
  bool prev_cased = false;
  for (size_t i = 0; i < s.size();) {
    char32_t c = utf8_next(s, &i);
    bool cased = py_is_upper(c) || py_is_lower(c);
    utf8_append(&out, cased ? (prev_cased ? py_lower(c) : py_upper(c)) : c);
    prev_cased = cased;
  }
  return out;
}

std::vector<Value> split_whitespace(std::string_view s, int64_t maxsplit, bool from_right) {
  auto cps = utf8_decode(s);
  std::vector<std::string> parts;
  if (!from_right) {
    size_t i = 0, n = cps.size();
    int64_t splits = 0;
    while (i < n) {
      while (i < n && py_isspace(cps[i])) ++i;
      if (i >= n) break;
      if (maxsplit >= 0 && splits >= maxsplit) {
        size_t end = n;
        while (end > i && py_isspace(cps[end - 1])) --end;
        parts.push_back(utf8_encode(std::vector<char32_t>(cps.begin() + static_cast<long>(i), cps.begin() + static_cast<long>(end))));
        break;
      }
      size_t j = i;
      while (j < n && !py_isspace(cps[j])) ++j;
      parts.push_back(utf8_encode(std::vector<char32_t>(cps.begin() + static_cast<long>(i), cps.begin() + static_cast<long>(j))));
      ++splits;
      i = j;
    }
  } else {
    long i = static_cast<long>(cps.size()) - 1;
    int64_t splits = 0;
    while (i >= 0) {
      while (i >= 0 && py_isspace(cps[static_cast<size_t>(i)])) --i;
      if (i < 0) break;
      if (maxsplit >= 0 && splits >= maxsplit) {
        long start = 0;
        while (start <= i && py_isspace(cps[static_cast<size_t>(start)])) ++start;
        parts.push_back(utf8_encode(std::vector<char32_t>(cps.begin() + start, cps.begin() + i + 1)));
        break;
      }
      long j = i;
      while (j >= 0 && !py_isspace(cps[static_cast<size_t>(j)])) --j;
      parts.push_back(utf8_encode(std::vector<char32_t>(cps.begin() + j + 1, cps.begin() + i + 1)));
      ++splits;
      i = j;
    }
    std::reverse(parts.begin(), parts.end());
  }
  std::vector<Value> out;
  for (auto& p : parts) out.emplace_back(std::move(p));
  return out;
}

std::vector<Value> split_sep(std::string_view s, std::string_view sep, int64_t maxsplit, bool from_right) {
  if (sep.empty()) throw_value_error("empty separator");
  std::vector<std::string> parts;
  if (!from_right) {
    size_t pos = 0;
    int64_t splits = 0;
    while (maxsplit < 0 || splits < maxsplit) {
      size_t f = s.find(sep, pos);
      if (f == std::string_view::npos) break;
      parts.emplace_back(s.substr(pos, f - pos));
      pos = f + sep.size();
      ++splits;
    }
    parts.emplace_back(s.substr(pos));
  } else {
    size_t end = s.size();
    int64_t splits = 0;
    while (maxsplit < 0 || splits < maxsplit) {
      if (end < sep.size()) break;
      size_t f = s.rfind(sep, end - sep.size());
      if (f == std::string_view::npos) break;
      parts.emplace_back(s.substr(f + sep.size(), end - f - sep.size()));
      end = f;
      ++splits;
    }
    parts.emplace_back(s.substr(0, end));
    std::reverse(parts.begin(), parts.end());
  }
  std::vector<Value> out;
  for (auto& p : parts) out.emplace_back(std::move(p));
  return out;
}

// Converts Python's optional start/end code-point arguments into a byte range of s.
std::pair<size_t, size_t> byte_range(std::string_view s, const Value* start, const Value* end) {
  auto offs = utf8_offsets(s);
  auto n = static_cast<int64_t>(offs.size() - 1);
  auto norm = [&](const Value* v, int64_t def) {
    if (!v || v->is_none()) return def;
    if (!(v->is_int() || v->is_bool())) throw_type_error("slice indices must be integers or None");
    int64_t x = v->to_int();
    if (x < 0) x = std::max<int64_t>(0, x + n);
    return std::min(x, n);
  };
  int64_t a = norm(start, 0), b = norm(end, n);
  if (b < a) b = a;
  return {offs[static_cast<size_t>(a)], offs[static_cast<size_t>(b)]};
}

int64_t cp_index(std::string_view s, size_t byte_pos) {
  return static_cast<int64_t>(utf8_length(s.substr(0, byte_pos)));
}

bool prefix_match(const std::string& s, CallArgs& a, bool suffix, const char* name) {
  const Value* p = arg(a, 0, "prefix");
  if (!p) throw_type_error(str_cat(name, "() takes at least 1 argument (0 given)"));
  auto [lo, hi] = byte_range(s, arg(a, 1, "start"), arg(a, 2, "end"));
  std::string_view sub = std::string_view(s).substr(lo, hi - lo);
  auto check = [&](const Value& v) {
    if (!v.is_string())
      throw_type_error(str_cat(name, " first arg must be str or a tuple of str, not ", type_name(v)));
    return suffix ? ends_with(sub, v.str()) : starts_with(sub, v.str());
  };
  if (p->is_tuple()) {
    for (const auto& v : p->items())
      if (check(v)) return true;
    return false;
  }
  return check(*p);
}

int64_t int_arg(CallArgs& a, size_t i, const char* name, int64_t def) {
  const Value* v = arg(a, i, name);
  if (!v || v->is_none()) return def;
  if (!(v->is_int() || v->is_bool())) throw_type_error(str_cat("'", type_name(*v), "' object cannot be interpreted as an integer"));
  return v->to_int();
}

std::string str_arg(CallArgs& a, size_t i, const char* name, const char* method) {
  const Value* v = arg(a, i, name);
  if (!v) throw_type_error(str_cat(method, "() missing required argument '", name, "'"));
  if (!v->is_string()) throw_type_error(str_cat("must be str, not ", type_name(*v)));
  return v->str();
}

Value string_method(const Value& self, std::string_view name, Interpreter& in, CallArgs& a) {
  const std::string& s = self.str();
  auto same = [&](std::string r) { return self.is_markup() ? Value::markup(std::move(r)) : Value(std::move(r)); };
  if (name == "strip") return same(py_strip(s, arg_or(a, 0, "chars", Value(nullptr)), true, true));
  if (name == "lstrip") return same(py_strip(s, arg_or(a, 0, "chars", Value(nullptr)), true, false));
  if (name == "rstrip") return same(py_strip(s, arg_or(a, 0, "chars", Value(nullptr)), false, true));
  if (name == "upper") return same(py_str_upper(s));
  if (name == "lower" || name == "casefold") return same(py_str_lower(s));
  if (name == "title") return Value(py_title(s));
  if (name == "capitalize") return Value(py_capitalize(s));
  if (name == "swapcase") {
    std::string out;
    for (size_t i = 0; i < s.size();) {
      char32_t c = utf8_next(s, &i);
      utf8_append(&out, py_is_upper(c) ? py_lower(c) : py_upper(c));
    }
    return Value(std::move(out));
  }
  if (name == "split" || name == "rsplit") {
    Value sep = arg_or(a, 0, "sep", Value(nullptr));
    int64_t maxsplit = int_arg(a, 1, "maxsplit", -1);
    bool right = name == "rsplit";
    if (sep.is_none()) return in.make_list(split_whitespace(s, maxsplit, right));
    if (!sep.is_string()) throw_type_error("must be str or None, not " + type_name(sep));
    return in.make_list(split_sep(s, sep.str(), maxsplit, right));
  }
  if (name == "splitlines") {
    std::vector<Value> out;
    for (auto& l : py_splitlines(s, truthy(arg_or(a, 0, "keepends", Value(false))))) out.emplace_back(std::move(l));
    return in.make_list(std::move(out));
  }
  if (name == "startswith") return Value(prefix_match(s, a, false, "startswith"));
  if (name == "endswith") return Value(prefix_match(s, a, true, "endswith"));
  if (name == "replace") {
    std::string old = str_arg(a, 0, "old", "replace"), repl = str_arg(a, 1, "new", "replace");
    std::string out = py_replace(s, old, repl, int_arg(a, 2, "count", -1));
    in.check_size(out.size());
    return Value(std::move(out));
  }
  if (name == "find" || name == "rfind" || name == "index" || name == "rindex" || name == "count") {
    std::string sub = str_arg(a, 0, "sub", std::string(name).c_str());
    auto [lo, hi] = byte_range(s, arg(a, 1, "start"), arg(a, 2, "end"));
    std::string_view hay = std::string_view(s).substr(lo, hi - lo);
    if (name == "count") {
      if (sub.empty()) return Value(static_cast<int64_t>(utf8_length(hay)) + 1);
      int64_t n = 0;
      for (size_t p = hay.find(sub); p != std::string_view::npos; p = hay.find(sub, p + sub.size())) ++n;
      return Value(n);
    }
    size_t f = (name == "find" || name == "index") ? hay.find(sub) : hay.rfind(sub);
    if (f == std::string_view::npos) {
      if (name == "index" || name == "rindex") throw_value_error("substring not found");
      return Value(int64_t{-1});
    }
    return Value(cp_index(s, lo + f));
  }
  if (name == "join") {
    const Value* it = arg(a, 0, "iterable");
    if (!it) throw_type_error("join() takes exactly one argument (0 given)");
    std::string out;
    bool first = true;
    for (const auto& v : in.iterate(*it)) {
      if (!v.is_string()) throw_type_error("sequence item: expected str instance, " + type_name(v) + " found");
      if (!first) out += s;
      out += v.str();
      first = false;
      in.check_size(out.size());
    }
    return Value(std::move(out));
  }
  if (name == "format") {
    std::string out = str_format(s, a);
    in.check_size(out.size());
    return Value(std::move(out));
  }
  if (name == "isdigit" || name == "isnumeric" || name == "isdecimal") {
    if (s.empty()) return Value(false);
    return Value(std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }));
  }
  if (name == "isalpha" || name == "isalnum" || name == "isspace" || name == "islower" || name == "isupper") {
    auto cps = utf8_decode(s);
    if (cps.empty()) return Value(false);
    if (name == "isspace") return Value(std::all_of(cps.begin(), cps.end(), py_isspace));
    if (name == "isalpha")
      return Value(std::all_of(cps.begin(), cps.end(), [](char32_t c) { return py_isalnum(c) && !(c >= '0' && c <= '9'); }));
    if (name == "isalnum") return Value(std::all_of(cps.begin(), cps.end(), py_isalnum));
    bool any_cased = false;
    for (char32_t c : cps) {
      if (name == "islower" && py_is_upper(c)) return Value(false);
      if (name == "isupper" && py_is_lower(c)) return Value(false);
      any_cased |= py_is_upper(c) || py_is_lower(c);
    }
    return Value(any_cased);
  }
  if (name == "center" || name == "ljust" || name == "rjust") {
    int64_t width = int_arg(a, 0, "width", 0);
    in.check_size(static_cast<size_t>(std::max<int64_t>(width, 0)) * 4);
    std::string fill = a.positional.size() > 1 ? str_arg(a, 1, "fillchar", "center") : " ";
    if (utf8_length(fill) != 1) throw_type_error("The fill character must be exactly one character long");
    auto len = static_cast<int64_t>(utf8_length(s));
    if (width <= len) return self;
    int64_t total = width - len;
    int64_t left = name == "ljust" ? 0 : name == "rjust" ? total : total / 2 + (total & width & 1);
    std::string out;
    for (int64_t i = 0; i < left; ++i) out += fill;
    out += s;
    for (int64_t i = 0; i < total - left; ++i) out += fill;
    return Value(std::move(out));
  }
  if (name == "zfill") {
    int64_t width = int_arg(a, 0, "width", 0);
    in.check_size(static_cast<size_t>(std::max<int64_t>(width, 0)));
    auto len = static_cast<int64_t>(utf8_length(s));
    if (width <= len) return self;
    size_t sign = (!s.empty() && (s[0] == '-' || s[0] == '+')) ? 1 : 0;
    return Value(s.substr(0, sign) + std::string(static_cast<size_t>(width - len), '0') + s.substr(sign));
  }
  if (name == "partition" || name == "rpartition") {
    std::string sep = str_arg(a, 0, "sep", "partition");
    if (sep.empty()) throw_value_error("empty separator");
    size_t f = name == "partition" ? s.find(sep) : s.rfind(sep);
    if (f == std::string::npos)
      return name == "partition" ? in.make_list({Value(s), Value(""), Value("")}, true)
                                 : in.make_list({Value(""), Value(""), Value(s)}, true);
    return in.make_list({Value(s.substr(0, f)), Value(sep), Value(s.substr(f + sep.size()))}, true);
  }
  if (name == "removeprefix" || name == "removesuffix") {
    std::string fix = str_arg(a, 0, "prefix", std::string(name).c_str());
    if (name == "removeprefix") return Value(starts_with(s, fix) ? s.substr(fix.size()) : s);
    return Value(ends_with(s, fix) ? s.substr(0, s.size() - fix.size()) : s);
  }
  throw_type_error(str_cat("'str' object has no attribute '", name, "'"));
}

Value dict_method(const Value& self, std::string_view name, Interpreter& in, CallArgs& a) {
  const DictData& d = self.dict_data();
  if (name == "items") {
    std::vector<Value> out;
    for (const auto& [k, v] : d.items) out.push_back(in.make_list({k, v}, true));
    return Value::sequence(std::move(out), SeqKind::kDictItems);
  }
  if (name == "keys" || name == "values") {
    std::vector<Value> out;
    for (const auto& [k, v] : d.items) out.push_back(name == "keys" ? k : v);
    return Value::sequence(std::move(out), name == "keys" ? SeqKind::kDictKeys : SeqKind::kDictValues);
  }
  if (name == "get") {
    const Value* key = arg(a, 0, "key");
    if (!key) throw_type_error("get expected at least 1 argument, got 0");
    const Value* v = d.find(*key);
    return v ? *v : arg_or(a, 1, "default", Value(nullptr));
  }
  if (name == "copy") return self;
  throw_type_error(str_cat("'dict' object has no attribute '", name, "'"));
}

Value list_method(const Value& self, std::string_view name, CallArgs& a) {
  const auto& items = self.items();
  const Value* x = arg(a, 0, "value");
  if (name == "copy") return self;
  if (!x) throw_type_error(str_cat(name, "() takes exactly one argument (0 given)"));
  if (name == "count") {
    int64_t n = 0;
    for (const auto& v : items) n += py_equal(v, *x) ? 1 : 0;
    return Value(n);
  }
  for (size_t i = 0; i < items.size(); ++i)
    if (py_equal(items[i], *x)) return Value(static_cast<int64_t>(i));
  throw_value_error(py_repr(*x) + " is not in list");
}

bool is_one_of(std::string_view name, std::initializer_list<std::string_view> names) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

}  // namespace

bool find_method(const Value& obj, std::string_view name, Value* out) {
  std::string n(name);
  if (obj.is_string()) {
    if (!is_one_of(name, {"strip", "lstrip", "rstrip", "upper", "lower", "casefold", "title", "capitalize", "swapcase",
                          "split", "rsplit", "splitlines", "startswith", "endswith", "replace", "find", "rfind",
                          "index", "rindex", "count", "join", "format", "isdigit", "isnumeric", "isdecimal",
                          "isalpha", "isalnum", "isspace", "islower", "isupper", "center", "ljust", "rjust",
                          "zfill", "partition", "rpartition", "removeprefix", "removesuffix"}))
      return false;
    *out = Value::function(n, [obj, n](Interpreter& in, CallArgs& a) { return string_method(obj, n, in, a); });
    return true;
  }
  if (obj.is_dict()) {
    if (is_one_of(name, {"pop", "popitem", "setdefault", "update", "clear"})) {
      *out = Value::undefined(n);
      return true;
    }
    if (!is_one_of(name, {"items", "keys", "values", "get", "copy"})) return false;
    *out = Value::function(n, [obj, n](Interpreter& in, CallArgs& a) { return dict_method(obj, n, in, a); });
    return true;
  }
  if (obj.is_plain_list()) {
    if (!obj.is_tuple() && is_one_of(name, {"append", "extend", "insert", "pop", "remove", "reverse", "sort", "clear"})) {
      *out = Value::undefined(n);
      return true;
    }
    if (!is_one_of(name, {"index", "count", "copy"}) || (obj.is_tuple() && name == "copy")) return false;
    *out = Value::function(n, [obj, n](Interpreter&, CallArgs& a) { return list_method(obj, n, a); });
    return true;
  }
  return false;
}

}  // namespace kiln::text::jinja
