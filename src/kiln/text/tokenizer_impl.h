// The parts of a Tokenizer (internal to text/; built by tokenizer_load.cpp).
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "kiln/text/added_vocab.h"
#include "kiln/text/bpe.h"
#include "kiln/text/decoder.h"
#include "kiln/text/normalizer.h"
#include "kiln/text/post_processor.h"
#include "kiln/text/pre_tokenizer.h"
#include "kiln/text/tokenizer.h"

namespace kiln::text {

struct Tokenizer::Impl {
  std::unique_ptr<BpeModel> model;
  AddedVocabulary added;
  Normalizer normalizer;
  PreTokenizer pre_tokenizer;
  PostProcessor post_processor;
  Decoder decoder;
  SpecialTokens special;
  size_t vocab_size = 0;
};

// Builds the parts from the two JSON documents (tokenizer_load.cpp).
Result<std::unique_ptr<Tokenizer::Impl>> parse_tokenizer(std::string_view tokenizer_json, std::string_view config_json);

// Tokenizer::encode with the window of text the first pre-tokenizer step searches at once when
// `max_tokens` is set (encode.cpp; the tests make it tiny to cut text everywhere).
Result<std::vector<int32_t>> encode_text(const Tokenizer::Impl& m, std::string_view text, bool add_special_tokens,
                                         std::optional<size_t> max_tokens, size_t window_bytes);

}  // namespace kiln::text
