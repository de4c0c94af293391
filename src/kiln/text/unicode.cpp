#include "kiln/text/unicode.h"

#include <algorithm>
#include <vector>

#include "kiln/text/unicode_tables.h"
#include "kiln/text/utf8.h"

namespace kiln::text {
namespace {

namespace u = unicode;

constexpr char32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr char32_t kLCount = 19, kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount,
                   kSCount = kLCount * kNCount;

bool in_ranges(const u::CodeRange* r, size_t n, char32_t cp) {
  const auto* end = r + n;
  const auto* it = std::upper_bound(r, end, cp, [](char32_t c, const u::CodeRange& x) { return c < x.first; });
  return it != r && cp <= (it - 1)->last;
}

const u::DecompEntry* find_decomp(char32_t cp) {
  const auto* end = u::kDecomp + u::kDecompSize;
  const auto* it = std::lower_bound(u::kDecomp, end, cp, [](const u::DecompEntry& e, char32_t c) { return e.cp < c; });
  return it != end && it->cp == cp ? it : nullptr;
}

char32_t compose_pair(char32_t a, char32_t b) {
  if (a >= kLBase && a < kLBase + kLCount && b >= kVBase && b < kVBase + kVCount)
    return kSBase + ((a - kLBase) * kVCount + (b - kVBase)) * kTCount;
  if (a >= kSBase && a < kSBase + kSCount && (a - kSBase) % kTCount == 0 && b > kTBase && b < kTBase + kTCount)
    return a + (b - kTBase);
  const auto* end = u::kCompose + u::kComposeSize;
  const auto* it = std::lower_bound(u::kCompose, end, std::pair{a, b}, [](const u::ComposeEntry& e, std::pair<char32_t, char32_t> k) {
    return e.first != k.first ? e.first < k.first : e.second < k.second;
  });
  return it != end && it->first == a && it->second == b ? it->composite : 0;
}

void decompose(char32_t cp, bool compat, std::vector<char32_t>& out) {
  if (cp >= kSBase && cp < kSBase + kSCount) {
    const char32_t s = cp - kSBase;
    out.push_back(kLBase + s / kNCount);
    out.push_back(kVBase + (s % kNCount) / kTCount);
    if (s % kTCount) out.push_back(kTBase + s % kTCount);
    return;
  }
  const u::DecompEntry* e = cp >= 0xA0 ? find_decomp(cp) : nullptr;
  if (e == nullptr) {
    out.push_back(cp);
    return;
  }
  const uint16_t off = compat ? e->compat_off : e->canon_off;
  const uint16_t len = compat ? e->compat_len : e->canon_len;
  if (len == 0) {
    out.push_back(cp);
    return;
  }
  out.insert(out.end(), u::kDecompPool + off, u::kDecompPool + off + len);
}

// Canonical ordering: a stable sort of each run of non-starters by combining class.
void reorder(std::vector<char32_t>& cps) {
  size_t i = 0;
  while (i < cps.size()) {
    if (combining_class(cps[i]) == 0) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < cps.size() && combining_class(cps[j]) != 0) ++j;
    if (j - i > 1)
      std::stable_sort(cps.begin() + static_cast<long>(i), cps.begin() + static_cast<long>(j),
                       [](char32_t a, char32_t b) { return combining_class(a) < combining_class(b); });
    i = j;
  }
}

void compose(std::vector<char32_t>& cps) {
  if (cps.empty()) return;
  size_t starter = SIZE_MAX;
  int last_ccc = -1;
  size_t w = 0;
  for (size_t r = 0; r < cps.size(); ++r) {
    const char32_t c = cps[r];
    const int ccc = combining_class(c);
    if (starter != SIZE_MAX) {
      // Blocked when a character of the same or higher class (or a starter) sits in between.
      const bool blocked = last_ccc != -1 && (last_ccc == 0 || last_ccc >= ccc);
      if (!blocked) {
        if (char32_t p = compose_pair(cps[starter], c)) {
          cps[starter] = p;
          continue;
        }
      }
    }
    if (ccc == 0) {
      starter = w;
      last_ccc = -1;
    } else {
      last_ccc = ccc;
    }
    cps[w++] = c;
  }
  cps.resize(w);
}

}  // namespace

int combining_class(char32_t cp) {
  if (cp < 0x300) return 0;
  const auto* end = u::kCombiningClass + u::kCombiningClassSize;
  const auto* it = std::upper_bound(u::kCombiningClass, end, cp,
                                    [](char32_t c, const u::CombiningClassRange& x) { return c < x.first; });
  return it != u::kCombiningClass && cp <= (it - 1)->last ? (it - 1)->ccc : 0;
}

std::string normalize(std::string_view s, NormalizationForm form) {
  const bool compat = form == NormalizationForm::kNfkc || form == NormalizationForm::kNfkd;
  const bool composed = form == NormalizationForm::kNfc || form == NormalizationForm::kNfkc;
  // Quick check: text made only of characters that cannot change (ASCII above all) is returned as is.
  bool stable = true;
  for (size_t i = 0; i < s.size() && stable;) {
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    const char32_t cp = next_code_point(s, i);
    if (composed) {
      stable = compat ? !in_ranges(u::kNfkcUnstable, u::kNfkcUnstableSize, cp)
                      : !in_ranges(u::kNfcUnstable, u::kNfcUnstableSize, cp);
    } else {
      const u::DecompEntry* e = find_decomp(cp);
      stable = combining_class(cp) == 0 && !(cp >= kSBase && cp < kSBase + kSCount) &&
               (e == nullptr || (!compat && e->canon_len == 0));
    }
  }
  if (stable) return std::string(s);
  std::vector<char32_t> cps;
  cps.reserve(s.size());
  for (size_t i = 0; i < s.size();) decompose(next_code_point(s, i), compat, cps);
  reorder(cps);
  if (composed) compose(cps);
  std::string out;
  out.reserve(s.size() + 8);
  for (char32_t c : cps) append_utf8(out, c);
  return out;
}

bool is_white_space(char32_t cp) {
  switch (cp) {
    case 0x09: case 0x0A: case 0x0B: case 0x0C: case 0x0D: case 0x20: case 0x85: case 0xA0:
    case 0x1680: case 0x2028: case 0x2029: case 0x202F: case 0x205F: case 0x3000:
      return true;
    default:
      return cp >= 0x2000 && cp <= 0x200A;
  }
}

bool is_word_char(char32_t cp) {
  if (cp < 0x80) return (cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') || cp == '_';
  return in_ranges(u::kWordRanges, u::kWordRangesSize, cp);
}

const char* unicode_version() { return u::kUnicodeVersion; }

}  // namespace kiln::text
