// libFuzzer target: any bytes as a JSON Schema must compile into a valid Grammar or a Status
// (kInvalidArgument naming what is refused), never crash, hang or overflow the stack; the first
// byte picks the options (whitespace policy, additionalProperties default).
//   clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -Isrc fuzz/json_schema_fuzz.cpp \
//     src/kiln/grammar/{grammar,json_value,json_schema,json_schema_lex,json_schema_struct,json_schema_merge,regex_text,grammar_text,grammar_text_gbnf,grammar_text_lark,char_sets}.cpp \
//     src/kiln/core/*.cpp -o json_schema_fuzz && ./json_schema_fuzz -max_total_time=60 fuzz/corpus/json_schema_fuzz
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "kiln/grammar/json_schema.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  kiln::grammar::JsonSchemaOptions options;
  options.compact_whitespace = (data[0] & 1) == 0;
  options.default_additional_properties = (data[0] & 2) == 0;
  options.max_whitespace = data[0] >> 2;
  std::string_view schema(reinterpret_cast<const char*>(data + 1), size - 1);
  auto g = kiln::grammar::json_schema_grammar(schema, options);
  if (g.is_ok()) {
    if (!g->validate().is_ok()) std::abort();  // a grammar handed out is always valid
  } else if (g.status().code() != kiln::StatusCode::kInvalidArgument) {
    std::abort();
  }
  return 0;
}
