#include "kiln/text/jinja/value.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>

#include "kiln/text/jinja/unicode.h"

namespace kiln::text::jinja {

const Value* DictData::find(const Value& key) const {
  for (const auto& kv : items)
    if (py_equal(kv.first, key)) return &kv.second;
  return nullptr;
}

const Value* DictData::find(std::string_view key) const {
  for (const auto& kv : items)
    if (kv.first.is_string() && kv.first.str() == key) return &kv.second;
  return nullptr;
}

void DictData::set(Value key, Value value) {
  for (auto& kv : items) {
    if (py_equal(kv.first, key)) {
      kv.second = std::move(value);
      return;
    }
  }
  items.emplace_back(std::move(key), std::move(value));
}

namespace {
int items_depth(const std::vector<Value>& items) {
  int d = 0;
  for (const auto& v : items) d = std::max(d, v.depth());
  return d + 1;
}
}  // namespace

Value Value::list(std::vector<Value> items) {
  Value v;
  int depth = items_depth(items);
  v.v_ = std::make_shared<ListData>(ListData{std::move(items), false, SeqKind::kList, depth});
  return v;
}

Value Value::tuple(std::vector<Value> items) {
  Value v;
  int depth = items_depth(items);
  v.v_ = std::make_shared<ListData>(ListData{std::move(items), true, SeqKind::kTuple, depth});
  return v;
}

Value Value::sequence(std::vector<Value> items, SeqKind kind) {
  Value v;
  int depth = items_depth(items);
  v.v_ = std::make_shared<ListData>(ListData{std::move(items), kind == SeqKind::kTuple, kind, depth});
  return v;
}

Value Value::dict(DictData d) {
  int depth = 0;
  for (const auto& [k, val] : d.items) depth = std::max({depth, k.depth(), val.depth()});
  d.depth = depth + 1;
  Value v;
  v.v_ = std::make_shared<DictData>(std::move(d));
  return v;
}

int Value::depth() const {
  if (is_list()) return list_data().depth;
  if (is_dict()) return dict_data().depth;
  return 0;
}

Value Value::dict(std::vector<std::pair<std::string, Value>> items) {
  DictData d;
  for (auto& [k, val] : items) d.set(Value(std::move(k)), std::move(val));
  return dict(std::move(d));
}

Value Value::function(std::string name, NativeFn fn, bool is_macro) {
  Value v;
  v.v_ = std::make_shared<Function>(Function{std::move(name), std::move(fn), is_macro});
  return v;
}

Value Value::make_namespace(DictData attrs) {
  Value v;
  v.v_ = std::make_shared<NamespaceData>(NamespaceData{std::move(attrs)});
  return v;
}

double Value::to_double() const {
  switch (kind()) {
    case Kind::kBool: return as_bool() ? 1.0 : 0.0;
    case Kind::kInt: return static_cast<double>(as_int());
    case Kind::kFloat: return as_float();
    default: return 0.0;
  }
}

int64_t Value::to_int() const {
  switch (kind()) {
    case Kind::kBool: return as_bool() ? 1 : 0;
    case Kind::kInt: return as_int();
    default: return 0;
  }
}

const void* Value::identity() const {
  switch (kind()) {
    case Kind::kString: return std::get<std::shared_ptr<const StrData>>(v_).get();
    case Kind::kList: return std::get<std::shared_ptr<ListData>>(v_).get();
    case Kind::kDict: return std::get<std::shared_ptr<DictData>>(v_).get();
    case Kind::kFunction: return std::get<std::shared_ptr<Function>>(v_).get();
    case Kind::kNamespace: return std::get<std::shared_ptr<NamespaceData>>(v_).get();
    default: return nullptr;
  }
}

void throw_type_error(std::string message) { throw RenderError(RenderError::Kind::kType, std::move(message)); }
void throw_value_error(std::string message) { throw RenderError(RenderError::Kind::kValue, std::move(message)); }
void throw_undefined(const Value& v) {
  std::string name = v.is_undefined() ? v.undefined_name() : std::string();
  throw RenderError(RenderError::Kind::kUndefined,
                    name.empty() ? std::string("value is undefined") : "'" + name + "' is undefined");
}

std::string type_name(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined: return "Undefined";
    case Value::Kind::kNone: return "NoneType";
    case Value::Kind::kBool: return "bool";
    case Value::Kind::kInt: return "int";
    case Value::Kind::kFloat: return "float";
    case Value::Kind::kString: return "str";
    case Value::Kind::kList:
      switch (v.seq_kind()) {
        case SeqKind::kList: return "list";
        case SeqKind::kTuple: return "tuple";
        case SeqKind::kGenerator: return "generator";
        case SeqKind::kReverseIterator: return "list_reverseiterator";
        case SeqKind::kDictItems: return "dict_items";
        case SeqKind::kDictKeys: return "dict_keys";
        case SeqKind::kDictValues: return "dict_values";
      }
      return "list";
    case Value::Kind::kDict: return "dict";
    case Value::Kind::kFunction: return v.function_data().is_macro ? "Macro" : "function";
    case Value::Kind::kNamespace: return "Namespace";
  }
  return "object";
}

bool truthy(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined: return false;
    case Value::Kind::kNone: return false;
    case Value::Kind::kBool: return v.as_bool();
    case Value::Kind::kInt: return v.as_int() != 0;
    case Value::Kind::kFloat: return v.as_float() != 0.0;
    case Value::Kind::kString: return !v.str().empty();
    case Value::Kind::kList:
      // Generators and iterators are objects, always true, even when they would yield nothing.
      if (v.seq_kind() == SeqKind::kGenerator || v.seq_kind() == SeqKind::kReverseIterator) return true;
      return !v.items().empty();
    case Value::Kind::kDict: return !v.dict_data().items.empty();
    default: return true;
  }
}

std::string py_float_repr(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d < 0 ? "-inf" : "inf";
  if (d == 0) return std::signbit(d) ? "-0.0" : "0.0";
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  std::string_view sci(buf, static_cast<size_t>(r.ptr - buf));
  bool neg = sci[0] == '-';
  if (neg) sci.remove_prefix(1);
  size_t e = sci.find('e');
  std::string digits;
  for (char c : sci.substr(0, e))
    if (c != '.') digits.push_back(c);
  int exp = std::stoi(std::string(sci.substr(e + 1)));
  std::string out = neg ? "-" : "";
  if (exp < -4 || exp >= 16) {
    out += digits[0];
    if (digits.size() > 1) {
      out += '.';
      out += digits.substr(1);
    }
    char eb[16];
    std::snprintf(eb, sizeof eb, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
    out += eb;
    return out;
  }
  if (exp < 0) {
    out += "0.";
    out.append(static_cast<size_t>(-exp - 1), '0');
    out += digits;
    return out;
  }
  auto int_len = static_cast<size_t>(exp + 1);
  if (digits.size() <= int_len) {
    out += digits;
    out.append(int_len - digits.size(), '0');
    out += ".0";
  } else {
    out += digits.substr(0, int_len);
    out += '.';
    out += digits.substr(int_len);
  }
  return out;
}

std::string py_repr_string(std::string_view s) {
  bool has_single = s.find('\'') != std::string_view::npos;
  bool has_double = s.find('"') != std::string_view::npos;
  char quote = (has_single && !has_double) ? '"' : '\'';
  std::string out(1, quote);
  for (size_t i = 0; i < s.size();) {
    char32_t c = utf8_next(s, &i);
    if (c == static_cast<char32_t>(quote) || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (!py_isprintable(c)) {
      char b[16];
      if (c < 0x100) std::snprintf(b, sizeof b, "\\x%02x", static_cast<unsigned>(c));
      else if (c < 0x10000) std::snprintf(b, sizeof b, "\\u%04x", static_cast<unsigned>(c));
      else std::snprintf(b, sizeof b, "\\U%08x", static_cast<unsigned>(c));
      out += b;
    } else {
      utf8_append(&out, c);
    }
  }
  out += quote;
  return out;
}

void py_repr_append(std::string* out, const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined: *out += "Undefined"; return;
    case Value::Kind::kString: *out += py_repr_string(v.str()); return;
    case Value::Kind::kList: {
      SeqKind seq = v.seq_kind();
      if (seq == SeqKind::kGenerator || seq == SeqKind::kReverseIterator) {
        out->push_back('<');
        out->append(type_name(v));
        out->append(" object>");
        return;
      }
      if (seq == SeqKind::kDictItems || seq == SeqKind::kDictKeys || seq == SeqKind::kDictValues) {
        out->append(type_name(v));
        out->push_back('(');
        py_repr_append(out, Value::list(v.items()));
        *out += ')';
        return;
      }
      bool tuple = v.is_tuple();
      *out += tuple ? '(' : '[';
      const auto& items = v.items();
      for (size_t i = 0; i < items.size(); ++i) {
        if (i) *out += ", ";
        py_repr_append(out, items[i]);
      }
      if (tuple && items.size() == 1) *out += ',';
      *out += tuple ? ')' : ']';
      return;
    }
    case Value::Kind::kDict: {
      *out += '{';
      bool first = true;
      for (const auto& [k, val] : v.dict_data().items) {
        if (!first) *out += ", ";
        first = false;
        py_repr_append(out, k);
        *out += ": ";
        py_repr_append(out, val);
      }
      *out += '}';
      return;
    }
    case Value::Kind::kNamespace: {
      // Namespaces are the one mutable value, so they can contain themselves; bound the walk
      // (Python prints the cycle as "..."; kiln refuses it rather than recurse without end).
      thread_local int depth = 0;
      if (depth >= 64) throw RenderError(RenderError::Kind::kLimit, "namespaces nested too deeply to print");
      ++depth;
      struct Leave {
        ~Leave() { --depth; }
      } leave;
      *out += "<Namespace ";
      py_repr_append(out, Value::dict(v.namespace_data().attrs));
      *out += '>';
      return;
    }
    default: *out += py_str(v); return;
  }
}

std::string py_repr(const Value& v) {
  std::string out;
  py_repr_append(&out, v);
  return out;
}

std::string py_str(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined: return "";
    case Value::Kind::kNone: return "None";
    case Value::Kind::kBool: return v.as_bool() ? "True" : "False";
    case Value::Kind::kInt: return std::to_string(v.as_int());
    case Value::Kind::kFloat: return py_float_repr(v.as_float());
    case Value::Kind::kString: return v.str();
    case Value::Kind::kFunction:
      return v.function_data().is_macro ? "<Macro '" + v.function_data().name + "'>"
                                         : "<function " + v.function_data().name + ">";
    default: return py_repr(v);
  }
}

bool py_equal(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return a.to_double() == b.to_double();
    return a.to_int() == b.to_int();
  }
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Value::Kind::kUndefined:
    case Value::Kind::kNone: return true;
    case Value::Kind::kString: return a.str() == b.str();
    case Value::Kind::kList: {
      if (a.seq_kind() != b.seq_kind()) return false;
      if (!a.is_plain_list() && a.seq_kind() != SeqKind::kDictValues && a.seq_kind() != SeqKind::kDictItems &&
          a.seq_kind() != SeqKind::kDictKeys)
        return a.identity() == b.identity();
      const auto& x = a.items();
      const auto& y = b.items();
      if (x.size() != y.size()) return false;
      for (size_t i = 0; i < x.size(); ++i)
        if (!py_equal(x[i], y[i])) return false;
      return true;
    }
    case Value::Kind::kDict: {
      const auto& x = a.dict_data().items;
      if (x.size() != b.dict_data().items.size()) return false;
      for (const auto& [k, val] : x) {
        const Value* other = b.dict_data().find(k);
        if (!other || !py_equal(val, *other)) return false;
      }
      return true;
    }
    default: return a.identity() == b.identity();
  }
}

bool py_less(const Value& a, const Value& b) {
  if (a.is_undefined()) throw_undefined(a);
  if (b.is_undefined()) throw_undefined(b);
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return a.to_double() < b.to_double();
    return a.to_int() < b.to_int();
  }
  if (a.is_string() && b.is_string()) return a.str() < b.str();  // UTF-8 order is code point order
  if (a.is_plain_list() && b.is_plain_list() && a.is_tuple() == b.is_tuple()) {
    const auto& x = a.items();
    const auto& y = b.items();
    for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
      if (py_equal(x[i], y[i])) continue;
      return py_less(x[i], y[i]);
    }
    return x.size() < y.size();
  }
  throw_type_error("'<' not supported between instances of '" + type_name(a) + "' and '" + type_name(b) + "'");
}

int64_t py_len(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined: return 0;
    case Value::Kind::kString: return static_cast<int64_t>(utf8_length(v.str()));
    case Value::Kind::kList:
      if (v.seq_kind() == SeqKind::kGenerator || v.seq_kind() == SeqKind::kReverseIterator)
        throw_type_error("object of type '" + type_name(v) + "' has no len()");
      return static_cast<int64_t>(v.items().size());
    case Value::Kind::kDict: return static_cast<int64_t>(v.dict_data().items.size());
    default: throw_type_error("object of type '" + type_name(v) + "' has no len()");
  }
}

}  // namespace kiln::text::jinja
