// libFuzzer target: encode arbitrary bytes with a byte-level (Qwen3: NFC, split regex, added
// tokens) and a SentencePiece-style (Llama 2: byte fallback) tokenizer. Invalid UTF-8 must be
// refused with a Status; valid text must round-trip where the tokenizer promises it does.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "kiln/core/str.h"
#include "kiln/text/detokenizer.h"
#include "kiln/text/unicode.h"
#include "tokenizer_fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const auto qwen = kiln::fuzz::load_tokenizer("qwen3");
  static const auto llama2 = kiln::fuzz::load_tokenizer("llama2");
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const bool valid = kiln::is_valid_utf8(text);
  for (const auto& tok : {qwen, llama2}) {
    for (bool special : {false, true}) {
      auto ids = tok->encode(text, special);
      if (ids.is_ok() != valid) std::abort();
      if (!ids.is_ok()) continue;
      for (int32_t id : *ids)
        if (id < 0 || static_cast<size_t>(id) >= tok->vocab_size()) std::abort();
      const std::string decoded = tok->decode(*ids, false);
      if (!kiln::is_valid_utf8(decoded)) std::abort();
      // Byte-level BPE with NFC loses nothing but the normalization. (Only without '<': Qwen3's added
      // tokens all start with it, and text is normalized piecewise between added tokens.)
      if (tok == qwen && text.find('<') == std::string_view::npos &&
          decoded != kiln::text::normalize(text, kiln::text::NormalizationForm::kNfc))
        std::abort();
      kiln::text::IncrementalDetokenizer detok(tok, false);
      std::string streamed;
      for (int32_t id : *ids) streamed += detok.push(id);
      streamed += detok.finish();
      if (streamed != decoded) std::abort();
    }
  }
  return 0;
}
