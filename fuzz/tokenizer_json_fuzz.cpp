// libFuzzer target: tokenizer.json itself is untrusted input (a model directory). Loading must
// fail with a Status or give a tokenizer that encodes and decodes without crashing.
#include <cstdint>
#include <string_view>

#include "kiln/text/detokenizer.h"
#include "kiln/text/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view json(reinterpret_cast<const char*>(data), size);
  auto tok = kiln::text::Tokenizer::from_json(json, "");
  if (!tok.is_ok()) return 0;
  for (std::string_view text : {"Hello world", "  a\tb\nc ", "<s>x</s>", "\xC3\xA9t\xC3\xA9 \xF0\x9F\x98\x80", ""}) {
    auto ids = (*tok)->encode(text, true);
    if (!ids.is_ok()) continue;
    (void)(*tok)->decode(*ids, false);
    kiln::text::IncrementalDetokenizer detok(*tok, true);
    for (int32_t id : *ids) (void)detok.push(id);
    (void)detok.finish();
  }
  return 0;
}
