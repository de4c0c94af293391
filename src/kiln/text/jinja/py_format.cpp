#include "kiln/text/jinja/py_format.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "kiln/core/str.h"
#include "kiln/text/jinja/unicode.h"

namespace kiln::text::jinja {
namespace {

struct Spec {
  char fill = ' ';
  char align = '\0';  // < > ^ =
  char sign = '-';
  bool alt = false;
  bool zero = false;
  int width = 0;
  char grouping = '\0';
  int precision = -1;
  char type = '\0';
};

// printf-style number formatting for one double with C's conversions, which match Python's for
// e, f, g (two-digit minimum exponents, same rounding of the exact binary value).
std::string c_format_double(double d, char type, int precision, bool alt) {
  if (std::isinf(d) || std::isnan(d)) {
    std::string s = std::isnan(d) ? "nan" : (d < 0 ? "-inf" : "inf");
    if (type == 'F' || type == 'E' || type == 'G') s = py_str_upper(s);
    return s;
  }
  char fmt[16];
  std::snprintf(fmt, sizeof fmt, "%%%s.%d%c", alt ? "#" : "", precision < 0 ? 6 : precision, type);
  int n = std::snprintf(nullptr, 0, fmt, d);
  std::string out(static_cast<size_t>(n), '\0');
  std::snprintf(out.data(), out.size() + 1, fmt, d);
  return out;
}

std::string int_to_base(int64_t v, int base, bool upper) {
  if (v == 0) return "0";
  bool neg = v < 0;
  uint64_t u = neg ? 0 - static_cast<uint64_t>(v) : static_cast<uint64_t>(v);
  std::string s;
  const char* digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
  while (u) {
    s.push_back(digits[u % static_cast<uint64_t>(base)]);
    u /= static_cast<uint64_t>(base);
  }
  if (neg) s.push_back('-');
  std::reverse(s.begin(), s.end());
  return s;
}

std::string group_digits(const std::string& digits, char sep) {
  // digits: optional sign then integer part then optional fraction.
  size_t start = (!digits.empty() && (digits[0] == '-' || digits[0] == '+' || digits[0] == ' ')) ? 1 : 0;
  size_t end = digits.find_first_of(".eE", start);
  if (end == std::string::npos) end = digits.size();
  std::string out = digits.substr(0, start);
  std::string ip = digits.substr(start, end - start);
  for (size_t i = 0; i < ip.size(); ++i) {
    if (i && (ip.size() - i) % 3 == 0) out.push_back(sep);
    out.push_back(ip[i]);
  }
  return out + digits.substr(end);
}

std::string pad(std::string body, const Spec& spec, char default_align) {
  char align = spec.align ? spec.align : default_align;
  size_t len = utf8_length(body);
  if (spec.width <= 0 || len >= static_cast<size_t>(spec.width)) return body;
  size_t fill_n = static_cast<size_t>(spec.width) - len;
  std::string fill;
  for (size_t i = 0; i < fill_n; ++i) fill.push_back(spec.fill);
  if (align == '<') return body + fill;
  if (align == '>') return fill + body;
  if (align == '^') return fill.substr(0, fill_n / 2) + body + fill.substr(0, fill_n - fill_n / 2);
  // '=': padding after the sign
  size_t sign_len = (!body.empty() && (body[0] == '-' || body[0] == '+' || body[0] == ' ')) ? 1 : 0;
  return body.substr(0, sign_len) + fill + body.substr(sign_len);
}

Spec parse_spec(std::string_view s) {
  Spec spec;
  size_t i = 0;
  auto is_align = [](char c) { return c == '<' || c == '>' || c == '^' || c == '='; };
  if (s.size() >= 2 && is_align(s[1])) {
    spec.fill = s[0];
    spec.align = s[1];
    i = 2;
  } else if (!s.empty() && is_align(s[0])) {
    spec.align = s[0];
    i = 1;
  }
  if (i < s.size() && (s[i] == '+' || s[i] == '-' || s[i] == ' ')) spec.sign = s[i++];
  if (i < s.size() && s[i] == '#') {
    spec.alt = true;
    ++i;
  }
  if (i < s.size() && s[i] == '0') {
    spec.zero = true;
    if (!spec.align) {
      spec.fill = '0';
      spec.align = '=';
    }
    ++i;
  }
  while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) {
    spec.width = spec.width * 10 + (s[i++] - '0');
    if (spec.width > 100000) throw_value_error("format width too large");
  }
  if (i < s.size() && (s[i] == ',' || s[i] == '_')) spec.grouping = s[i++];
  if (i < s.size() && s[i] == '.') {
    ++i;
    spec.precision = 0;
    if (i >= s.size() || !std::isdigit(static_cast<unsigned char>(s[i]))) throw_value_error("Format specifier missing precision");
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) {
      spec.precision = spec.precision * 10 + (s[i++] - '0');
      if (spec.precision > 1000) throw_value_error("format precision too large");
    }
  }
  if (i < s.size()) spec.type = s[i++];
  if (i != s.size()) throw_value_error("Invalid format specifier '" + std::string(s) + "'");
  return spec;
}

std::string sign_prefix(bool negative, char sign) {
  if (negative) return "-";
  if (sign == '+') return "+";
  if (sign == ' ') return " ";
  return "";
}

std::string format_float_spec(double d, const Spec& spec) {
  char type = spec.type;
  bool neg = std::signbit(d) && !std::isnan(d);
  double a = std::fabs(d);
  std::string body;
  if (type == '\0') {
    if (spec.precision < 0) {
      body = py_float_repr(a);
    } else {
      body = c_format_double(a, 'g', spec.precision == 0 ? 1 : spec.precision, spec.alt);
      if (body.find_first_of(".eninf") == std::string::npos) body += ".0";
    }
  } else if (type == '%') {
    body = c_format_double(a * 100, 'f', spec.precision, spec.alt) + "%";
  } else if (std::string_view("eEfFgG").find(type) != std::string_view::npos) {
    body = c_format_double(a, type, spec.precision, spec.alt);
  } else {
    throw_value_error(str_cat("Unknown format code '", type, "' for object of type 'float'"));
  }
  if (spec.grouping) body = group_digits(body, spec.grouping);
  return pad(sign_prefix(neg, spec.sign) + body, spec, '>');
}

std::string format_int_spec(int64_t v, const Spec& spec) {
  char type = spec.type;
  if (std::string_view("eEfFgG%").find(type) != std::string_view::npos && type != '\0')
    return format_float_spec(static_cast<double>(v), spec);
  if (spec.precision >= 0) throw_value_error("Precision not allowed in integer format specifier");
  bool neg = v < 0;
  std::string digits;
  std::string prefix;
  switch (type) {
    case '\0': case 'd': case 'n': digits = int_to_base(v, 10, false); break;
    case 'x': digits = int_to_base(v, 16, false); prefix = spec.alt ? "0x" : ""; break;
    case 'X': digits = int_to_base(v, 16, true); prefix = spec.alt ? "0X" : ""; break;
    case 'o': digits = int_to_base(v, 8, false); prefix = spec.alt ? "0o" : ""; break;
    case 'b': digits = int_to_base(v, 2, false); prefix = spec.alt ? "0b" : ""; break;
    case 'c': {
      if (v < 0 || v > 0x10FFFF) throw_value_error("%c arg not in range(0x110000)");
      std::string s;
      utf8_append(&s, static_cast<char32_t>(v));
      return pad(s, spec, '<');
    }
    default: throw_value_error(str_cat("Unknown format code '", type, "' for object of type 'int'"));
  }
  if (neg) digits = digits.substr(1);
  if (spec.grouping) digits = group_digits(digits, spec.grouping);
  return pad(sign_prefix(neg, spec.sign) + prefix + digits, spec, '>');
}

}  // namespace

std::string format_value(const Value& v, std::string_view spec_text) {
  if (spec_text.empty()) return py_str(v);
  Spec spec = parse_spec(spec_text);
  if (v.is_float()) return format_float_spec(v.as_float(), spec);
  if (v.is_int() || (v.is_bool() && spec.type != '\0' && spec.type != 's')) return format_int_spec(v.to_int(), spec);
  if (v.is_string() || v.is_bool()) {
    if (spec.type != '\0' && spec.type != 's')
      throw_value_error(str_cat("Unknown format code '", spec.type, "' for object of type '", type_name(v), "'"));
    std::string s = py_str(v);
    if (spec.precision >= 0) {
      auto offs = utf8_offsets(s);
      if (static_cast<size_t>(spec.precision) + 1 < offs.size()) s = s.substr(0, offs[static_cast<size_t>(spec.precision)]);
    }
    return pad(s, spec, '<');
  }
  throw_type_error("unsupported format string passed to " + type_name(v) + ".__format__");
}

std::string percent_format(std::string_view fmt, const Value& args) {
  std::vector<Value> positional;
  const DictData* mapping = nullptr;
  if (args.is_tuple()) positional = args.items();
  else if (args.is_dict()) mapping = &args.dict_data();
  else positional.push_back(args);
  size_t next_arg = 0;
  bool used_mapping = false;
  auto take = [&]() -> Value {
    if (next_arg >= positional.size()) throw_type_error("not enough arguments for format string");
    return positional[next_arg++];
  };
  std::string out;
  for (size_t i = 0; i < fmt.size(); ++i) {
    char c = fmt[i];
    if (c != '%') {
      out.push_back(c);
      continue;
    }
    if (++i >= fmt.size()) throw_value_error("incomplete format");
    Value key_value;
    bool have_key = false;
    if (fmt[i] == '(') {
      size_t close = fmt.find(')', i);
      if (close == std::string_view::npos) throw_value_error("incomplete format key");
      if (!mapping) throw_type_error("format requires a mapping");
      const Value* v = mapping->find(fmt.substr(i + 1, close - i - 1));
      if (!v) throw RenderError(RenderError::Kind::kValue, "KeyError: '" + std::string(fmt.substr(i + 1, close - i - 1)) + "'");
      key_value = *v;
      have_key = true;
      used_mapping = true;
      i = close + 1;
    }
    Spec spec;
    spec.align = '>';
    for (; i < fmt.size(); ++i) {
      char f = fmt[i];
      if (f == '-') spec.align = '<';
      else if (f == '+') spec.sign = '+';
      else if (f == ' ') { if (spec.sign != '+') spec.sign = ' '; }
      else if (f == '#') spec.alt = true;
      else if (f == '0') spec.zero = true;
      else break;
    }
    if (i < fmt.size() && fmt[i] == '*') {
      spec.width = static_cast<int>(take().to_int());
      ++i;
    } else {
      while (i < fmt.size() && std::isdigit(static_cast<unsigned char>(fmt[i]))) spec.width = std::min(100000, spec.width * 10 + (fmt[i++] - '0'));
    }
    if (i < fmt.size() && fmt[i] == '.') {
      ++i;
      spec.precision = 0;
      if (i < fmt.size() && fmt[i] == '*') {
        spec.precision = static_cast<int>(take().to_int());
        ++i;
      } else {
        while (i < fmt.size() && std::isdigit(static_cast<unsigned char>(fmt[i]))) spec.precision = std::min(1000, spec.precision * 10 + (fmt[i++] - '0'));
      }
    }
    while (i < fmt.size() && (fmt[i] == 'l' || fmt[i] == 'h' || fmt[i] == 'L')) ++i;
    if (i >= fmt.size()) throw_value_error("incomplete format");
    char conv = fmt[i];
    if (conv == '%') {
      out.push_back('%');
      continue;
    }
    Value v = have_key ? key_value : take();
    if (spec.zero && spec.align == '>') {
      spec.fill = '0';
      spec.align = '=';
    }
    switch (conv) {
      case 's': case 'r': case 'a': {
        std::string s = conv == 's' ? py_str(v) : py_repr(v);
        if (spec.precision >= 0) {
          auto offs = utf8_offsets(s);
          if (static_cast<size_t>(spec.precision) + 1 < offs.size()) s = s.substr(0, offs[static_cast<size_t>(spec.precision)]);
        }
        Spec text_spec = spec;
        text_spec.fill = ' ';
        if (text_spec.align == '=') text_spec.align = '>';
        out += pad(s, text_spec, '>');
        break;
      }
      case 'd': case 'i': case 'u': {
        if (!v.is_number()) throw_type_error("%" + std::string(1, conv) + " format: a real number is required, not " + type_name(v));
        int64_t n = v.is_float() ? static_cast<int64_t>(std::trunc(v.as_float())) : v.to_int();
        Spec s2 = spec;
        s2.type = 'd';
        s2.precision = -1;
        out += format_int_spec(n, s2);
        break;
      }
      case 'x': case 'X': case 'o': {
        if (!(v.is_int() || v.is_bool())) throw_type_error("%" + std::string(1, conv) + " format: an integer is required, not " + type_name(v));
        Spec s2 = spec;
        s2.type = conv;
        s2.precision = -1;
        out += format_int_spec(v.to_int(), s2);
        break;
      }
      case 'e': case 'E': case 'f': case 'F': case 'g': case 'G': {
        if (!v.is_number()) throw_type_error("must be real number, not " + type_name(v));
        Spec s2 = spec;
        s2.type = conv;
        if (s2.precision < 0) s2.precision = 6;
        out += format_float_spec(v.to_double(), s2);
        break;
      }
      case 'c': {
        if (v.is_string()) {
          out += pad(v.str(), spec, '>');
        } else {
          Spec s2 = spec;
          s2.type = 'c';
          out += format_int_spec(v.to_int(), s2);
        }
        break;
      }
      default: throw_value_error(str_cat("unsupported format character '", conv, "'"));
    }
  }
  if (!used_mapping && next_arg < positional.size() && !mapping)
    throw_type_error("not all arguments converted during string formatting");
  return out;
}

std::string str_format(std::string_view fmt, const CallArgs& args) {
  std::string out;
  size_t auto_index = 0;
  for (size_t i = 0; i < fmt.size(); ++i) {
    char c = fmt[i];
    if (c == '}') {
      if (i + 1 < fmt.size() && fmt[i + 1] == '}') {
        out.push_back('}');
        ++i;
        continue;
      }
      throw_value_error("Single '}' encountered in format string");
    }
    if (c != '{') {
      out.push_back(c);
      continue;
    }
    if (i + 1 < fmt.size() && fmt[i + 1] == '{') {
      out.push_back('{');
      ++i;
      continue;
    }
    size_t close = fmt.find('}', i);
    if (close == std::string_view::npos) throw_value_error("Single '{' encountered in format string");
    std::string_view field = fmt.substr(i + 1, close - i - 1);
    i = close;
    std::string_view spec;
    char conversion = '\0';
    size_t colon = field.find(':');
    if (colon != std::string_view::npos) {
      spec = field.substr(colon + 1);
      field = field.substr(0, colon);
    }
    size_t bang = field.find('!');
    if (bang != std::string_view::npos) {
      if (bang + 2 != field.size()) throw_value_error("expected ':' after conversion specifier");
      conversion = field[bang + 1];
      field = field.substr(0, bang);
    }
    size_t name_end = field.find_first_of(".[");
    std::string_view name = field.substr(0, name_end);
    Value v;
    if (name.empty()) {
      if (auto_index >= args.positional.size())
        throw RenderError(RenderError::Kind::kValue, str_cat("IndexError: Replacement index ", auto_index, " out of range for positional args tuple"));
      v = args.positional[auto_index++];
    } else if (std::all_of(name.begin(), name.end(), [](char ch) { return std::isdigit(static_cast<unsigned char>(ch)); })) {
      size_t idx = static_cast<size_t>(std::stoul(std::string(name.substr(0, 9))));
      if (idx >= args.positional.size())
        throw RenderError(RenderError::Kind::kValue, str_cat("IndexError: Replacement index ", idx, " out of range for positional args tuple"));
      v = args.positional[idx];
    } else {
      bool found = false;
      for (const auto& [k, val] : args.keyword) {
        if (k == name) {
          v = val;
          found = true;
        }
      }
      if (!found) throw RenderError(RenderError::Kind::kValue, "KeyError: '" + std::string(name) + "'");
    }
    if (name_end != std::string_view::npos) {
      // Attribute and index access inside fields reach into dicts only (the sandbox's formatter).
      std::string_view rest = field.substr(name_end);
      while (!rest.empty()) {
        std::string key;
        if (rest[0] == '.') {
          size_t e = rest.find_first_of(".[", 1);
          key = std::string(rest.substr(1, e == std::string_view::npos ? std::string_view::npos : e - 1));
          rest = e == std::string_view::npos ? std::string_view() : rest.substr(e);
        } else {
          size_t e = rest.find(']');
          if (e == std::string_view::npos) throw_value_error("Missing ']' in format string");
          key = std::string(rest.substr(1, e - 1));
          rest = rest.substr(e + 1);
        }
        const Value* inner = v.is_dict() ? v.dict_data().find(key) : nullptr;
        if (!inner) throw RenderError(RenderError::Kind::kValue, "KeyError: '" + key + "'");
        v = *inner;
      }
    }
    if (conversion == 'r' || conversion == 'a') v = Value(py_repr(v));
    else if (conversion == 's') v = Value(py_str(v));
    else if (conversion != '\0') throw_value_error(str_cat("Unknown conversion specifier ", conversion));
    out += format_value(v, spec);
  }
  return out;
}

namespace {

void json_string(std::string* out, std::string_view s, bool ensure_ascii) {
  out->push_back('"');
  for (size_t i = 0; i < s.size();) {
    char32_t c = utf8_next(s, &i);
    switch (c) {
      case '"': *out += "\\\""; break;
      case '\\': *out += "\\\\"; break;
      case '\n': *out += "\\n"; break;
      case '\r': *out += "\\r"; break;
      case '\t': *out += "\\t"; break;
      case '\b': *out += "\\b"; break;
      case '\f': *out += "\\f"; break;
      default:
        if (c < 0x20 || (ensure_ascii && c >= 0x7F)) {
          char b[16];
          if (c >= 0x10000) {
            char32_t v = c - 0x10000;
            std::snprintf(b, sizeof b, "\\u%04x\\u%04x", static_cast<unsigned>(0xD800 + (v >> 10)),
                          static_cast<unsigned>(0xDC00 + (v & 0x3FF)));
          } else {
            std::snprintf(b, sizeof b, "\\u%04x", static_cast<unsigned>(c));
          }
          *out += b;
        } else {
          utf8_append(out, c);
        }
    }
  }
  out->push_back('"');
}

std::string json_float(double d) {
  if (std::isnan(d)) return "NaN";
  if (std::isinf(d)) return d < 0 ? "-Infinity" : "Infinity";
  return py_float_repr(d);
}

void json_value(std::string* out, const Value& v, const JsonOptions& o, int level) {
  auto newline = [&](int lvl) {
    out->push_back('\n');
    for (int k = 0; k < lvl; ++k) *out += *o.indent;
  };
  switch (v.kind()) {
    case Value::Kind::kNone: *out += "null"; return;
    case Value::Kind::kBool: *out += v.as_bool() ? "true" : "false"; return;
    case Value::Kind::kInt: *out += std::to_string(v.as_int()); return;
    case Value::Kind::kFloat: *out += json_float(v.as_float()); return;
    case Value::Kind::kString: json_string(out, v.str(), o.ensure_ascii); return;
    case Value::Kind::kList: {
      if (!v.is_plain_list()) throw_type_error("Object of type " + type_name(v) + " is not JSON serializable");
      const auto& items = v.items();
      if (items.empty()) {
        *out += "[]";
        return;
      }
      out->push_back('[');
      for (size_t i = 0; i < items.size(); ++i) {
        if (i) *out += o.item_separator;
        if (o.indent) newline(level + 1);
        json_value(out, items[i], o, level + 1);
      }
      if (o.indent) newline(level);
      out->push_back(']');
      return;
    }
    case Value::Kind::kDict: {
      std::vector<std::pair<std::string, const Value*>> entries;
      std::vector<Value> raw_keys;
      for (const auto& [k, val] : v.dict_data().items) {
        std::string key;
        if (k.is_string()) key = k.str();
        else if (k.is_bool()) key = k.as_bool() ? "true" : "false";
        else if (k.is_int()) key = std::to_string(k.as_int());
        else if (k.is_float()) key = json_float(k.as_float());
        else if (k.is_none()) key = "null";
        else throw_type_error("keys must be str, int, float, bool or None, not " + type_name(k));
        entries.emplace_back(std::move(key), &val);
        raw_keys.push_back(k);
      }
      if (entries.empty()) {
        *out += "{}";
        return;
      }
      if (o.sort_keys) {
        std::vector<size_t> order(entries.size());
        for (size_t i = 0; i < order.size(); ++i) order[i] = i;
        std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return py_less(raw_keys[a], raw_keys[b]); });
        std::vector<std::pair<std::string, const Value*>> sorted;
        for (size_t i : order) sorted.push_back(entries[i]);
        entries = std::move(sorted);
      }
      out->push_back('{');
      for (size_t i = 0; i < entries.size(); ++i) {
        if (i) *out += o.item_separator;
        if (o.indent) newline(level + 1);
        json_string(out, entries[i].first, o.ensure_ascii);
        *out += o.key_separator;
        json_value(out, *entries[i].second, o, level + 1);
      }
      if (o.indent) newline(level);
      out->push_back('}');
      return;
    }
    default: throw_type_error("Object of type " + type_name(v) + " is not JSON serializable");
  }
}

}  // namespace

std::string json_dumps(const Value& v, const JsonOptions& options) {
  std::string out;
  json_value(&out, v, options, 0);
  return out;
}

}  // namespace kiln::text::jinja
