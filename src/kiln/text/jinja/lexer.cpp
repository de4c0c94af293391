#include "kiln/text/jinja/lexer.h"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "kiln/core/str.h"
#include "kiln/text/jinja/unicode.h"

namespace kiln::text::jinja {
namespace {

// Python's newline handling: \r\n, \r and \n all become \n; one trailing newline is dropped
// (keep_trailing_newline=False).
std::string normalize_newlines(std::string_view src) {
  std::string out;
  out.reserve(src.size());
  for (size_t i = 0; i < src.size(); ++i) {
    if (src[i] == '\r') {
      out.push_back('\n');
      if (i + 1 < src.size() && src[i + 1] == '\n') ++i;
    } else {
      out.push_back(src[i]);
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

// Length of the Python-whitespace run starting at pos.
size_t space_run(std::string_view s, size_t pos) {
  size_t i = pos;
  while (i < s.size()) {
    size_t next = i;
    if (!py_isspace(utf8_next(s, &next))) break;
    i = next;
  }
  return i - pos;
}

std::string rstrip_py(std::string_view s) {
  auto offs = utf8_offsets(s);
  size_t n = offs.size() - 1;
  while (n > 0) {
    size_t p = offs[n - 1];
    if (!py_isspace(utf8_next(s, &p))) break;
    --n;
  }
  return std::string(s.substr(0, offs[n]));
}

bool all_space(std::string_view s) { return !s.empty() && space_run(s, 0) == s.size(); }

bool is_name_start(unsigned char c) { return c == '_' || std::isalpha(c) || c >= 0x80; }
bool is_name_char(unsigned char c) { return is_name_start(c) || std::isdigit(c); }

class Lexer {
 public:
  Lexer(std::string source, const LexOptions& opts) : src_(std::move(source)), opts_(opts) {}

  Result<std::vector<Token>> run() {
    while (pos_ < src_.size()) {
      KILN_RETURN_IF_ERROR(root_step());
    }
    push(TokenType::kEof, "");
    return std::move(tokens_);
  }

 private:
  Status fail(const std::string& what) const { return invalid_argument(str_cat("line ", line_, ": ", what)); }

  void push(TokenType type, std::string text) {
    Token t;
    t.type = type;
    t.text = std::move(text);
    t.line = line_;
    tokens_.push_back(std::move(t));
  }

  void advance_to(size_t p) {
    for (size_t i = pos_; i < p; ++i)
      if (src_[i] == '\n') ++line_;
    pos_ = p;
  }

  // Emits the data before a tag, applying `-` stripping or lstrip_blocks as jinja2 does.
  void emit_data(std::string_view text, char sign, bool lstrip_allowed) {
    std::string data;
    if (sign == '-') {
      data = rstrip_py(text);
    } else if (sign != '+' && opts_.lstrip_blocks && lstrip_allowed) {
      size_t nl = text.rfind('\n');
      size_t l_pos = nl == std::string_view::npos ? 0 : nl + 1;
      if ((l_pos > 0 || line_starting_) && all_space(text.substr(l_pos))) data = std::string(text.substr(0, l_pos));
      else data = std::string(text);
    } else {
      data = std::string(text);
    }
    if (!data.empty()) push(TokenType::kData, std::move(data));
  }

  // Matches `{%[-+]?\s*raw\s*(-%}\s*|%})` at pos; returns its end or npos.
  size_t match_raw_begin(size_t p) const {
    size_t i = p + 2;
    if (i < src_.size() && (src_[i] == '-' || src_[i] == '+')) ++i;
    i += space_run(src_, i);
    if (src_.compare(i, 3, "raw") != 0) return std::string::npos;
    i += 3;
    i += space_run(src_, i);
    if (src_.compare(i, 3, "-%}") == 0) return i + 3 + space_run(src_, i + 3);
    if (src_.compare(i, 2, "%}") == 0) return i + 2;
    return std::string::npos;
  }

  Status root_step() {
    size_t tag = src_.find('{', pos_);
    while (tag != std::string::npos && tag + 1 < src_.size() && src_[tag + 1] != '%' && src_[tag + 1] != '{' &&
           src_[tag + 1] != '#')
      tag = src_.find('{', tag + 1);
    if (tag == std::string::npos || tag + 1 >= src_.size()) {
      push(TokenType::kData, src_.substr(pos_));
      advance_to(src_.size());
      return Status::ok();
    }
    std::string_view text(src_.data() + pos_, tag - pos_);
    char kind = src_[tag + 1];
    size_t after = tag + 2;
    char sign = (after < src_.size() && (src_[after] == '-' || src_[after] == '+')) ? src_[after] : '\0';
    if (kind == '%') {
      size_t raw_end = match_raw_begin(tag);
      if (raw_end != std::string::npos) {
        emit_data(text, sign, true);
        advance_to(raw_end);
        line_starting_ = src_[raw_end - 1] == '\n';
        return raw_body();
      }
    }
    emit_data(text, sign, kind != '{');
    if (sign) ++after;
    advance_to(after);
    line_starting_ = false;
    if (kind == '#') return comment_body();
    push(kind == '%' ? TokenType::kBlockBegin : TokenType::kVariableBegin, "");
    return tag_body(kind == '%');
  }

  Status comment_body() {
    size_t start = pos_;
    size_t end = src_.find("#}", start);
    if (end == std::string::npos) return fail("Missing end of comment tag");
    char sign = end > start ? src_[end - 1] : '\0';
    size_t stop = end + 2;
    if (sign == '-') stop += space_run(src_, stop);
    else if (sign != '+' && opts_.trim_blocks && stop < src_.size() && src_[stop] == '\n') ++stop;
    advance_to(stop);
    line_starting_ = src_[stop - 1] == '\n';
    return Status::ok();
  }

  Status raw_body() {
    // (.*?)({%[-+]?\s*endraw\s*(+%}|-%}\s*|%}\n?))
    size_t search = pos_;
    while (true) {
      size_t tag = src_.find("{%", search);
      if (tag == std::string::npos) return fail("Missing end of raw directive");
      size_t i = tag + 2;
      char sign = '\0';
      if (i < src_.size() && (src_[i] == '-' || src_[i] == '+')) sign = src_[i++];
      i += space_run(src_, i);
      if (src_.compare(i, 6, "endraw") != 0) {
        search = tag + 1;
        continue;
      }
      i += 6;
      i += space_run(src_, i);
      size_t stop;
      if (src_.compare(i, 3, "+%}") == 0) {
        stop = i + 3;
      } else if (src_.compare(i, 3, "-%}") == 0) {
        stop = i + 3 + space_run(src_, i + 3);
      } else if (src_.compare(i, 2, "%}") == 0) {
        stop = i + 2;
        if (opts_.trim_blocks && stop < src_.size() && src_[stop] == '\n') ++stop;
      } else {
        search = tag + 1;
        continue;
      }
      emit_data(std::string_view(src_.data() + pos_, tag - pos_), sign, true);
      advance_to(stop);
      line_starting_ = src_[stop - 1] == '\n';
      return Status::ok();
    }
  }

  // Tries the end-of-tag rule; returns true when the tag ended.
  bool match_tag_end(bool block) {
    size_t p = pos_;
    if (block) {
      size_t stop = std::string::npos;
      if (src_.compare(p, 3, "+%}") == 0) {
        stop = p + 3;
      } else if (src_.compare(p, 3, "-%}") == 0) {
        stop = p + 3 + space_run(src_, p + 3);
      } else if (src_.compare(p, 2, "%}") == 0) {
        stop = p + 2;
        if (opts_.trim_blocks && stop < src_.size() && src_[stop] == '\n') ++stop;
      }
      if (stop == std::string::npos) return false;
      push(TokenType::kBlockEnd, "");
      advance_to(stop);
      line_starting_ = src_[stop - 1] == '\n';
      return true;
    }
    size_t stop = std::string::npos;
    if (src_.compare(p, 3, "-}}") == 0) stop = p + 3 + space_run(src_, p + 3);
    else if (src_.compare(p, 2, "}}") == 0) stop = p + 2;
    if (stop == std::string::npos) return false;
    push(TokenType::kVariableEnd, "");
    advance_to(stop);
    line_starting_ = src_[stop - 1] == '\n';
    return true;
  }

  Status tag_body(bool block) {
    std::vector<char> balance;
    while (true) {
      if (pos_ >= src_.size()) return fail("unexpected end of template, expected end of tag");
      if (balance.empty() && match_tag_end(block)) return Status::ok();
      size_t ws = space_run(src_, pos_);
      if (ws) {
        advance_to(pos_ + ws);
        continue;
      }
      auto c = static_cast<unsigned char>(src_[pos_]);
      if (std::isdigit(c)) {
        KILN_RETURN_IF_ERROR(number());
      } else if (is_name_start(c)) {
        size_t e = pos_;
        while (e < src_.size() && is_name_char(static_cast<unsigned char>(src_[e]))) ++e;
        push(TokenType::kName, src_.substr(pos_, e - pos_));
        advance_to(e);
      } else if (c == '\'' || c == '"') {
        KILN_RETURN_IF_ERROR(string_literal());
      } else {
        static const char* const kOps[] = {"**", "//", "==", "!=", ">=", "<=", "+", "-", "/", "*", "%", "~", "[",
                                           "]",  "(",  ")",  "{",  "}",  ">",  "<", "=", ".", ":", "|", ",", ";"};
        std::string op;
        for (const char* o : kOps) {
          if (src_.compare(pos_, std::char_traits<char>::length(o), o) == 0) {
            op = o;
            break;
          }
        }
        if (op.empty()) {
          size_t p = pos_;
          std::string ch;
          utf8_append(&ch, utf8_next(src_, &p));
          return fail("unexpected char '" + ch + "'");
        }
        if (op == "{" || op == "(" || op == "[") {
          balance.push_back(op == "{" ? '}' : op == "(" ? ')' : ']');
        } else if (op == "}" || op == ")" || op == "]") {
          if (balance.empty()) return fail("unexpected '" + op + "'");
          if (balance.back() != op[0]) return fail(str_cat("unexpected '", op, "', expected '", balance.back(), "'"));
          balance.pop_back();
        }
        push(TokenType::kOperator, op);
        advance_to(pos_ + op.size());
      }
    }
  }

  // Digits with optional single underscores between them.
  size_t digits(size_t p, bool (*ok)(char)) const {
    size_t i = p;
    if (i >= src_.size() || !ok(src_[i])) return p;
    ++i;
    while (i < src_.size()) {
      if (ok(src_[i])) {
        ++i;
      } else if (src_[i] == '_' && i + 1 < src_.size() && ok(src_[i + 1])) {
        i += 2;
      } else {
        break;
      }
    }
    return i;
  }

  Status number() {
    auto dec = [](char ch) { return ch >= '0' && ch <= '9'; };
    size_t p = pos_;
    bool after_dot = p > 0 && src_[p - 1] == '.';
    // float: digits ((.digits)? e[+-]?digits | .digits)
    size_t int_end = digits(p, dec);
    if (!after_dot) {
      size_t e = int_end;
      bool is_float = false;
      if (e < src_.size() && src_[e] == '.' && digits(e + 1, dec) > e + 1) {
        e = digits(e + 1, dec);
        is_float = true;
      }
      if (e < src_.size() && (src_[e] == 'e' || src_[e] == 'E')) {
        size_t x = e + 1;
        if (x < src_.size() && (src_[x] == '+' || src_[x] == '-')) ++x;
        size_t xe = digits(x, dec);
        if (xe > x) {
          e = xe;
          is_float = true;
        }
      }
      if (is_float) {
        std::string text;
        for (size_t i = p; i < e; ++i)
          if (src_[i] != '_') text.push_back(src_[i]);
        Token t;
        t.type = TokenType::kFloat;
        t.text = text;
        t.float_value = std::strtod(text.c_str(), nullptr);
        t.line = line_;
        tokens_.push_back(std::move(t));
        advance_to(e);
        return Status::ok();
      }
    }
    // integer: 0b/0o/0x prefixes, [1-9](_?\d)*, 0(_?0)*
    int base = 10;
    size_t start = p;
    size_t end;
    if (src_[p] == '0' && p + 1 < src_.size() && std::strchr("bBoOxX", src_[p + 1]) && src_[p + 1] != '\0') {
      char b = static_cast<char>(std::tolower(static_cast<unsigned char>(src_[p + 1])));
      base = b == 'b' ? 2 : b == 'o' ? 8 : 16;
      size_t i = p + 2;
      auto okd = [&](char ch) {
        if (base == 2) return ch == '0' || ch == '1';
        if (base == 8) return ch >= '0' && ch <= '7';
        return std::isxdigit(static_cast<unsigned char>(ch)) != 0;
      };
      size_t j = i;
      while (j < src_.size() && (okd(src_[j]) || (src_[j] == '_' && j + 1 < src_.size() && okd(src_[j + 1])))) ++j;
      if (j == i) {
        end = p + 1;
        base = 10;
      } else {
        start = i;
        end = j;
      }
    } else if (src_[p] == '0') {
      end = p + 1;
      while (end < src_.size()) {
        if (src_[end] == '0') ++end;
        else if (src_[end] == '_' && end + 1 < src_.size() && src_[end + 1] == '0') end += 2;
        else break;
      }
    } else {
      end = int_end;
    }
    std::string text;
    for (size_t i = start; i < end; ++i)
      if (src_[i] != '_') text.push_back(src_[i]);
    Token t;
    t.type = TokenType::kInteger;
    t.text = src_.substr(p, end - p);
    auto r = std::from_chars(text.data(), text.data() + text.size(), t.int_value, base);
    if (r.ec != std::errc()) return fail("integer literal too large: " + t.text);
    t.line = line_;
    tokens_.push_back(std::move(t));
    advance_to(end);
    return Status::ok();
  }

  Status string_literal() {
    char q = src_[pos_];
    size_t i = pos_ + 1;
    std::string out;
    while (true) {
      if (i >= src_.size()) return fail("unterminated string");
      char c = src_[i];
      if (c == q) break;
      if (c != '\\') {
        out.push_back(c);
        ++i;
        continue;
      }
      if (i + 1 >= src_.size()) return fail("unterminated string");
      char e = src_[i + 1];
      i += 2;
      auto hex = [&](int n) -> Result<char32_t> {
        if (i + n > src_.size()) return fail("truncated \\x escape in string");
        char32_t v = 0;
        for (int k = 0; k < n; ++k) {
          char h = src_[i + k];
          if (!std::isxdigit(static_cast<unsigned char>(h))) return fail("truncated escape in string");
          v = v * 16 + static_cast<char32_t>(std::isdigit(static_cast<unsigned char>(h)) ? h - '0' : (std::tolower(h) - 'a' + 10));
        }
        i += n;
        if (v > 0x10FFFF) return fail("illegal Unicode character in string");
        return v;
      };
      switch (e) {
        case '\n': break;
        case '\\': out.push_back('\\'); break;
        case '\'': out.push_back('\''); break;
        case '"': out.push_back('"'); break;
        case 'a': out.push_back('\a'); break;
        case 'b': out.push_back('\b'); break;
        case 'f': out.push_back('\f'); break;
        case 'n': out.push_back('\n'); break;
        case 'r': out.push_back('\r'); break;
        case 't': out.push_back('\t'); break;
        case 'v': out.push_back('\v'); break;
        case 'x': case 'u': case 'U': {
          KILN_ASSIGN_OR_RETURN(char32_t v, hex(e == 'x' ? 2 : e == 'u' ? 4 : 8));
          utf8_append(&out, v);
          break;
        }
        case 'N': return fail("\\N{...} escapes are not supported in string literals");
        default:
          if (e >= '0' && e <= '7') {
            char32_t v = static_cast<char32_t>(e - '0');
            for (int k = 0; k < 2 && i < src_.size() && src_[i] >= '0' && src_[i] <= '7'; ++k) v = v * 8 + static_cast<char32_t>(src_[i++] - '0');
            utf8_append(&out, v);
          } else {
            out.push_back('\\');
            out.push_back(e);
          }
      }
    }
    Token t;
    t.type = TokenType::kString;
    t.text = std::move(out);
    t.line = line_;
    tokens_.push_back(std::move(t));
    advance_to(i + 1);
    return Status::ok();
  }

  std::string src_;
  LexOptions opts_;
  size_t pos_ = 0;
  int line_ = 1;
  bool line_starting_ = true;
  std::vector<Token> tokens_;
};

}  // namespace

Result<std::vector<Token>> tokenize(std::string_view source, const LexOptions& options) {
  Lexer lexer(normalize_newlines(source), options);
  return lexer.run();
}

}  // namespace kiln::text::jinja
