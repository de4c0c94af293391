// libFuzzer target: any bytes as a template source must lex and parse into a template or a
// Status, never crash, hang or overflow the stack.
//   clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -Isrc fuzz/jinja_parse_fuzz.cpp \
//     src/kiln/text/jinja/*.cpp src/kiln/core/*.cpp -o jinja_parse_fuzz && ./jinja_parse_fuzz -max_total_time=60
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "kiln/text/jinja/template.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view source(reinterpret_cast<const char*>(data), size);
  auto t = kiln::text::jinja::Template::parse(source);
  (void)t.is_ok();
  return 0;
}
