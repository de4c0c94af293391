// libFuzzer target: any bytes as a template, rendered with a realistic chat (messages with tool
// calls, tools, special tokens) under tight limits, must produce text or a Status: no crash, no
// sanitizer report, no hang (the step limit bounds every loop, the call-depth limit recursion).
//   clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -Isrc fuzz/jinja_render_fuzz.cpp \
//     src/kiln/text/jinja/*.cpp src/kiln/core/*.cpp -o jinja_render_fuzz && ./jinja_render_fuzz -max_total_time=60
// Seeds: tests/fixtures/templates/*.jinja.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "kiln/text/jinja/template.h"

using kiln::text::jinja::DictData;
using kiln::text::jinja::Value;

namespace {

DictData make_context() {
  auto msg = [](const char* role, const char* content) {
    return Value::dict({{"role", Value(role)}, {"content", Value(content)}});
  };
  Value call = Value::dict({{"id", Value("call_1")},
                            {"type", Value("function")},
                            {"function", Value::dict({{"name", Value("get_weather")},
                                                      {"arguments", Value::dict({{"city", Value("Paris")}})}})}});
  Value assistant = Value::dict({{"role", Value("assistant")}, {"content", Value("")}, {"tool_calls", Value::list({call})}});
  Value tool = Value::dict({{"type", Value("function")},
                            {"function", Value::dict({{"name", Value("get_weather")},
                                                      {"parameters", Value::dict({{"type", Value("object")}})}})}});
  DictData ctx;
  ctx.set(Value("messages"), Value::list({msg("system", "Be brief."), msg("user", "Hi \xC3\xA9 \xF0\x9F\x91\x8B"), assistant,
                                          msg("tool", "22 C"), msg("user", "")}));
  ctx.set(Value("tools"), Value::list({tool}));
  ctx.set(Value("add_generation_prompt"), Value(true));
  ctx.set(Value("bos_token"), Value("<s>"));
  ctx.set(Value("eos_token"), Value("</s>"));
  ctx.set(Value("enable_thinking"), Value(false));
  return ctx;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const DictData context = make_context();
  std::string_view source(reinterpret_cast<const char*>(data), size);
  auto t = kiln::text::jinja::Template::parse(source);
  if (!t.is_ok()) return 0;
  kiln::text::jinja::RenderOptions options;
  options.limits.max_steps = 200'000;
  options.limits.max_output_bytes = 1 << 20;
  options.now = [] { return static_cast<std::time_t>(1721995200); };
  auto out = t->render(context, options);
  (void)out.is_ok();
  return 0;
}
