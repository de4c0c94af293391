#include "kiln/text/normalizer.h"

#include "kiln/text/utf8.h"

namespace kiln::text {

std::string replace_all(std::string_view s, std::string_view from, std::string_view to) {
  if (from.empty()) return std::string(s);
  std::string out;
  out.reserve(s.size());
  size_t pos = 0;
  while (true) {
    const size_t hit = s.find(from, pos);
    if (hit == std::string_view::npos) break;
    out.append(s.substr(pos, hit - pos)).append(to);
    pos = hit + from.size();
  }
  out.append(s.substr(pos));
  return out;
}

Result<std::string> Normalizer::apply(std::string_view input) const {
  std::string s(input);
  std::vector<std::pair<size_t, size_t>> matches;
  for (const NormalizerStep& step : steps_) {
    switch (step.kind) {
      case NormalizerStep::Kind::kUnicode:
        s = normalize(s, step.form);
        break;
      case NormalizerStep::Kind::kReplace:
        if (step.regex) {
          matches.clear();
          KILN_RETURN_IF_ERROR(step.regex->find_all(s, matches));
          std::string out;
          size_t pos = 0;
          for (const auto& [a, b] : matches) {
            out.append(s, pos, a - pos).append(step.content);
            pos = b;
          }
          out.append(s, pos);
          s = std::move(out);
        } else {
          s = replace_all(s, step.literal, step.content);
        }
        break;
      case NormalizerStep::Kind::kPrepend:
        if (!s.empty()) s.insert(0, step.content);
        break;
      case NormalizerStep::Kind::kStrip: {
        size_t a = 0, b = s.size();
        if (step.strip_left) {
          while (a < b) {
            size_t k = a;
            if (!is_white_space(next_code_point(s, k))) break;
            a = k;
          }
        }
        if (step.strip_right) {
          while (b > a) {
            size_t k = b - 1;
            while (k > a && (static_cast<unsigned char>(s[k]) & 0xC0) == 0x80) --k;
            size_t kk = k;
            if (!is_white_space(next_code_point(s, kk))) break;
            b = k;
          }
        }
        s = s.substr(a, b - a);
        break;
      }
    }
  }
  return s;
}

}  // namespace kiln::text
