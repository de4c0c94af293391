#include "kiln/grammar/json_schema_lex.h"

#include <algorithm>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "kiln/core/str.h"
#include "kiln/grammar/limits.h"
#include "kiln/grammar/regex_text.h"

namespace kiln::grammar::jsonlex {

namespace {

constexpr uint64_t kMaxRepeatCount = 100'000;

RegexId digit(RegexPool& p) { return p.chars({{'0', '9'}}); }
RegexId hex_digit(RegexPool& p) { return p.chars({{'0', '9'}, {'A', 'F'}, {'a', 'f'}}); }

// \uXXXX with the four hex digits' value in [lo, hi] (lo, hi multiples of 0x400 apart as used).
RegexId u_escape_range(RegexPool& p, uint32_t lo, uint32_t hi) {
  // Surrogate halves: D800-DBFF (high) and DC00-DFFF (low): \u[Dd][89ABab]xx and \u[Dd][C-Fc-f]xx.
  RegexId h = hex_digit(p);
  RegexId d = p.chars({{'D', 'D'}, {'d', 'd'}});
  if (lo == 0xD800 && hi == 0xDBFF) {
    return p.concat({p.literal("\\u"), d, p.chars({{'8', '9'}, {'A', 'B'}, {'a', 'b'}}), h, h});
  }
  if (lo == 0xDC00 && hi == 0xDFFF) {
    return p.concat({p.literal("\\u"), d, p.chars({{'C', 'F'}, {'c', 'f'}}), h, h});
  }
  // Everything but surrogates: first digit not D, or D followed by 0-7.
  RegexId not_d = p.chars({{'0', '9'}, {'A', 'C'}, {'E', 'F'}, {'a', 'c'}, {'e', 'f'}});
  return p.concat({p.literal("\\u"), p.alt({p.concat({not_d, h, h, h}), p.concat({d, p.chars({{'0', '7'}}), h, h})})});
}

RegexId escape_of(RegexPool& p, uint32_t c) {
  switch (c) {
    case '"': return p.literal("\\\"");
    case '\\': return p.literal("\\\\");
    case '\b': return p.literal("\\b");
    case '\f': return p.literal("\\f");
    case '\n': return p.literal("\\n");
    case '\r': return p.literal("\\r");
    case '\t': return p.literal("\\t");
    default: {
      static const char* kHex = "0123456789abcdef";
      std::string s = "\\u00";
      s += kHex[c >> 4];
      s += kHex[c & 15];
      return p.literal(s);
    }
  }
}

const std::vector<CharRange>& raw_ranges() {
  static const std::vector<CharRange> r = complement_ranges({{'"', '"'}, {'\\', '\\'}, {0, 0x1F}});
  return r;
}

// The ranges of `a` that are also in `b` (both normalized).
std::vector<CharRange> intersect(const std::vector<CharRange>& a, const std::vector<CharRange>& b) {
  std::vector<CharRange> out;
  for (const CharRange& x : a) {
    for (const CharRange& y : b) {
      uint32_t lo = std::max(x.lo, y.lo), hi = std::min(x.hi, y.hi);
      if (lo <= hi) out.push_back({lo, hi});
    }
  }
  return normalize_ranges(std::move(out));
}

// The escaped forms of the characters of `ranges` that cannot appear raw.
std::vector<RegexId> escapes_in(RegexPool& p, const std::vector<CharRange>& ranges) {
  std::vector<RegexId> out;
  for (const CharRange& r : ranges) {
    for (uint32_t c = r.lo; c <= std::min<uint32_t>(r.hi, 0x5C); ++c) {
      if (c < 0x20 || c == '"' || c == '\\') out.push_back(escape_of(p, c));
    }
  }
  return out;
}

uint64_t sat_add(uint64_t a, uint64_t b) { return (a >= kUnbounded || b >= kUnbounded) ? kUnbounded : std::min<uint64_t>(a + b, kUnbounded); }
uint64_t sat_mul(uint64_t a, uint64_t b) {
  if (a == 0 || b == 0) return 0;
  if (a >= kUnbounded || b >= kUnbounded) return kUnbounded;
  return std::min<uint64_t>(a * b, kUnbounded);
}

}  // namespace

RegexId string_char(RegexPool& p) {
  RegexId raw = p.chars(raw_ranges());
  RegexId short_escape = p.concat({p.literal("\\"), p.chars({{'"', '"'}, {'\\', '\\'}, {'/', '/'}, {'b', 'b'}, {'f', 'f'}, {'n', 'n'}, {'r', 'r'}, {'t', 't'}})});
  RegexId pair = p.concat({u_escape_range(p, 0xD800, 0xDBFF), u_escape_range(p, 0xDC00, 0xDFFF)});
  return p.alt({raw, short_escape, u_escape_range(p, 0, 0xFFFF), pair});
}

RegexId string_of_length(RegexPool& p, uint32_t min, uint32_t max) {
  return p.concat({p.literal("\""), p.repeat(string_char(p), min, max), p.literal("\"")});
}

RegexId encode_canonical(RegexPool& p, RegexId decoded) {
  std::unordered_map<RegexId, RegexId> memo;
  auto go = [&](auto& self, RegexId id) -> RegexId {
    if (auto it = memo.find(id); it != memo.end()) return it->second;
    RegexNode n = p.node(id);  // a copy: the pool grows below
    RegexId out = id;
    switch (n.kind) {
      case RegexNode::Kind::kNothing:
      case RegexNode::Kind::kEmpty: break;
      case RegexNode::Kind::kChars: {
        std::vector<RegexId> options = escapes_in(p, n.ranges);
        options.push_back(p.chars(intersect(n.ranges, raw_ranges())));
        out = p.alt(std::move(options));
        break;
      }
      case RegexNode::Kind::kBytes: {
        // Bytes from 0x80 are parts of multi-byte characters written as bytes: kept as they are.
        std::vector<CharRange> ascii = intersect(n.ranges, {{0, 0x7F}});
        std::vector<RegexId> options = escapes_in(p, ascii);
        std::vector<CharRange> keep = intersect(n.ranges, {{0x80, 0xFF}});
        for (const CharRange& r : intersect(ascii, raw_ranges())) keep.push_back(r);
        options.push_back(p.bytes(std::move(keep)));
        out = p.alt(std::move(options));
        break;
      }
      case RegexNode::Kind::kConcat: {
        std::vector<RegexId> parts;
        for (RegexId c : n.children) parts.push_back(self(self, c));
        out = p.concat(std::move(parts));
        break;
      }
      case RegexNode::Kind::kAlt: {
        std::vector<RegexId> parts;
        for (RegexId c : n.children) parts.push_back(self(self, c));
        out = p.alt(std::move(parts));
        break;
      }
      case RegexNode::Kind::kRepeat: out = p.repeat(self(self, n.children[0]), n.min, n.max); break;
    }
    memo.emplace(id, out);
    return out;
  };
  return go(go, decoded);
}

LengthBounds length_bounds(const RegexPool& p, RegexId r) {
  std::unordered_map<RegexId, LengthBounds> memo;
  auto go = [&](auto& self, RegexId id) -> LengthBounds {
    if (auto it = memo.find(id); it != memo.end()) return it->second;
    const RegexNode& n = p.node(id);
    LengthBounds b;
    switch (n.kind) {
      case RegexNode::Kind::kNothing: b = {1, 0}; break;
      case RegexNode::Kind::kEmpty: b = {0, 0}; break;
      case RegexNode::Kind::kChars: b = {1, 1}; break;
      case RegexNode::Kind::kBytes: {
        // A continuation byte continues a character counted at its lead byte.
        bool continuation = !n.ranges.empty() && n.ranges.front().lo >= 0x80 && n.ranges.back().hi <= 0xBF;
        b = continuation ? LengthBounds{0, 0} : LengthBounds{1, 1};
        break;
      }
      case RegexNode::Kind::kConcat:
        b = {0, 0};
        for (RegexId c : n.children) {
          LengthBounds x = self(self, c);
          if (x.min > x.max) return memo[id] = LengthBounds{1, 0};
          b.min = sat_add(b.min, x.min);
          b.max = sat_add(b.max, x.max);
        }
        break;
      case RegexNode::Kind::kAlt: {
        b = {kUnbounded, 0};
        bool any = false;
        for (RegexId c : n.children) {
          LengthBounds x = self(self, c);
          if (x.min > x.max) continue;
          any = true;
          b.min = std::min(b.min, x.min);
          b.max = std::max(b.max, x.max);
        }
        if (!any) b = {1, 0};
        break;
      }
      case RegexNode::Kind::kRepeat: {
        LengthBounds x = self(self, n.children[0]);
        if (x.min > x.max) {
          b = n.min == 0 ? LengthBounds{0, 0} : LengthBounds{1, 0};
        } else {
          b.min = sat_mul(x.min, n.min);
          b.max = x.max == 0 ? 0 : sat_mul(x.max, n.max);
        }
        break;
      }
    }
    return memo[id] = b;
  };
  return go(go, r);
}

RegexId fit_length(RegexPool& p, RegexId r, uint64_t min, uint64_t max, bool* exact) {
  LengthBounds b = length_bounds(p, r);
  if (b.min > b.max || b.min > max || b.max < min) return p.nothing();
  if (b.min >= min && b.max <= max) return r;
  RegexNode n = p.node(r);  // a copy: the pool grows below
  switch (n.kind) {
    case RegexNode::Kind::kAlt: {
      std::vector<RegexId> options;
      for (RegexId c : n.children) options.push_back(fit_length(p, c, min, max, exact));
      return p.alt(std::move(options));
    }
    case RegexNode::Kind::kConcat: {
      // Give each part a length range: at least its minimum, raised in order until the total
      // reaches `min`, then the room below `max` shared evenly among the parts that vary. With one
      // varying part this is exact; with several it keeps a subset of the strings.
      std::vector<LengthBounds> c(n.children.size()), want(n.children.size());
      size_t variable = 0;
      for (size_t i = 0; i < c.size(); ++i) {
        c[i] = length_bounds(p, n.children[i]);
        want[i] = {c[i].min, c[i].min};
        variable += c[i].min != c[i].max ? 1 : 0;
      }
      if (variable > 1) *exact = false;
      uint64_t deficit = min > b.min ? min - b.min : 0;
      for (size_t i = 0; i < c.size() && deficit > 0; ++i) {
        uint64_t take = std::min(deficit, c[i].max - c[i].min);
        want[i].min += take;
        want[i].max += take;
        deficit -= take;
      }
      uint64_t total = 0;
      for (const LengthBounds& w : want) total = sat_add(total, w.max);
      uint64_t slack = max >= kUnbounded ? kUnbounded : max - std::min(max, total);
      uint64_t share = slack >= kUnbounded ? kUnbounded : slack / std::max<size_t>(variable, 1);
      for (size_t i = 0; i < c.size(); ++i) {
        if (c[i].min == c[i].max) continue;
        uint64_t add = std::min(share, c[i].max - want[i].max);
        want[i].max = sat_add(want[i].max, add);
        if (slack < kUnbounded) slack -= add;
      }
      for (size_t i = 0; i < c.size() && slack > 0 && slack < kUnbounded; ++i) {  // the remainder
        uint64_t add = std::min(slack, c[i].max - want[i].max);
        want[i].max += add;
        slack -= add;
      }
      std::vector<RegexId> parts;
      for (size_t i = 0; i < c.size(); ++i) parts.push_back(fit_length(p, n.children[i], want[i].min, want[i].max, exact));
      return p.concat(std::move(parts));
    }
    case RegexNode::Kind::kRepeat: {
      RegexId child = n.children[0];
      LengthBounds c = length_bounds(p, child);
      uint64_t copies = std::max<uint64_t>(n.min, 1);
      uint64_t per_copy = max >= kUnbounded ? kUnbounded : max / copies;
      if (c.max > per_copy || (c.min == 0 && min > 0)) {
        // Bound the child first, so that the fewest copies fit (a subset when it varies).
        if (per_copy == 0) return n.min == 0 && min == 0 ? p.empty() : p.nothing();
        if (c.min != c.max) *exact = false;
        child = fit_length(p, child, std::max<uint64_t>(c.min, min > 0 ? 1 : 0), std::min<uint64_t>(c.max, per_copy), exact);
        c = length_bounds(p, child);
        if (c.min > c.max) return n.min == 0 && min == 0 ? p.empty() : p.nothing();
      }
      // Counts whose every string fits: k * c.min >= min and k * c.max <= max.
      uint64_t lo = n.min;
      if (c.min > 0) lo = std::max<uint64_t>(lo, (min + c.min - 1) / c.min);
      uint64_t hi = n.max;
      if (c.max > 0 && max < kUnbounded) hi = std::min<uint64_t>(hi, max / c.max);
      if (lo > hi || lo > kMaxRepeatCount) return p.nothing();
      return p.repeat(child, static_cast<uint32_t>(lo), hi >= kUnbounded ? kUnbounded : static_cast<uint32_t>(hi));
    }
    default: *exact = false; return p.nothing();
  }
}

namespace {

// Digit strings of the same length between a and b (a <= b lexicographically).
RegexId same_length_range(RegexPool& p, std::string_view a, std::string_view b) {
  if (a.empty()) return p.empty();
  if (a[0] == b[0]) return p.concat({p.literal(a.substr(0, 1)), same_length_range(p, a.substr(1), b.substr(1))});
  size_t rest = a.size() - 1;
  bool a_low = a.substr(1).find_first_not_of('0') == std::string_view::npos;
  bool b_high = b.substr(1).find_first_not_of('9') == std::string_view::npos;
  RegexId any_rest = p.repeat(digit(p), static_cast<uint32_t>(rest), static_cast<uint32_t>(rest));
  std::vector<RegexId> options;
  auto lo_first = static_cast<uint32_t>(a[0]) + (a_low ? 0 : 1);
  auto hi_first = static_cast<uint32_t>(b[0]) - (b_high ? 0 : 1);
  if (!a_low) options.push_back(p.concat({p.literal(a.substr(0, 1)), same_length_range(p, a.substr(1), std::string(rest, '9'))}));
  if (lo_first <= hi_first) options.push_back(p.concat({p.chars({{lo_first, hi_first}}), any_rest}));
  if (!b_high) options.push_back(p.concat({p.literal(b.substr(0, 1)), same_length_range(p, std::string(rest, '0'), b.substr(1))}));
  return p.alt(std::move(options));
}

// Natural numbers (no leading zeros) in [lo, hi]; hi < 0 means unbounded.
RegexId natural_range(RegexPool& p, int64_t lo, int64_t hi) {
  if (hi >= 0 && lo > hi) return p.nothing();
  std::string los = std::to_string(lo);
  std::vector<RegexId> options;
  size_t max_len = hi >= 0 ? std::to_string(hi).size() : los.size();
  for (size_t len = los.size(); len <= max_len; ++len) {
    std::string a = len == los.size() ? los : "1" + std::string(len - 1, '0');
    if (len == 1 && len != los.size()) a = "0";
    std::string b = hi >= 0 && len == max_len ? std::to_string(hi) : std::string(len, '9');
    options.push_back(same_length_range(p, a, b));
  }
  if (hi < 0) {
    options.push_back(p.concat({p.chars({{'1', '9'}}), p.repeat(digit(p), static_cast<uint32_t>(los.size()), kUnbounded)}));
  }
  return p.alt(std::move(options));
}

struct IntBound {
  int64_t v = 0;
  bool exclusive = false;
};

// Non-negative values m (integer part and fraction) with lo </<= m and m </<= hi, lo >= 0.
RegexId magnitude(RegexPool& p, IntBound lo, std::optional<IntBound> hi, bool integer, uint32_t fraction_digits) {
  RegexId d = digit(p);
  uint32_t fd = fraction_digits;
  RegexId frac_any = integer ? p.empty() : p.optional(p.concat({p.literal("."), p.repeat(d, 1, fd)}));
  RegexId frac_zero = integer ? p.empty() : p.optional(p.concat({p.literal("."), p.repeat(p.literal("0"), 1, fd)}));
  RegexId frac_pos = integer ? p.nothing()
                             : p.concat({p.literal("."), p.repeat(d, 0, fd == kUnbounded ? kUnbounded : fd - 1), p.chars({{'1', '9'}}),
                                         fd == kUnbounded ? p.star(d) : p.empty()});
  int64_t any_lo = lo.exclusive ? lo.v + 1 : lo.v;
  int64_t any_hi = hi ? hi->v - 1 : -1;
  std::vector<RegexId> options;
  if (!hi || any_lo <= any_hi) {
    options.push_back(p.concat({natural_range(p, any_lo, hi ? any_hi : -1), frac_any}));
  }
  if (lo.exclusive && (!hi || hi->v > lo.v)) options.push_back(p.concat({p.literal(std::to_string(lo.v)), frac_pos}));
  if (hi && !hi->exclusive && (hi->v > lo.v || (hi->v == lo.v && !lo.exclusive))) {
    options.push_back(p.concat({p.literal(std::to_string(hi->v)), frac_zero}));
  }
  return p.alt(std::move(options));
}

Result<std::optional<IntBound>> int_bound(const std::optional<Bound>& b, bool integer, bool is_upper) {
  if (!b) return std::optional<IntBound>{};
  Decimal v = b->value;
  bool exclusive = b->exclusive;
  if (!v.is_integer()) {
    if (!integer) return invalid_argument("a non-integer bound on a number");
    // For integers, round towards the inside: x >= 2.5 is x >= 3, x <= 2.5 is x <= 2.
    int64_t whole = 0;
    Decimal trunc = v;
    trunc.digits = v.digits.size() > static_cast<size_t>(-v.exponent) ? v.digits.substr(0, v.digits.size() - static_cast<size_t>(-v.exponent)) : "";
    trunc.exponent = 0;
    if (trunc.digits.empty()) trunc.negative = false;
    if (!decimal_to_int64(trunc, &whole)) return invalid_argument("a bound out of range");
    // trunc rounds towards zero.
    bool up = !is_upper;
    if (up && !v.negative) whole += 1;
    if (!up && v.negative) whole -= 1;
    return std::optional<IntBound>{IntBound{whole, false}};
  }
  int64_t whole = 0;
  if (!decimal_to_int64(v, &whole) || whole > 999'999'999'999'999'999 || whole < -999'999'999'999'999'999) {
    return invalid_argument("a bound out of range");
  }
  return std::optional<IntBound>{IntBound{whole, exclusive}};
}

}  // namespace

RegexId any_number(RegexPool& p) {
  RegexId d = digit(p);
  RegexId intpart = p.alt({p.literal("0"), p.concat({p.chars({{'1', '9'}}), p.star(d)})});
  RegexId frac = p.optional(p.concat({p.literal("."), p.plus(d)}));
  RegexId exp = p.optional(p.concat({p.chars({{'e', 'e'}, {'E', 'E'}}), p.optional(p.chars({{'+', '+'}, {'-', '-'}})), p.plus(d)}));
  return p.concat({p.optional(p.literal("-")), intpart, frac, exp});
}

Result<RegexId> number_in_range(RegexPool& p, bool integer, const std::optional<Bound>& lo_in,
                                const std::optional<Bound>& hi_in, uint32_t fraction_digits) {
  if (!lo_in && !hi_in) {
    if (integer) return p.concat({p.optional(p.literal("-")), natural_range(p, 0, -1)});
    if (fraction_digits == kUnbounded) return any_number(p);
  }
  KILN_ASSIGN_OR_RETURN(std::optional<IntBound> lo, int_bound(lo_in, integer, false));
  KILN_ASSIGN_OR_RETURN(std::optional<IntBound> hi, int_bound(hi_in, integer, true));
  std::vector<RegexId> options;
  // x >= 0: lower max(lo, 0), upper hi.
  if (!hi || hi->v > 0 || (hi->v == 0 && !hi->exclusive)) {
    IntBound l = lo && (lo->v > 0 || (lo->v == 0 && lo->exclusive)) ? *lo : IntBound{0, false};
    options.push_back(magnitude(p, l, hi, integer, fraction_digits));
  }
  // x < 0, x = -m, m > 0: m >= -hi (or > 0), m <= -lo.
  if (!lo || lo->v < 0) {
    IntBound l = hi && hi->v < 0 ? IntBound{-hi->v, hi->exclusive} : IntBound{0, true};
    std::optional<IntBound> h;
    if (lo) h = IntBound{-lo->v, lo->exclusive};
    options.push_back(p.concat({p.literal("-"), magnitude(p, l, h, integer, fraction_digits)}));
  }
  return p.alt(std::move(options));
}

Result<RegexId> integer_multiple_of(RegexPool& p, int64_t k, bool nonnegative) {
  int64_t power = 1;
  int digits = 0;
  while (power % k != 0 && digits < 4) power *= 10, ++digits;
  if (power % k != 0) return invalid_argument(str_cat("multipleOf ", k, " (only divisors of 10^4 are supported)"));
  // Multiples below 10^digits written in full, and longer numbers ending in a multiple's digits.
  std::vector<RegexId> whole, tails;
  for (int64_t m = 0; m < power; m += k) {
    whole.push_back(p.literal(std::to_string(m)));
    std::string tail = std::to_string(m);
    tails.push_back(p.literal(std::string(static_cast<size_t>(digits) - tail.size(), '0') + tail));
  }
  RegexId longer = p.concat({p.chars({{'1', '9'}}), p.star(digit(p)), p.alt(std::move(tails))});
  RegexId magnitude_re = p.alt({p.alt(std::move(whole)), longer});
  if (nonnegative) return magnitude_re;
  // Negative multiples: the same digits after a minus sign ("-0" is 0, a multiple too).
  return p.concat({p.optional(p.literal("-")), magnitude_re});
}

namespace {
// The code points of a key; a trie of keys over code points.
std::vector<uint32_t> code_points(std::string_view s) {
  std::vector<uint32_t> out;
  for (size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    int n = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    uint32_t cp = n == 1 ? c : n == 2 ? c & 0x1F : n == 3 ? c & 0x0F : c & 0x07;
    for (int k = 1; k < n && i + static_cast<size_t>(k) < s.size(); ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + static_cast<size_t>(k)]) & 0x3F);
    out.push_back(cp);
    i += static_cast<size_t>(n);
  }
  return out;
}

struct Trie {
  bool end = false;
  std::map<uint32_t, Trie> next;
};

// Canonically encoded walks down the trie from `t` that end on a character leaving it.
RegexId leave_trie(RegexPool& p, const Trie& t) {
  std::vector<CharRange> used;
  std::vector<RegexId> options;
  for (const auto& [cp, child] : t.next) {
    used.push_back({cp, cp});
    options.push_back(p.concat({encode_canonical(p, p.chars({{cp, cp}})), leave_trie(p, child)}));
  }
  options.push_back(encode_canonical(p, p.chars(complement_ranges(used))));
  return p.alt(std::move(options));
}

// Canonically encoded walks down the trie from `t` that stop at a node that ends no value.
RegexId stay_in_trie(RegexPool& p, const Trie& t) {
  std::vector<RegexId> options;
  for (const auto& [cp, child] : t.next) {
    options.push_back(p.concat({encode_canonical(p, p.chars({{cp, cp}})), stay_in_trie(p, child)}));
  }
  if (!t.end) options.push_back(p.empty());
  return p.alt(std::move(options));
}

}  // namespace

RegexId canonical_not_in(RegexPool& p, const std::vector<std::string>& values) {
  Trie root;
  for (const std::string& v : values) {
    Trie* t = &root;
    for (uint32_t cp : code_points(v)) t = &t->next[cp];
    t->end = true;
  }
  // Canonically encoded string contents whose decoded value is not in the trie: a walk that
  // stops short of a value, or one that leaves the trie and then goes on with anything. The
  // "anything" comes once after all the ways of leaving rather than once per trie node, which
  // kept the NFA of an object with a hundred declared names under the lexer's state limit.
  RegexId anything = p.star(encode_canonical(p, p.any_char()));
  return p.alt({stay_in_trie(p, root), p.concat({leave_trie(p, root), anything})});
}

Result<RegexId> format_regex(RegexPool& p, std::string_view format) {
  // Patterns follow ajv-formats' "full" mode (RFC 3339 dates with real month lengths and leap
  // years, RFC 3986 URIs), restricted where a regular expression cannot say it all (hostname's
  // 253-character limit is kept by bounding the labels).
  static const std::string kLeap = "(?:\\d\\d(?:0[48]|[2468][048]|[13579][26])|(?:0[48]|[2468][048]|[13579][26])00)";
  static const std::string kDate =
      "(?:\\d{4}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12]\\d|3[01])|(?:0[469]|11)-(?:0[1-9]|[12]\\d|30)|02-(?:0[1-9]|1\\d|2[0-8]))|" +
      kLeap + "-02-29)";
  static const std::string kTime =
      "(?:(?:[01]\\d|2[0-3]):[0-5]\\d:[0-5]\\d(?:\\.\\d+)?(?:[Zz]|[+-](?:[01]\\d|2[0-3]):[0-5]\\d))";
  static const std::string kAz = "a-zA-Z";
  static const std::string kLabel63 = "[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?";
  static const std::string kLabel30 = "[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,28}[a-zA-Z0-9])?";
  static const std::string kPct = "%[0-9a-fA-F]{2}";
  static const std::string kUser = "(?:[a-zA-Z0-9\\-._~!$&'()*+,;=:]|" + kPct + ")";
  static const std::string kHost = "(?:[a-zA-Z0-9\\-._~!$&'()*+,;=]|" + kPct + ")";
  static const std::string kSeg = "(?:[a-zA-Z0-9\\-._~!$&'()*+,;=:@]|" + kPct + ")";
  static const std::string kQuery = "(?:[a-zA-Z0-9\\-._~!$&'()*+,;=:@/?]|" + kPct + ")";
  static const std::string kOctet = "(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)";
  std::string text;
  if (format == "date") {
    text = kDate;
  } else if (format == "time") {
    text = kTime;
  } else if (format == "date-time") {
    text = kDate + "[Tt ]" + kTime;
  } else if (format == "email") {
    std::string local = "[a-zA-Z0-9!#$%&'*+/=?^_`{|}~-]+";
    text = local + "(?:\\." + local + ")*@(?:" + kLabel63 + "\\.)+" + kLabel63;
  } else if (format == "uuid") {
    text = "(?:urn:uuid:)?[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}";
  } else if (format == "ipv4") {
    text = "(?:" + kOctet + "\\.){3}" + kOctet;
  } else if (format == "ipv6") {
    // Eight groups, or fewer around one "::".
    std::string h = "[0-9a-fA-F]{1,4}";
    text = "(?:(?:" + h + ":){7}" + h;
    for (int left = 0; left <= 7; ++left) {
      for (int right = 0; left + right <= 7; ++right) {
        std::string l = left == 0 ? "" : "(?:" + h + ":){" + std::to_string(left - 1) + "}" + h;
        std::string r = right == 0 ? "" : h + "(?::" + h + "){" + std::to_string(right - 1) + "}";
        text += "|" + l + "::" + r;
      }
    }
    text += ")";
  } else if (format == "hostname") {
    text = "(?:" + kLabel63 + "(?:\\." + kLabel63 + "){0,2}|" + kLabel30 + "(?:\\." + kLabel30 + "){3,7})\\.?";
  } else if (format == "uri" || format == "uri-reference") {
    std::string hier = "(?://(?:" + kUser + "*@)?" + kHost + "*(?::\\d*)?(?:/" + kSeg + "*)*|/(?:" + kSeg + "+(?:/" + kSeg +
                       "*)*)?|" + kSeg + "+(?:/" + kSeg + "*)*)";
    std::string tail = "(?:\\?" + kQuery + "*)?(?:#" + kQuery + "*)?";
    text = "[" + kAz + "][a-zA-Z0-9+\\-.]*:" + hier + tail;
    if (format == "uri-reference") {
      // Or a relative reference whose first segment has no ':' (else it would read as a scheme).
      std::string seg_nc = "(?:[a-zA-Z0-9\\-._~!$&'()*+,;=@]|" + kPct + ")";
      text = "(?:" + text + "|(?://(?:" + kUser + "*@)?" + kHost + "*(?::\\d*)?(?:/" + kSeg + "*)*|/?(?:" + seg_nc +
             "+(?:/" + kSeg + "*)*)?)" + tail + ")";
    }
  } else if (format == "duration") {
    std::string t = "T(?:\\d+H(?:\\d+M)?(?:\\d+S)?|\\d+M(?:\\d+S)?|\\d+S)";
    text = "P(?:\\d+W|(?:\\d+Y(?:\\d+M)?(?:\\d+D)?|\\d+M(?:\\d+D)?|\\d+D)(?:" + t + ")?|" + t + ")";
  } else {
    return not_found(str_cat("format '", format, "'"));
  }
  KILN_ASSIGN_OR_RETURN(ParsedRegex parsed, parse_regex(p, text));
  return parsed.regex;
}

}  // namespace kiln::grammar::jsonlex
