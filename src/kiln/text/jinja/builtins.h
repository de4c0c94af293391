// Registries of the filters, tests and global functions kiln's templates can use: the set
// transformers' environment has (jinja2's builtins, its tojson, raise_exception, strftime_now),
// plus the Python methods of str, dict and list that the immutable sandbox allows.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "kiln/text/jinja/ast.h"
#include "kiln/text/jinja/value.h"

namespace kiln::text::jinja {

FilterFn find_filter(std::string_view name);
TestFn find_test(std::string_view name);

// Python attribute lookup for methods: s.upper, d.items, ... Returns false when `name` is no
// method of `obj`. Methods the immutable sandbox forbids (list.append, dict.pop, ...) are found
// but come back undefined, as the sandbox's unsafe_undefined does.
bool find_method(const Value& obj, std::string_view name, Value* out);

// Global functions of transformers' environment: range, dict, namespace, joiner, cycler,
// raise_exception and strftime_now.
DictData make_globals();

// Python string helpers shared by filters and methods.
std::string py_strip(std::string_view s, const Value& chars, bool left, bool right);
std::vector<std::string> py_splitlines(std::string_view s, bool keepends);
std::string py_replace(std::string_view s, std::string_view old, std::string_view repl, int64_t count);
std::string py_capitalize(std::string_view s);
// markupsafe's escape: & < > " ' as entities.
std::string html_escape(std::string_view s);
// Python's str(x) for filters that coerce their input to text (undefined gives "").
std::string soft_str(const Value& v);

// Argument helpers for native functions: the i-th positional or the named keyword, else fallback.
const Value* arg(CallArgs& args, size_t index, std::string_view name);
Value arg_or(CallArgs& args, size_t index, std::string_view name, Value fallback);

}  // namespace kiln::text::jinja
