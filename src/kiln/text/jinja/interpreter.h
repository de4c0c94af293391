// Runs a parsed template: jinja2's scoping (a fresh scope per loop iteration, macros closing
// over their defining scope, namespaces as the only way to carry state out of a loop), with
// limits on work, output size, nesting and recursion so a hostile template cannot hang the
// server or overflow its stack.
#pragma once

#include <ctime>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "kiln/text/jinja/ast.h"
#include "kiln/text/jinja/value.h"

namespace kiln::text::jinja {

struct RenderLimits {
  int64_t max_steps = 5'000'000;         // statements + expressions evaluated
  size_t max_output_bytes = 64u << 20;   // also bounds every string a template builds
  int max_call_depth = 100;              // macro and caller nesting
  int max_value_depth = 256;             // nesting of lists/dicts a template builds or prints
};

struct Scope {
  explicit Scope(std::shared_ptr<Scope> p) : parent(std::move(p)) {}
  std::shared_ptr<Scope> parent;
  std::vector<std::pair<std::string, Value>> vars;

  const Value* lookup(std::string_view name) const;
  void set(std::string_view name, Value v);
};

class Interpreter {
 public:
  Interpreter(RenderLimits limits, std::function<std::time_t()> now);
  ~Interpreter();
  Interpreter(const Interpreter&) = delete;
  Interpreter& operator=(const Interpreter&) = delete;

  // Renders `body` with `globals` (functions) under `context` (the render's variables).
  std::string render(const Body& body, const DictData& globals, const DictData& context);

  Value eval(const Expr& e);
  Value call(const Value& fn, CallArgs& args);
  Value getattr(const Value& obj, std::string_view name);
  Value getitem(const Value& obj, const Value& key);
  // Items a for loop or filter iterates over: list items, dict keys, string characters.
  std::vector<Value> iterate(const Value& v);
  bool run_test(std::string_view name, const Value& v, CallArgs& args);
  Value run_filter(std::string_view name, const Value& v, CallArgs& args);

  void tick() {
    if (++steps_ > limits_.max_steps) limit_error("template exceeded its step limit");
  }
  // Throws when a string of `bytes` would exceed the output limit.
  void check_size(size_t bytes) const;
  // Builds a list/tuple/dict, enforcing the nesting limit.
  Value make_list(std::vector<Value> items, bool tuple = false);
  Value make_dict(DictData d);
  Value make_namespace(DictData attrs);
  std::time_t now() const { return now_(); }
  const RenderLimits& limits() const { return limits_; }
  [[noreturn]] void limit_error(const std::string& message) const;

 private:
  enum class Flow { kNormal, kBreak, kContinue };

  Flow exec_body(const Body& body, std::string* out);
  Flow exec(const Stmt& s, std::string* out);
  void exec_for(const Stmt& s, std::string* out);
  void assign(const Expr& target, const Value& v);
  void append(std::string* out, std::string_view s) const;
  std::string capture(const Body& body, std::shared_ptr<Scope> scope);
  Value eval_binary(const Expr& e);
  Value eval_compare(const Expr& e);
  CallArgs eval_args(const CallSpec& spec);
  Value apply_filter(const Expr& e, const Value* block_input);
  Value make_macro(const Stmt& s, const std::vector<Param>& params, const Body& body, std::string name);
  Value slice(const Value& obj, const Value& start, const Value& stop, const Value& step);

  RenderLimits limits_;
  std::function<std::time_t()> now_;
  int64_t steps_ = 0;
  int call_depth_ = 0;
  std::shared_ptr<Scope> scope_;
  // Scopes captured by macros and namespaces created by the template: cleared after rendering so
  // the reference cycles they can form (a scope holding a macro that holds the scope) are freed.
  std::vector<std::shared_ptr<Scope>> captured_scopes_;
  std::vector<Value> namespaces_;
};

int value_depth(const Value& v);

}  // namespace kiln::text::jinja
