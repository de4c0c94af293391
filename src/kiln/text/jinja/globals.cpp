// Global functions: jinja2's range/dict/namespace/joiner/cycler under the sandbox's limits, and
// transformers' raise_exception and strftime_now.
#include <ctime>

#include "kiln/core/str.h"
#include "kiln/text/jinja/builtins.h"
#include "kiln/text/jinja/interpreter.h"

namespace kiln::text::jinja {
namespace {

constexpr int64_t kMaxRange = 100000;  // the sandbox's MAX_RANGE

int64_t range_arg(const Value& v) {
  if (!(v.is_int() || v.is_bool())) throw_type_error("'" + type_name(v) + "' object cannot be interpreted as an integer");
  return v.to_int();
}

Value g_range(Interpreter& in, CallArgs& a) {
  if (!a.keyword.empty()) throw_type_error("range() takes no keyword arguments");
  const auto& p = a.positional;
  if (p.empty() || p.size() > 3) throw_type_error(str_cat("range expected at most 3 arguments, got ", p.size()));
  int64_t start = 0, stop, step = 1;
  if (p.size() == 1) {
    stop = range_arg(p[0]);
  } else {
    start = range_arg(p[0]);
    stop = range_arg(p[1]);
    if (p.size() == 3) step = range_arg(p[2]);
  }
  if (step == 0) throw_value_error("range() arg 3 must not be zero");
  std::vector<Value> out;
  for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
    if (static_cast<int64_t>(out.size()) >= kMaxRange)
      throw RenderError(RenderError::Kind::kSecurity,
                        "Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
    out.emplace_back(i);
    in.tick();
  }
  return in.make_list(std::move(out));
}

Value g_dict(Interpreter& in, CallArgs& a) {
  DictData d;
  if (a.positional.size() > 1) throw_type_error("dict expected at most 1 argument");
  if (!a.positional.empty()) {
    const Value& src = a.positional[0];
    if (src.is_dict()) {
      d = src.dict_data();
    } else {
      for (const auto& pair : in.iterate(src)) {
        auto kv = in.iterate(pair);
        if (kv.size() != 2) throw_value_error("dictionary update sequence element has wrong length; 2 is required");
        d.set(kv[0], kv[1]);
      }
    }
  }
  for (auto& [k, v] : a.keyword) d.set(Value(k), v);
  return in.make_dict(std::move(d));
}

Value g_namespace(Interpreter& in, CallArgs& a) {
  DictData d;
  for (const auto& src : a.positional) {
    if (!src.is_dict()) throw_type_error("namespace() positional arguments must be mappings");
    for (const auto& [k, v] : src.dict_data().items) d.set(k, v);
  }
  for (auto& [k, v] : a.keyword) d.set(Value(k), v);
  return in.make_namespace(std::move(d));
}

Value g_joiner(Interpreter&, CallArgs& a) {
  std::string sep = soft_str(arg_or(a, 0, "sep", Value(", ")));
  auto used = std::make_shared<bool>(false);
  return Value::function("joiner", [sep, used](Interpreter&, CallArgs&) -> Value {
    if (!*used) {
      *used = true;
      return Value("");
    }
    return Value(sep);
  });
}

Value g_raise_exception(Interpreter&, CallArgs& a) {
  std::string message = a.positional.empty() ? std::string() : soft_str(a.positional[0]);
  throw RenderError(RenderError::Kind::kRaised, message);
}

Value g_strftime_now(Interpreter& in, CallArgs& a) {
  const Value* fmt = arg(a, 0, "format");
  if (!fmt || !fmt->is_string()) throw_type_error("strftime_now() needs a format string");
  std::time_t t = in.now();
  std::tm tm{};
  localtime_r(&t, &tm);
  std::string out(256, '\0');
  if (fmt->str().size() > 256) throw_value_error("strftime format too long");
  size_t n = std::strftime(out.data(), out.size(), fmt->str().c_str(), &tm);
  if (n == 0 && !fmt->str().empty()) {
    out.resize(4096);
    n = std::strftime(out.data(), out.size(), fmt->str().c_str(), &tm);
  }
  out.resize(n);
  return Value(std::move(out));
}

}  // namespace

DictData make_globals() {
  DictData g;
  g.set(Value("range"), Value::function("range", g_range));
  g.set(Value("dict"), Value::function("dict", g_dict));
  g.set(Value("namespace"), Value::function("namespace", g_namespace));
  g.set(Value("joiner"), Value::function("joiner", g_joiner));
  g.set(Value("raise_exception"), Value::function("raise_exception", g_raise_exception));
  g.set(Value("strftime_now"), Value::function("strftime_now", g_strftime_now));
  return g;
}

}  // namespace kiln::text::jinja
