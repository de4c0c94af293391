// Regular expressions for tokenizer patterns (PCRE2 with UTF, Unicode properties and JIT).
//
// Hugging Face `tokenizers` compiles its patterns with Oniguruma, whose `\s`, `\w` and `\h` mean
// something else than PCRE2's; compile() rewrites those escapes so that PCRE2 matches what
// Oniguruma would, and find_all() iterates matches the way the Rust `onig` crate does.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "kiln/core/status.h"

namespace kiln::text {

class Regex {
 public:
  // `pattern` in Oniguruma (Ruby) syntax as found in tokenizer.json.
  static Result<Regex> compile(std::string_view pattern);

  // Appends the [start, end) byte ranges of successive matches in `s` (valid UTF-8) to `out`.
  // An empty match right after the previous match is skipped, as Oniguruma's iterator does.
  Status find_all(std::string_view s, std::vector<std::pair<size_t, size_t>>& out) const;
  const std::string& pattern() const;

  // Exposed for tests: the PCRE2 pattern that compile() builds.
  static std::string translate_onig(std::string_view pattern);

 private:
  struct Impl;
  std::shared_ptr<const Impl> impl_;
};

}  // namespace kiln::text
