#include "kiln/grammar/json_value.h"

#include <algorithm>

#include "kiln/core/str.h"
#include "kiln/text/utf8.h"

namespace kiln::grammar {

const JsonValue* JsonValue::find(std::string_view key) const {
  if (kind != Kind::kObject) return nullptr;
  for (const auto& [k, v] : members) {
    if (k == key) return &v;
  }
  return nullptr;
}

namespace {

class Reader {
 public:
  Reader(std::string_view text, size_t max_depth) : s_(text), max_depth_(max_depth) {}

  Result<JsonValue> document() {
    JsonValue v;
    KILN_RETURN_IF_ERROR(value(v, 0));
    skip_ws();
    if (pos_ != s_.size()) return error("text after the JSON value");
    return v;
  }

 private:
  Status error(std::string_view what) const {
    return invalid_argument(str_cat("invalid JSON schema text at byte ", pos_, ": ", what));
  }
  void skip_ws() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) ++pos_;
  }
  bool eat(std::string_view word) {
    if (s_.substr(pos_, word.size()) != word) return false;
    pos_ += word.size();
    return true;
  }

  Status value(JsonValue& v, size_t depth) {
    if (depth > max_depth_) return error(str_cat("nesting deeper than ", max_depth_));
    skip_ws();
    if (pos_ >= s_.size()) return error("unexpected end");
    char c = s_[pos_];
    if (c == '{') return object(v, depth);
    if (c == '[') return array(v, depth);
    if (c == '"') {
      v.kind = JsonValue::Kind::kString;
      return string(v.text);
    }
    if (eat("true")) {
      v.kind = JsonValue::Kind::kBool;
      v.boolean = true;
      return Status::ok();
    }
    if (eat("false")) {
      v.kind = JsonValue::Kind::kBool;
      return Status::ok();
    }
    if (eat("null")) {
      v.kind = JsonValue::Kind::kNull;
      return Status::ok();
    }
    return number(v);
  }

  Status object(JsonValue& v, size_t depth) {
    v.kind = JsonValue::Kind::kObject;
    ++pos_;
    skip_ws();
    if (eat("}")) return Status::ok();
    while (true) {
      skip_ws();
      if (pos_ >= s_.size() || s_[pos_] != '"') return error("expected a member name");
      std::string key;
      KILN_RETURN_IF_ERROR(string(key));
      if (v.find(key) != nullptr) return error(str_cat("duplicate member \"", key, "\""));
      skip_ws();
      if (!eat(":")) return error("expected ':'");
      JsonValue member;
      KILN_RETURN_IF_ERROR(value(member, depth + 1));
      v.members.push_back({std::move(key), std::move(member)});
      skip_ws();
      if (eat("}")) return Status::ok();
      if (!eat(",")) return error("expected ',' or '}'");
    }
  }

  Status array(JsonValue& v, size_t depth) {
    v.kind = JsonValue::Kind::kArray;
    ++pos_;
    skip_ws();
    if (eat("]")) return Status::ok();
    while (true) {
      JsonValue item;
      KILN_RETURN_IF_ERROR(value(item, depth + 1));
      v.items.push_back(std::move(item));
      skip_ws();
      if (eat("]")) return Status::ok();
      if (!eat(",")) return error("expected ',' or ']'");
    }
  }

  Status hex4(uint32_t* out) {
    if (pos_ + 4 > s_.size()) return error("short \\u escape");
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      char c = s_[pos_++];
      v <<= 4;
      if (c >= '0' && c <= '9') v |= static_cast<uint32_t>(c - '0');
      else if (c >= 'a' && c <= 'f') v |= static_cast<uint32_t>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') v |= static_cast<uint32_t>(c - 'A' + 10);
      else return error("bad \\u escape");
    }
    *out = v;
    return Status::ok();
  }

  Status string(std::string& out) {
    ++pos_;
    size_t raw_start = pos_;
    while (true) {
      if (pos_ >= s_.size()) return error("unterminated string");
      auto c = static_cast<unsigned char>(s_[pos_]);
      if (c == '"') {
        ++pos_;
        break;
      }
      if (c < 0x20) return error("control character in a string");
      if (c != '\\') {
        out += static_cast<char>(c);
        ++pos_;
        continue;
      }
      ++pos_;
      if (pos_ >= s_.size()) return error("unterminated string");
      char e = s_[pos_++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          uint32_t cp = 0;
          KILN_RETURN_IF_ERROR(hex4(&cp));
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            uint32_t lo = 0;
            if (!eat("\\u")) return error("lone surrogate escape");
            KILN_RETURN_IF_ERROR(hex4(&lo));
            if (lo < 0xDC00 || lo > 0xDFFF) return error("lone surrogate escape");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            return error("lone surrogate escape");
          }
          text::append_utf8(out, static_cast<char32_t>(cp));
          break;
        }
        default: return error("bad escape");
      }
    }
    if (!is_valid_utf8(out)) {
      pos_ = raw_start;
      return error("invalid UTF-8 in a string");
    }
    return Status::ok();
  }

  Status number(JsonValue& v) {
    size_t start = pos_;
    eat("-");
    auto digit = [&] { return pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9'; };
    if (!digit()) return error("unexpected character");
    if (s_[pos_] == '0') {
      ++pos_;
    } else {
      while (digit()) ++pos_;
    }
    if (eat(".")) {
      if (!digit()) return error("bad number");
      while (digit()) ++pos_;
    }
    if (pos_ < s_.size() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
      ++pos_;
      if (!eat("+")) eat("-");
      if (!digit()) return error("bad number");
      while (digit()) ++pos_;
    }
    v.kind = JsonValue::Kind::kNumber;
    v.text = std::string(s_.substr(start, pos_ - start));
    return Status::ok();
  }

  std::string_view s_;
  size_t pos_ = 0;
  size_t max_depth_;
};

}  // namespace

Result<JsonValue> parse_json(std::string_view text, size_t max_depth) {
  return Reader(text, max_depth).document();
}

void append_canonical_string(std::string& out, std::string_view utf8) {
  static const char* kHex = "0123456789abcdef";
  for (char ch : utf8) {
    auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out += kHex[c >> 4];
          out += kHex[c & 15];
        } else {
          out += ch;
        }
    }
  }
}

namespace {
void append_canonical(std::string& out, const JsonValue& v) {
  switch (v.kind) {
    case JsonValue::Kind::kNull: out += "null"; break;
    case JsonValue::Kind::kBool: out += v.boolean ? "true" : "false"; break;
    case JsonValue::Kind::kNumber: out += v.text; break;
    case JsonValue::Kind::kString:
      out += '"';
      append_canonical_string(out, v.text);
      out += '"';
      break;
    case JsonValue::Kind::kArray:
      out += '[';
      for (size_t i = 0; i < v.items.size(); ++i) {
        if (i) out += ',';
        append_canonical(out, v.items[i]);
      }
      out += ']';
      break;
    case JsonValue::Kind::kObject:
      out += '{';
      for (size_t i = 0; i < v.members.size(); ++i) {
        if (i) out += ',';
        out += '"';
        append_canonical_string(out, v.members[i].first);
        out += "\":";
        append_canonical(out, v.members[i].second);
      }
      out += '}';
      break;
  }
}
}  // namespace

std::string canonical_json(const JsonValue& v) {
  std::string out;
  append_canonical(out, v);
  return out;
}

bool parse_decimal(std::string_view text, Decimal* out) {
  Decimal d;
  size_t i = 0;
  if (i < text.size() && text[i] == '-') {
    d.negative = true;
    ++i;
  }
  std::string digits;
  int64_t exponent = 0;
  bool any = false;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') digits += text[i++], any = true;
  if (i < text.size() && text[i] == '.') {
    ++i;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') digits += text[i++], --exponent, any = true;
  }
  if (!any) return false;
  if (i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
    ++i;
    bool neg = false;
    if (i < text.size() && (text[i] == '+' || text[i] == '-')) neg = text[i++] == '-';
    int64_t e = 0;
    bool exp_digits = false;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
      e = e * 10 + (text[i++] - '0');
      exp_digits = true;
      if (e > 100'000) return false;
    }
    if (!exp_digits) return false;
    exponent += neg ? -e : e;
  }
  if (i != text.size()) return false;
  size_t lead = digits.find_first_not_of('0');
  if (lead == std::string::npos) {
    *out = Decimal{};
    return true;
  }
  digits.erase(0, lead);
  while (digits.back() == '0') digits.pop_back(), ++exponent;
  d.digits = std::move(digits);
  d.exponent = exponent;
  *out = std::move(d);
  return true;
}

namespace {
// Compares magnitudes.
int compare_abs(const Decimal& a, const Decimal& b) {
  if (a.is_zero() || b.is_zero()) return a.is_zero() == b.is_zero() ? 0 : (a.is_zero() ? -1 : 1);
  int64_t ma = static_cast<int64_t>(a.digits.size()) + a.exponent;  // position of the leading digit
  int64_t mb = static_cast<int64_t>(b.digits.size()) + b.exponent;
  if (ma != mb) return ma < mb ? -1 : 1;
  size_t n = std::max(a.digits.size(), b.digits.size());
  for (size_t i = 0; i < n; ++i) {
    char ca = i < a.digits.size() ? a.digits[i] : '0';
    char cb = i < b.digits.size() ? b.digits[i] : '0';
    if (ca != cb) return ca < cb ? -1 : 1;
  }
  return 0;
}
}  // namespace

int compare_decimal(const Decimal& a, const Decimal& b) {
  bool na = a.negative && !a.is_zero();
  bool nb = b.negative && !b.is_zero();
  if (na != nb) return na ? -1 : 1;
  int c = compare_abs(a, b);
  return na ? -c : c;
}

bool decimal_to_int64(const Decimal& d, int64_t* out) {
  if (!d.is_integer()) return false;
  if (d.is_zero()) {
    *out = 0;
    return true;
  }
  if (static_cast<int64_t>(d.digits.size()) + d.exponent > 18) return false;
  int64_t v = 0;
  for (char c : d.digits) v = v * 10 + (c - '0');
  for (int64_t i = 0; i < d.exponent; ++i) v *= 10;
  *out = d.negative ? -v : v;
  return true;
}

bool json_equal(const JsonValue& a, const JsonValue& b) {
  if (a.kind != b.kind) return false;
  switch (a.kind) {
    case JsonValue::Kind::kNull: return true;
    case JsonValue::Kind::kBool: return a.boolean == b.boolean;
    case JsonValue::Kind::kString: return a.text == b.text;
    case JsonValue::Kind::kNumber: {
      Decimal da, db;
      if (!parse_decimal(a.text, &da) || !parse_decimal(b.text, &db)) return a.text == b.text;
      return compare_decimal(da, db) == 0;
    }
    case JsonValue::Kind::kArray:
      if (a.items.size() != b.items.size()) return false;
      for (size_t i = 0; i < a.items.size(); ++i) {
        if (!json_equal(a.items[i], b.items[i])) return false;
      }
      return true;
    case JsonValue::Kind::kObject:
      if (a.members.size() != b.members.size()) return false;
      for (const auto& [k, v] : a.members) {
        const JsonValue* o = b.find(k);
        if (o == nullptr || !json_equal(v, *o)) return false;
      }
      return true;
  }
  return false;
}

std::string pointer_escape(std::string_view key) {
  std::string out;
  for (char c : key) {
    if (c == '~') out += "~0";
    else if (c == '/') out += "~1";
    else out += c;
  }
  return out;
}

}  // namespace kiln::grammar
