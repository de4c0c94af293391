#include "kiln/http/choice_text.h"

#include <algorithm>

namespace kiln::http {

namespace {

// True when `s` ends inside a UTF-8 character or with U+FFFD, the decoder's mark for bytes that
// a later token may complete.
bool incomplete_tail(const std::string& s) {
  if (s.size() >= 3 && s.compare(s.size() - 3, 3, "\xEF\xBF\xBD") == 0) return true;
  size_t i = s.size();
  int back = 0;
  while (i > 0 && back < 4) {
    unsigned char c = static_cast<unsigned char>(s[i - 1]);
    if ((c & 0xC0) != 0x80) {
      int len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 1;
      return back + 1 < len;
    }
    --i;
    ++back;
  }
  return false;
}

}  // namespace

struct ChoiceText::Impl {
  const text::Tokenizer* tokenizer;
  std::vector<std::string> stops;
  std::vector<int32_t> ids;
  size_t prefix = 0;  // ids[prefix..read) decode to text already emitted (context for the next)
  size_t read = 0;
  std::string pending;  // detokenized text held back by the stop matcher
  size_t max_stop = 0;

  std::string detok_push(int32_t token) {
    ids.push_back(token);
    std::span<const int32_t> all(ids);
    std::string before = tokenizer->decode(all.subspan(prefix, read - prefix), /*skip_special_tokens=*/true);
    std::string now = tokenizer->decode(all.subspan(prefix), true);
    if (now.size() <= before.size() || incomplete_tail(now) || now.compare(0, before.size(), before) != 0) {
      return {};  // wait for more tokens
    }
    std::string delta = now.substr(before.size());
    prefix = read;
    read = ids.size();
    return delta;
  }

  std::string detok_rest() {
    std::span<const int32_t> all(ids);
    std::string before = tokenizer->decode(all.subspan(prefix, read - prefix), true);
    std::string now = tokenizer->decode(all.subspan(prefix), true);
    prefix = read = ids.size();
    if (now.size() <= before.size() || now.compare(0, before.size(), before) != 0) return {};
    return now.substr(before.size());
  }

  Delta stop_push(const std::string& text) {
    pending += text;
    Delta d;
    size_t best = std::string::npos;
    for (const auto& s : stops) {
      size_t p = pending.find(s);
      if (p < best) best = p;
    }
    if (best != std::string::npos) {
      d.text = pending.substr(0, best);
      d.stopped = true;
      pending.clear();
      return d;
    }
    // Hold back the longest tail of `pending` that begins some stop string.
    size_t keep = 0;
    for (const auto& s : stops) {
      for (size_t k = std::min(s.size() - 1, pending.size()); k > keep; --k) {
        if (pending.compare(pending.size() - k, k, s, 0, k) == 0) {
          keep = k;
          break;
        }
      }
    }
    d.text = pending.substr(0, pending.size() - keep);
    pending.erase(0, pending.size() - keep);
    return d;
  }
};

ChoiceText::ChoiceText(const text::Tokenizer& tokenizer, const std::vector<std::string>& stops)
    : impl_(std::make_unique<Impl>()) {
  impl_->tokenizer = &tokenizer;
  impl_->stops = stops;
}
ChoiceText::~ChoiceText() = default;
ChoiceText::ChoiceText(ChoiceText&&) noexcept = default;
ChoiceText& ChoiceText::operator=(ChoiceText&&) noexcept = default;

ChoiceText::Delta ChoiceText::push(int32_t token) { return impl_->stop_push(impl_->detok_push(token)); }

ChoiceText::Delta ChoiceText::finish() {
  Delta d = impl_->stop_push(impl_->detok_rest());
  if (d.stopped) return d;
  d.text += impl_->pending;
  impl_->pending.clear();
  return d;
}

std::string token_text(const text::Tokenizer& tokenizer, int32_t token) {
  int32_t ids[1] = {token};
  return tokenizer.decode(ids, /*skip_special_tokens=*/false);
}

}  // namespace kiln::http
