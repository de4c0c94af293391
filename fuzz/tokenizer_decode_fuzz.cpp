// libFuzzer target: decode arbitrary id sequences (any int32, including out-of-range and negative
// ids) with every decoder family, stream them through the incremental detokenizer, and match the
// text against stop strings taken from the input.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "kiln/core/str.h"
#include "kiln/text/detokenizer.h"
#include "kiln/text/stop_matcher.h"
#include "tokenizer_fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const auto tokenizers = {kiln::fuzz::load_tokenizer("llama2"), kiln::fuzz::load_tokenizer("qwen3"),
                                  kiln::fuzz::load_tokenizer("deepseek_v3")};
  if (size < 2) return 0;
  const bool skip = data[0] & 1;
  const size_t stop_len = data[1] % 8;
  std::vector<int32_t> ids;
  for (size_t i = 2; i + 4 <= size; i += 4) {
    uint32_t v;
    std::memcpy(&v, data + i, 4);
    // Mostly ids inside the vocabulary, so that decoding does real work; sometimes any value.
    ids.push_back(v & 0x80000000u ? static_cast<int32_t>(v) : static_cast<int32_t>(v % 160000));
  }
  for (const auto& tok : tokenizers) {
    const std::string full = tok->decode(ids, skip);
    if (!kiln::is_valid_utf8(full)) std::abort();
    kiln::text::IncrementalDetokenizer detok(tok, skip);
    std::string streamed;
    for (int32_t id : ids) {
      const std::string d = detok.push(id);
      if (!kiln::is_valid_utf8(d)) std::abort();
      streamed += d;
    }
    streamed += detok.finish();
    if (streamed != full) std::abort();
    // A stop string cut from the decoded text itself, so that it is found.
    if (stop_len > 0 && full.size() > stop_len) {
      std::string stop = full.substr(full.size() / 2, stop_len);
      if (!kiln::is_valid_utf8(stop)) continue;
      auto m = kiln::text::StopMatcher::create({stop});
      if (!m.is_ok()) std::abort();
      std::string out;
      bool stopped = false;
      for (size_t i = 0; i < full.size() && !stopped; i += 3) {
        auto o = m->push(std::string_view(full).substr(i, 3));
        out += o.text;
        stopped = o.stopped;
      }
      if (!stopped || out.find(stop) != std::string::npos || full.compare(0, out.size(), out) != 0) std::abort();
    }
  }
  return 0;
}
