#include "kiln/text/pre_tokenizer.h"

#include <array>

#include "kiln/text/normalizer.h"
#include "kiln/text/unicode.h"
#include "kiln/text/utf8.h"

namespace kiln::text {
namespace {

struct ByteLevelTables {
  std::array<std::string, 256> to_char;
  std::array<int16_t, 324> from_cp;  // code points 0..323 -> byte, -1 when not a byte-level char
  ByteLevelTables() {
    from_cp.fill(-1);
    int extra = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
      const char32_t cp = printable ? static_cast<char32_t>(b) : static_cast<char32_t>(256 + extra++);
      append_utf8(to_char[static_cast<size_t>(b)], cp);
      from_cp[cp] = static_cast<int16_t>(b);
    }
  }
};

const ByteLevelTables& byte_tables() {
  static const ByteLevelTables t;
  return t;
}

// The GPT-2 split that ByteLevel applies when use_regex is true.
const Regex& gpt2_regex() {
  static const Regex r =
      Regex::compile("'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+").value();
  return r;
}

template <typename Pred>
void char_matches(std::string_view s, Pred pred, std::vector<std::pair<size_t, size_t>>& out) {
  for (size_t i = 0; i < s.size();) {
    const size_t start = i;
    const char32_t cp = next_code_point(s, i);
    if (pred(cp)) out.emplace_back(start, i);
  }
}

void literal_matches(std::string_view s, std::string_view lit, std::vector<std::pair<size_t, size_t>>& out) {
  if (lit.empty()) return;
  for (size_t pos = s.find(lit); pos != std::string_view::npos; pos = s.find(lit, pos + lit.size()))
    out.emplace_back(pos, pos + lit.size());
}

// False when the pattern has what could make a match depend on the text before the search's
// start: a lookbehind, an anchor, a word boundary, \G or \K (outside character classes, where
// '^' negates, '$' is literal and \b is a backspace).
bool looks_only_ahead(std::string_view p) {
  bool in_class = false;
  for (size_t i = 0; i < p.size(); ++i) {
    const char c = p[i];
    if (c == '\\' && i + 1 < p.size()) {
      const char e = p[++i];
      if (!in_class && std::string_view("bBAGzZK").find(e) != std::string_view::npos) return false;
      continue;
    }
    if (in_class) {
      if (c == ']') in_class = false;
      continue;
    }
    if (c == '[') {
      in_class = true;
      if (i + 1 < p.size() && p[i + 1] == '^') ++i;
      if (i + 1 < p.size() && p[i + 1] == ']') ++i;  // a leading ']' is literal
      continue;
    }
    if (c == '^' || c == '$') return false;
    if (p.substr(i, 4) == "(?<=" || p.substr(i, 4) == "(?<!") return false;
  }
  return true;
}

bool is_numeric(char32_t cp) {
  // Rust's char::is_numeric (Nd, Nl, No), via PCRE2's property tables.
  static const Regex r = Regex::compile("\\p{N}").value();
  if (cp < 0x80) return cp >= '0' && cp <= '9';
  std::string s;
  append_utf8(s, cp);
  std::vector<std::pair<size_t, size_t>> m;
  return r.find_all(s, m).is_ok() && !m.empty();
}

}  // namespace

const std::string& byte_level_char(unsigned char b) { return byte_tables().to_char[b]; }

bool byte_level_decode(std::string_view token, std::string& out) {
  const auto& t = byte_tables();
  const size_t start = out.size();
  for (size_t i = 0; i < token.size();) {
    const char32_t cp = next_code_point(token, i);
    if (cp >= t.from_cp.size() || t.from_cp[cp] < 0) {
      out.resize(start);
      return false;
    }
    out.push_back(static_cast<char>(t.from_cp[cp]));
  }
  return true;
}

void split_by_matches(size_t size, const std::vector<std::pair<size_t, size_t>>& matches, SplitBehavior behavior,
                      bool invert, std::vector<std::pair<size_t, size_t>>& out) {
  // (range, is_match) over the whole input, as Pattern::find_matches returns.
  std::vector<std::pair<std::pair<size_t, size_t>, bool>> parts;
  if (size == 0) {
    parts.push_back({{0, 0}, false});
  } else {
    size_t prev = 0;
    for (const auto& [a, b] : matches) {
      if (prev != a) parts.push_back({{prev, a}, false});
      parts.push_back({{a, b}, true});
      prev = b;
    }
    if (prev != size) parts.push_back({{prev, size}, false});
  }
  if (invert)
    for (auto& p : parts) p.second = !p.second;
  switch (behavior) {
    case SplitBehavior::kIsolated:
      for (const auto& p : parts) out.push_back(p.first);
      break;
    case SplitBehavior::kRemoved:
      for (const auto& p : parts)
        if (!p.second) out.push_back(p.first);
      break;
    case SplitBehavior::kContiguous: {
      const size_t base = out.size();
      bool previous = false;
      for (const auto& p : parts) {
        if (p.second == previous && out.size() > base) {
          out.back().second = p.first.second;
        } else {
          out.push_back(p.first);
        }
        previous = p.second;
      }
      break;
    }
    case SplitBehavior::kMergedWithPrevious: {
      const size_t base = out.size();
      bool previous = false;
      for (const auto& p : parts) {
        if (p.second && !previous && out.size() > base) {
          out.back().second = p.first.second;
        } else {
          out.push_back(p.first);
        }
        previous = p.second;
      }
      break;
    }
    case SplitBehavior::kMergedWithNext: {
      std::vector<std::pair<size_t, size_t>> rev;
      bool previous = false;
      for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
        if (it->second && !previous && !rev.empty()) {
          rev.back().first = it->first.first;
        } else {
          rev.push_back(it->first);
        }
        previous = it->second;
      }
      out.insert(out.end(), rev.rbegin(), rev.rend());
      break;
    }
  }
}

Status PreTokenizer::run(std::string_view segment, bool at_origin, std::vector<Piece>& out) const {
  std::vector<Piece> cur;
  cur.push_back(Piece{std::string(segment), at_origin});
  return run_steps(0, std::move(cur), out);
}

Status PreTokenizer::run_after_first(Piece piece, std::vector<Piece>& out) const {
  std::vector<Piece> cur;
  cur.push_back(std::move(piece));
  return run_steps(1, std::move(cur), out);
}

const Regex* PreTokenizer::windowable_split() const {
  if (steps_.empty()) return nullptr;
  const PreTokenizerStep& first = steps_.front();
  if (first.kind != PreTokenizerStep::Kind::kSplit || !first.regex || first.invert ||
      first.behavior != SplitBehavior::kIsolated)
    return nullptr;
  return looks_only_ahead(first.regex->pattern()) ? &*first.regex : nullptr;
}

bool PreTokenizer::keeps_all_text() const {
  for (const PreTokenizerStep& step : steps_) {
    if (step.kind == PreTokenizerStep::Kind::kWhitespace || step.kind == PreTokenizerStep::Kind::kWhitespaceSplit)
      return false;
    if (step.kind == PreTokenizerStep::Kind::kSplit && step.behavior == SplitBehavior::kRemoved) return false;
  }
  return true;
}

Status PreTokenizer::run_steps(size_t first_step, std::vector<Piece> cur, std::vector<Piece>& out) const {
  std::vector<Piece> next;
  std::vector<std::pair<size_t, size_t>> matches, ranges;
  for (size_t k = first_step; k < steps_.size(); ++k) {
    const PreTokenizerStep& step = steps_[k];
    next.clear();
    for (Piece& piece : cur) {
      const std::string& s = piece.text;
      matches.clear();
      ranges.clear();
      SplitBehavior behavior = step.behavior;
      bool invert = step.invert;
      switch (step.kind) {
        case PreTokenizerStep::Kind::kSplit:
          if (step.regex) {
            KILN_RETURN_IF_ERROR(step.regex->find_all(s, matches));
          } else {
            literal_matches(s, step.literal, matches);
          }
          break;
        case PreTokenizerStep::Kind::kWhitespace:
          KILN_RETURN_IF_ERROR(step.regex->find_all(s, matches));
          behavior = SplitBehavior::kRemoved;
          invert = true;
          break;
        case PreTokenizerStep::Kind::kWhitespaceSplit:
          char_matches(s, is_white_space, matches);
          behavior = SplitBehavior::kRemoved;
          invert = false;
          break;
        case PreTokenizerStep::Kind::kDigits:
          char_matches(s, is_numeric, matches);
          behavior = step.individual_digits ? SplitBehavior::kIsolated : SplitBehavior::kContiguous;
          invert = false;
          break;
        case PreTokenizerStep::Kind::kByteLevel: {
          std::string prefixed;
          const std::string* src = &s;
          if (step.add_prefix_space && (s.empty() || s[0] != ' ')) {
            prefixed = " " + s;
            src = &prefixed;
          }
          if (step.use_regex) {
            KILN_RETURN_IF_ERROR(gpt2_regex().find_all(*src, matches));
            split_by_matches(src->size(), matches, SplitBehavior::kIsolated, false, ranges);
          } else {
            ranges.emplace_back(0, src->size());
          }
          const bool prefix_added = src == &prefixed;
          for (const auto& [a, b] : ranges) {
            if (a == b) continue;
            Piece p;
            // A prepended space maps back to the piece's first character, so origin is kept.
            p.at_origin = piece.at_origin && (a == 0 || (prefix_added && a == 1));
            p.text.reserve((b - a) * 2);
            for (size_t i = a; i < b; ++i) p.text.append(byte_level_char(static_cast<unsigned char>((*src)[i])));
            next.push_back(std::move(p));
          }
          continue;
        }
        case PreTokenizerStep::Kind::kMetaspace: {
          std::string t = replace_all(s, " ", step.replacement);
          const bool starts = t.compare(0, step.replacement.size(), step.replacement) == 0;
          if (!starts && (step.prepend_scheme == PrependScheme::kAlways ||
                          (step.prepend_scheme == PrependScheme::kFirst && piece.at_origin)))
            t.insert(0, step.replacement);
          if (step.split) {
            literal_matches(t, step.replacement, matches);
            split_by_matches(t.size(), matches, SplitBehavior::kMergedWithNext, false, ranges);
          } else {
            ranges.emplace_back(0, t.size());
          }
          for (const auto& [a, b] : ranges)
            if (a != b) next.push_back(Piece{t.substr(a, b - a), piece.at_origin && a == 0});
          continue;
        }
      }
      split_by_matches(s.size(), matches, behavior, invert, ranges);
      for (const auto& [a, b] : ranges)
        if (a != b) next.push_back(Piece{s.substr(a, b - a), piece.at_origin && a == 0});
    }
    cur.swap(next);
  }
  for (Piece& p : cur)
    if (!p.text.empty()) out.push_back(std::move(p));
  return Status::ok();
}

}  // namespace kiln::text
