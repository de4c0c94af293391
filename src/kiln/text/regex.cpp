#include "kiln/text/regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "kiln/core/str.h"
#include "kiln/text/utf8.h"

namespace kiln::text {
namespace {

// Oniguruma's Unicode `\s`: tab..CR, NEL, and the separators (Zs, Zl, Zp). PCRE2's lacks NEL.
constexpr std::string_view kOnigSpace = "\\t\\n\\x{0B}\\f\\r\\x{85}\\p{Z}";
// Oniguruma's Unicode `\w`: letters, marks, decimal numbers, connector punctuation.
constexpr std::string_view kOnigWord = "\\p{L}\\p{M}\\p{Nd}\\p{Pc}";
constexpr std::string_view kOnigHex = "0-9a-fA-F";

std::string pcre2_error(int code) {
  PCRE2_UCHAR buf[256];
  pcre2_get_error_message(code, buf, sizeof(buf));
  return reinterpret_cast<const char*>(buf);
}

// Big enough for `\s+(?!\S)` over very long whitespace runs; the memory is only reserved.
constexpr size_t kJitStackMax = 64 << 20;

struct ThreadMatchState {
  pcre2_jit_stack* stack = nullptr;
  pcre2_match_context* context = nullptr;
  ThreadMatchState() {
    stack = pcre2_jit_stack_create(64 << 10, kJitStackMax, nullptr);
    context = pcre2_match_context_create(nullptr);
    if (stack != nullptr && context != nullptr) pcre2_jit_stack_assign(context, nullptr, stack);
  }
  ~ThreadMatchState() {
    if (context != nullptr) pcre2_match_context_free(context);
    if (stack != nullptr) pcre2_jit_stack_free(stack);
  }
  ThreadMatchState(const ThreadMatchState&) = delete;
  ThreadMatchState& operator=(const ThreadMatchState&) = delete;
};

ThreadMatchState& thread_match_state() {
  static thread_local ThreadMatchState state;
  return state;
}

}  // namespace

struct Regex::Impl {
  std::string pattern;
  pcre2_code* code = nullptr;
  bool jit = false;
  ~Impl() {
    if (code != nullptr) pcre2_code_free(code);
  }
};

std::string Regex::translate_onig(std::string_view p) {
  std::string out;
  out.reserve(p.size() + 16);
  bool in_class = false;
  for (size_t i = 0; i < p.size(); ++i) {
    const char c = p[i];
    if (c == '\\' && i + 1 < p.size()) {
      const char e = p[i + 1];
      std::string_view set;
      bool negate = false;
      switch (e) {
        case 's': set = kOnigSpace; break;
        case 'S': set = kOnigSpace; negate = true; break;
        case 'w': set = kOnigWord; break;
        case 'W': set = kOnigWord; negate = true; break;
        case 'h': set = kOnigHex; break;
        case 'H': set = kOnigHex; negate = true; break;
        default: break;
      }
      if (!set.empty() && !(in_class && negate)) {
        if (in_class) {
          out.append(set);
        } else {
          out.append(negate ? "[^" : "[").append(set).append("]");
        }
      } else {
        // A negated class escape inside a class has no PCRE2 spelling; PCRE2's own is close.
        out.push_back(c);
        out.push_back(e);
      }
      ++i;
      continue;
    }
    if (!in_class && c == '[') {
      in_class = true;
      out.push_back(c);
      if (i + 1 < p.size() && p[i + 1] == '^') out.push_back(p[++i]);
      if (i + 1 < p.size() && p[i + 1] == ']') out.push_back(p[++i]);  // a leading ']' is literal
      continue;
    }
    if (in_class && c == '[' && i + 1 < p.size() && p[i + 1] == ':') {  // POSIX class [:alpha:]
      const size_t end = p.find(":]", i + 2);
      if (end != std::string_view::npos) {
        out.append(p.substr(i, end + 2 - i));
        i = end + 1;
        continue;
      }
    }
    if (in_class && c == ']') in_class = false;
    out.push_back(c);
  }
  return out;
}

Result<Regex> Regex::compile(std::string_view pattern) {
  auto impl = std::make_shared<Impl>();
  impl->pattern = std::string(pattern);
  const std::string translated = translate_onig(pattern);
  int err = 0;
  PCRE2_SIZE err_off = 0;
  impl->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(translated.data()), translated.size(),
                             PCRE2_UTF | PCRE2_UCP, &err, &err_off, nullptr);
  if (impl->code == nullptr)
    return invalid_argument(str_cat("regex /", pattern, "/ does not compile at offset ", err_off, ": ", pcre2_error(err)));
  impl->jit = pcre2_jit_compile(impl->code, PCRE2_JIT_COMPLETE) == 0;
  Regex r;
  r.impl_ = std::move(impl);
  return r;
}

const std::string& Regex::pattern() const { return impl_->pattern; }

Status Regex::find_all(std::string_view s, std::vector<std::pair<size_t, size_t>>& out) const {
  ThreadMatchState& ts = thread_match_state();
  pcre2_match_data* md = pcre2_match_data_create_from_pattern(impl_->code, nullptr);
  if (md == nullptr) return resource_exhausted("regex: out of memory for match data");
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(s.data());
  size_t pos = 0;
  size_t last_match_end = SIZE_MAX;
  Status status;
  while (pos <= s.size()) {
    const int rc = impl_->jit ? pcre2_jit_match(impl_->code, subject, s.size(), pos, 0, md, ts.context)
                              : pcre2_match(impl_->code, subject, s.size(), pos, PCRE2_NO_UTF_CHECK, md, ts.context);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) {
      status = resource_exhausted(str_cat("regex /", impl_->pattern, "/ failed on a ", s.size(),
                                          "-byte piece of text: ", pcre2_error(rc)));
      break;
    }
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
    const size_t start = ov[0], end = ov[1];
    if (start == end && last_match_end == end) {
      if (pos >= s.size()) break;
      pos += utf8_char_length(static_cast<unsigned char>(s[pos]));
      continue;
    }
    out.emplace_back(start, end);
    last_match_end = end;
    pos = end;
  }
  pcre2_match_data_free(md);
  return status;
}

}  // namespace kiln::text
