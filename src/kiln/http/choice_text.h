// The text of one choice as its tokens arrive: incremental detokenization (never splitting a
// UTF-8 character) followed by stop-string matching (holding back only what may still become a
// stop string, never emitting any part of a matched one).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kiln/text/tokenizer.h"

namespace kiln::http {

class ChoiceText {
 public:
  // `tokenizer` must outlive this (the model lease keeps it).
  ChoiceText(const text::Tokenizer& tokenizer, const std::vector<std::string>& stops);
  ~ChoiceText();
  ChoiceText(ChoiceText&&) noexcept;
  ChoiceText& operator=(ChoiceText&&) noexcept;

  struct Delta {
    std::string text;      // safe to show now
    bool stopped = false;  // a stop string matched: `text` ends just before it; ignore later tokens
  };
  Delta push(int32_t token);
  // The held-back rest when the choice ends (EOS, length); a stop string may still match in it.
  Delta finish();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The text of one token alone, as logprobs show it.
std::string token_text(const text::Tokenizer& tokenizer, int32_t token);

}  // namespace kiln::http
