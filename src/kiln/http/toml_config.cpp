#include "kiln/http/toml_config.h"

#include <cctype>

#include "kiln/core/file.h"
#include "kiln/core/str.h"

namespace kiln::http {

namespace {

class LineParser {
 public:
  LineParser(std::string_view s, std::string_view source, int line) : s_(s), source_(source), line_(line) {}

  Status error(std::string_view what) const { return invalid_argument(str_cat(source_, ":", line_, ": ", what)); }
  void skip_ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t')) ++i_;
  }
  bool at_end_or_comment() {
    skip_ws();
    return i_ >= s_.size() || s_[i_] == '#';
  }
  bool eat(char c) {
    skip_ws();
    if (i_ < s_.size() && s_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }

  Result<std::string> key() {
    skip_ws();
    if (i_ < s_.size() && (s_[i_] == '"' || s_[i_] == '\'')) return string_value();
    size_t start = i_;
    while (i_ < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[i_])) || s_[i_] == '_' || s_[i_] == '-')) ++i_;
    if (start == i_) return error("expected a key");
    std::string k(s_.substr(start, i_ - start));
    while (eat('.')) {
      KILN_ASSIGN_OR_RETURN(std::string sub, key());
      k += "." + sub;
    }
    return k;
  }

  Result<std::string> string_value() {
    char q = s_[i_++];
    std::string out;
    while (i_ < s_.size() && s_[i_] != q) {
      char c = s_[i_++];
      if (q == '"' && c == '\\') {
        if (i_ >= s_.size()) break;
        char e = s_[i_++];
        switch (e) {
          case 'n': out += '\n'; break;
          case 't': out += '\t'; break;
          case 'r': out += '\r'; break;
          case '"': out += '"'; break;
          case '\\': out += '\\'; break;
          default: return error(str_cat("unsupported escape \\", std::string(1, e)));
        }
      } else {
        out += c;
      }
    }
    if (i_ >= s_.size()) return error("unterminated string");
    ++i_;
    return out;
  }

  Result<std::string> scalar() {
    skip_ws();
    if (i_ >= s_.size()) return error("expected a value");
    if (s_[i_] == '"' || s_[i_] == '\'') return string_value();
    size_t start = i_;
    while (i_ < s_.size() && s_[i_] != ',' && s_[i_] != ']' && s_[i_] != '#' && s_[i_] != ' ' && s_[i_] != '\t') ++i_;
    std::string v(s_.substr(start, i_ - start));
    if (v == "true" || v == "false") return v;
    std::string digits;
    for (char c : v) {
      if (c != '_') digits += c;
    }
    bool numeric = !digits.empty();
    for (char c : digits) {
      numeric = numeric && (std::isdigit(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '+' ||
                            c == 'e' || c == 'E');
    }
    if (!numeric) return error(str_cat("'", v, "' is not a TOML value (strings need quotes)"));
    return digits;
  }

  Status value(TomlValue* out) {
    skip_ws();
    if (eat('[')) {
      out->is_array = true;
      if (eat(']')) return Status::ok();
      while (true) {
        KILN_ASSIGN_OR_RETURN(std::string v, scalar());
        out->items.push_back(std::move(v));
        if (eat(',')) {
          if (eat(']')) break;  // trailing comma
          continue;
        }
        if (eat(']')) break;
        return error("expected ',' or ']' in an array (arrays must fit on one line)");
      }
      return Status::ok();
    }
    KILN_ASSIGN_OR_RETURN(std::string v, scalar());
    out->items.push_back(std::move(v));
    return Status::ok();
  }

  size_t pos() const { return i_; }

 private:
  std::string_view s_;
  std::string_view source_;
  int line_;
  size_t i_ = 0;
};

}  // namespace

Result<std::map<std::string, TomlValue>> parse_toml(std::string_view text, std::string_view source) {
  std::map<std::string, TomlValue> out;
  std::string table;
  int line_no = 0;
  for (const std::string& raw : split(text, '\n')) {
    ++line_no;
    std::string line = raw;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    LineParser p(line, source, line_no);
    if (p.at_end_or_comment()) continue;
    if (p.eat('[')) {
      if (p.eat('[')) return p.error("arrays of tables are not supported");
      KILN_ASSIGN_OR_RETURN(table, p.key());
      if (!p.eat(']')) return p.error("expected ']' after the table name");
      if (!p.at_end_or_comment()) return p.error("unexpected text after the table name");
      continue;
    }
    KILN_ASSIGN_OR_RETURN(std::string key, p.key());
    if (!p.eat('=')) return p.error(str_cat("expected '=' after '", key, "'"));
    TomlValue v;
    v.line = line_no;
    KILN_RETURN_IF_ERROR(p.value(&v));
    if (!p.at_end_or_comment()) return p.error("unexpected text after the value");
    std::string full = table.empty() ? key : table + "." + key;
    if (out.count(full) != 0) return p.error(str_cat("'", full, "' is set twice"));
    out[full] = std::move(v);
  }
  return out;
}

Result<std::map<std::string, TomlValue>> load_toml(const std::filesystem::path& path) {
  KILN_ASSIGN_OR_RETURN(std::string text, read_file(path));
  return parse_toml(text, path.string());
}

}  // namespace kiln::http
