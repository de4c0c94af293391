// The text of one choice as its tokens arrive: the text layer's incremental detokenizer (deltas
// that never split a UTF-8 character) followed by its stop-string matcher (holding back only
// what may still become a stop string, never emitting any part of a matched one).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "kiln/text/detokenizer.h"
#include "kiln/text/stop_matcher.h"
#include "kiln/text/tokenizer.h"

namespace kiln::http {

class ChoiceText {
 public:
  // `context` (the end of the prompt) makes the first delta continue the prompt's text.
  // `keep_special_tokens`: special tokens' text stays in the deltas, for an output parser that
  // reads its family's markers in them (otherwise they are skipped, as skip_special_tokens does).
  ChoiceText(std::shared_ptr<const text::Tokenizer> tokenizer, text::StopMatcher stops,
             std::span<const int32_t> context, bool keep_special_tokens = false);

  struct Delta {
    std::string text;      // safe to show now
    bool stopped = false;  // a stop string matched: `text` ends just before it; ignore later tokens
    std::string stop;      // which one
  };
  Delta push(int32_t token);
  // The held-back rest when the choice ends (EOS, length); a stop string may still match in it.
  Delta finish();

 private:
  Delta delta(text::StopMatcher::Output out) const;

  text::IncrementalDetokenizer detok_;
  text::StopMatcher stops_;
};

// The text of one token alone, as logprobs show it.
std::string token_text(const text::Tokenizer& tokenizer, int32_t token);

}  // namespace kiln::http
