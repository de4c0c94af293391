#include "kiln/http/choice_text.h"

namespace kiln::http {

ChoiceText::ChoiceText(std::shared_ptr<const text::Tokenizer> tokenizer, text::StopMatcher stops,
                       std::span<const int32_t> context, bool keep_special_tokens)
    : detok_(std::move(tokenizer), /*skip_special_tokens=*/!keep_special_tokens, context), stops_(std::move(stops)) {}

ChoiceText::Delta ChoiceText::push(int32_t token) {
  if (stops_.stopped()) return {};
  return delta(stops_.push(detok_.push(token)));
}

ChoiceText::Delta ChoiceText::finish() {
  if (stops_.stopped()) return {};
  Delta d = delta(stops_.push(detok_.finish()));
  if (!d.stopped) d.text += stops_.finish();
  return d;
}

ChoiceText::Delta ChoiceText::delta(text::StopMatcher::Output out) const {
  Delta d{std::move(out.text), out.stopped, ""};
  if (out.stopped && out.stop_index >= 0) d.stop = stops_.stops()[static_cast<size_t>(out.stop_index)];
  return d;
}

std::string token_text(const text::Tokenizer& tokenizer, int32_t token) {
  int32_t ids[1] = {token};
  return tokenizer.decode(ids, /*skip_special_tokens=*/false);
}

}  // namespace kiln::http
