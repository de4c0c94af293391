#include "kiln/text/decoder.h"

#include "kiln/core/str.h"
#include "kiln/text/normalizer.h"
#include "kiln/text/pre_tokenizer.h"
#include "kiln/text/utf8.h"

namespace kiln::text {

int byte_fallback_value(std::string_view t) {
  if (t.size() != 6 || t.substr(0, 3) != "<0x" || t[5] != '>') return -1;
  // u8::from_str_radix(&t[3..5], 16): two hex digits, or a '+' sign and one digit.
  auto hex = [](char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  if (t[3] == '+') return hex(t[4]);
  const int hi = hex(t[3]), lo = hex(t[4]);
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

void Decoder::apply(const DecoderStep& step, std::vector<std::string>& tokens) {
  switch (step.kind) {
    case DecoderStep::Kind::kByteLevel: {
      std::string bytes;
      for (const std::string& t : tokens)
        if (!byte_level_decode(t, bytes)) bytes.append(t);
      tokens.assign(1, utf8_lossy(bytes));
      break;
    }
    case DecoderStep::Kind::kFuse: {
      std::string all;
      for (const std::string& t : tokens) all.append(t);
      tokens.assign(1, std::move(all));
      break;
    }
    case DecoderStep::Kind::kReplace:
      for (std::string& t : tokens) {
        if (step.regex) {
          std::vector<std::pair<size_t, size_t>> m;
          if (!step.regex->find_all(t, m).is_ok()) continue;
          std::string out;
          size_t pos = 0;
          for (const auto& [a, b] : m) {
            out.append(t, pos, a - pos).append(step.content);
            pos = b;
          }
          out.append(t, pos);
          t = std::move(out);
        } else {
          t = replace_all(t, step.pattern, step.content);
        }
      }
      break;
    case DecoderStep::Kind::kStrip:
      for (std::string& t : tokens) {
        std::vector<std::pair<size_t, char32_t>> chars;  // (byte offset, code point)
        for (size_t i = 0; i < t.size();) {
          const size_t at = i;
          chars.emplace_back(at, next_code_point(t, i));
        }
        size_t cut_start = 0;
        for (size_t i = 0; i < step.start && i < chars.size(); ++i) {
          if (chars[i].second != step.strip_char) break;
          cut_start = i + 1;
        }
        size_t cut_stop = chars.size();
        for (size_t i = 0; i < step.stop && i < chars.size(); ++i) {
          const size_t idx = chars.size() - i - 1;
          if (chars[idx].second != step.strip_char) break;
          cut_stop = idx;
        }
        if (cut_stop < cut_start) cut_stop = cut_start;
        const size_t a = cut_start < chars.size() ? chars[cut_start].first : t.size();
        const size_t b = cut_stop < chars.size() ? chars[cut_stop].first : t.size();
        t = t.substr(a, b - a);
      }
      break;
    case DecoderStep::Kind::kByteFallback: {
      std::vector<std::string> out;
      std::string run;
      size_t run_len = 0;
      auto flush = [&] {
        if (run_len == 0) return;
        if (is_valid_utf8(run)) {
          out.push_back(run);
        } else {
          for (size_t i = 0; i < run_len; ++i) out.emplace_back(kReplacementUtf8);
        }
        run.clear();
        run_len = 0;
      };
      for (std::string& t : tokens) {
        const int b = byte_fallback_value(t);
        if (b >= 0) {
          run.push_back(static_cast<char>(b));
          ++run_len;
        } else {
          flush();
          out.push_back(std::move(t));
        }
      }
      flush();
      tokens = std::move(out);
      break;
    }
    case DecoderStep::Kind::kMetaspace:
      for (size_t i = 0; i < tokens.size(); ++i) {
        tokens[i] = replace_all(tokens[i], step.replacement, i == 0 && step.prepend ? "" : " ");
      }
      break;
  }
}

std::string Decoder::decode(std::vector<std::string> tokens) const {
  if (steps_.empty()) {
    std::string out;
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (i) out.push_back(' ');
      out.append(tokens[i]);
    }
    return out;
  }
  for (const DecoderStep& step : steps_) apply(step, tokens);
  std::string out;
  for (const std::string& t : tokens) out.append(t);
  return out;
}

}  // namespace kiln::text
