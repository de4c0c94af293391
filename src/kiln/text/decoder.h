// Decoders of tokenizer.json: ByteLevel, Metaspace, Replace, Strip, ByteFallback, Fuse, Sequence.
// decode() follows Hugging Face's decode_chain list semantics step by step; the streaming
// detokenizer (detokenizer.h) is checked against it.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "kiln/text/regex.h"

namespace kiln::text {

struct DecoderStep {
  enum class Kind { kByteLevel, kMetaspace, kReplace, kStrip, kByteFallback, kFuse };
  Kind kind = Kind::kFuse;
  std::string pattern;          // kReplace String pattern
  std::optional<Regex> regex;   // kReplace Regex pattern
  std::string content;          // kReplace replacement; kStrip: the character (UTF-8)
  size_t start = 0, stop = 0;   // kStrip
  char32_t strip_char = 0;      // kStrip
  std::string replacement = "\xE2\x96\x81";  // kMetaspace
  bool prepend = true;          // kMetaspace: prepend_scheme != never
};

// ByteFallback's reading of "<0xAB>" tokens: the byte, or -1.
int byte_fallback_value(std::string_view token);

class Decoder {
 public:
  void add(DecoderStep step) { steps_.push_back(std::move(step)); }
  const std::vector<DecoderStep>& steps() const { return steps_; }
  // Decodes token strings; with no steps, joins them with spaces as HF does without a decoder.
  std::string decode(std::vector<std::string> tokens) const;

  // Applies one step to a list of token strings (exposed for the streaming detokenizer's tests).
  static void apply(const DecoderStep& step, std::vector<std::string>& tokens);

 private:
  std::vector<DecoderStep> steps_;
};

}  // namespace kiln::text
