// Streaming detokenization: turns a growing list of token ids into text deltas. Every delta is
// valid UTF-8 and their concatenation equals Tokenizer::decode of all ids; text that later ids
// may still change (an incomplete UTF-8 sequence, a run of byte-fallback tokens, a character a
// Strip decoder may remove, the head of a Replace pattern) is held back until it is final.
//
// It runs the tokenizer's decoder chain incrementally, stage by stage, so each id costs O(1)
// amortized work instead of a re-decode of the whole sequence.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "kiln/text/tokenizer.h"

namespace kiln::text {

class IncrementalDetokenizer {
 public:
  // `context_ids` (e.g. the prompt) are decoded first and their text is not returned, so that the
  // generated text continues it: a SentencePiece leading space is kept, a split UTF-8 character
  // completes. Without context the deltas add up to decode(ids).
  IncrementalDetokenizer(std::shared_ptr<const Tokenizer> tokenizer, bool skip_special_tokens,
                         std::span<const int32_t> context_ids = {});
  ~IncrementalDetokenizer();
  IncrementalDetokenizer(IncrementalDetokenizer&&) noexcept;
  IncrementalDetokenizer& operator=(IncrementalDetokenizer&&) noexcept;

  // Adds ids and returns the text that became final (often empty).
  std::string push(int32_t id);
  std::string push(std::span<const int32_t> ids);
  // Ends the stream and returns all text still held back.
  std::string finish();
  // False for decoder chains that cannot stream (all text then comes from finish()).
  bool streaming() const;

  struct Stage;

 private:
  std::shared_ptr<const Tokenizer> tokenizer_;
  bool skip_special_;
  bool streaming_ = true;
  bool finished_ = false;
  std::vector<std::unique_ptr<Stage>> stages_;
  // The sink: text made final by the last stage. On the heap so that its address, which the
  // last stage keeps, survives moves of the detokenizer.
  std::unique_ptr<std::string> out_ = std::make_unique<std::string>();
  // Chains that cannot stream keep their ids (context first) and decode them at finish().
  std::vector<int32_t> held_ids_;
  size_t context_text_size_ = 0;
};

}  // namespace kiln::text
