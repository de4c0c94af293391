// kiln's tokenizer: loads a Hugging Face tokenizer.json (+ tokenizer_config.json) and encodes and
// decodes exactly as Hugging Face `tokenizers` does (checked against its output on a corpus of
// thousands of strings for Llama 2/3, Qwen3, Gemma 3, DeepSeek V3 and gpt-oss).
//
// A Tokenizer is immutable once loaded and safe to use from many threads at once.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/core/status.h"

namespace kiln::text {

class Decoder;

// Special tokens named by tokenizer_config.json (transformers' view of the tokenizer).
struct SpecialTokens {
  std::string bos_token, eos_token, pad_token, unk_token;  // empty when not set
  std::optional<int32_t> bos_id, eos_id, pad_id, unk_id;
  bool add_bos_token = false;  // as configured; encode() follows tokenizer.json's post-processor
  bool add_eos_token = false;
  // additional_special_tokens and extra_special_tokens (e.g. <|im_end|>, <end_of_turn>).
  std::vector<std::string> additional_tokens;
  std::vector<int32_t> additional_ids;
};

class Tokenizer {
 public:
  // Reads DIR/tokenizer.json and, when present, DIR/tokenizer_config.json.
  static Result<std::shared_ptr<const Tokenizer>> load(const std::filesystem::path& dir);
  // `config_json` may be empty.
  static Result<std::shared_ptr<const Tokenizer>> from_json(std::string_view tokenizer_json,
                                                            std::string_view config_json);
  ~Tokenizer();
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  // `text` must be valid UTF-8 (an error says where it is not).
  // With `max_tokens`, an encoding that would have more ids than that (the post-processor's special
  // tokens included) fails with kTooLong ("the text has more than N tokens") as soon as that is
  // certain: at most a window of text past the point where the ids run out is read, and a text whose
  // characters outnumber what N ids can cover is refused before it is pre-tokenized. The ids of a
  // text that fits are those without the limit.
  Result<std::vector<int32_t>> encode(std::string_view text, bool add_special_tokens,
                                      std::optional<size_t> max_tokens = std::nullopt) const;
  // Ids outside the vocabulary are skipped, as Hugging Face does.
  std::string decode(std::span<const int32_t> ids, bool skip_special_tokens) const;

  std::optional<int32_t> token_to_id(std::string_view token) const;
  std::optional<std::string> id_to_token(int32_t id) const;
  // The token's string without a copy, or nullptr for an unknown id.
  const std::string* token_string(int32_t id) const;
  // The bytes token `id` adds to decoded text inside a sequence: the decoder chain applied to the
  // one token (ByteLevel to raw bytes, Metaspace / Replace, a byte-fallback "<0xAB>" to its one
  // byte, which may be part of a UTF-8 character), without the steps that act on the whole
  // sequence (Strip, and Metaspace's dropped first space). Added tokens give their content through
  // the same chain. Empty for an unknown id.
  std::string token_bytes(int32_t id) const;
  // True for added tokens marked special (the ones skip_special_tokens drops).
  bool is_special(int32_t id) const;
  // One past the largest id of the vocabulary and the added tokens.
  size_t vocab_size() const;
  const SpecialTokens& special_tokens() const;
  // The ids the post-processor puts around a sequence when add_special_tokens is true.
  std::vector<int32_t> prefix_special_ids() const;
  std::vector<int32_t> suffix_special_ids() const;
  const Decoder& decoder() const;

  struct Impl;

 private:
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace kiln::text
