#include "kiln/text/jinja/interpreter.h"

#include <algorithm>

#include "kiln/core/str.h"
#include "kiln/text/jinja/builtins.h"
#include "kiln/text/jinja/unicode.h"

namespace kiln::text::jinja {

const Value* Scope::lookup(std::string_view name) const {
  for (const Scope* s = this; s; s = s->parent.get())
    for (const auto& kv : s->vars)
      if (kv.first == name) return &kv.second;
  return nullptr;
}

void Scope::set(std::string_view name, Value v) {
  for (auto& kv : vars) {
    if (kv.first == name) {
      kv.second = std::move(v);
      return;
    }
  }
  vars.emplace_back(std::string(name), std::move(v));
}

int value_depth(const Value& v) { return v.depth(); }

namespace {

// Restores a member to its old value when a block of code is left, normally or by a throw.
template <typename T>
class Restore {
 public:
  Restore(T* slot, T value) : slot_(slot), old_(std::move(*slot)) { *slot_ = std::move(value); }
  ~Restore() { *slot_ = std::move(old_); }
  Restore(const Restore&) = delete;
  Restore& operator=(const Restore&) = delete;

 private:
  T* slot_;
  T old_;
};

bool mentions_name(const Expr* e, std::string_view name);

bool mentions_name(const Body& body, std::string_view name);

bool mentions_name(const Expr* e, std::string_view name) {
  if (!e) return false;
  if (e->kind == ExprKind::kName && e->name == name) return true;
  for (const auto& c : e->children)
    if (mentions_name(c.get(), name)) return true;
  for (const auto& a : e->call.args)
    if (mentions_name(a.get(), name)) return true;
  for (const auto& k : e->call.kwargs)
    if (mentions_name(k.value.get(), name)) return true;
  return mentions_name(e->call.dyn_args.get(), name) || mentions_name(e->call.dyn_kwargs.get(), name);
}

bool mentions_name(const Body& body, std::string_view name) {
  for (const auto& s : body) {
    if (mentions_name(s->expr.get(), name) || mentions_name(s->cond.get(), name) ||
        mentions_name(s->filter.get(), name) || mentions_name(s->body, name) || mentions_name(s->else_body, name))
      return true;
    for (const auto& v : s->values)
      if (mentions_name(v.get(), name)) return true;
    for (const auto& p : s->params)
      if (mentions_name(p.default_value.get(), name)) return true;
  }
  return false;
}

}  // namespace

Interpreter::Interpreter(RenderLimits limits, std::function<std::time_t()> now)
    : limits_(limits), now_(std::move(now)) {}

Interpreter::~Interpreter() {
  for (auto& s : captured_scopes_) s->vars.clear();
  for (auto& n : namespaces_) n.namespace_data().attrs.items.clear();
}

void Interpreter::limit_error(const std::string& message) const {
  throw RenderError(RenderError::Kind::kLimit, message);
}

void Interpreter::check_size(size_t bytes) const {
  if (bytes > limits_.max_output_bytes)
    limit_error(str_cat("template output exceeds the limit of ", limits_.max_output_bytes, " bytes"));
}

void Interpreter::append(std::string* out, std::string_view s) const {
  check_size(out->size() + s.size());
  out->append(s);
}

Value Interpreter::make_list(std::vector<Value> items, bool tuple) {
  Value v = tuple ? Value::tuple(std::move(items)) : Value::list(std::move(items));
  if (v.depth() > limits_.max_value_depth) limit_error("lists and dicts are nested too deeply");
  return v;
}

Value Interpreter::make_dict(DictData d) {
  Value v = Value::dict(std::move(d));
  if (v.depth() > limits_.max_value_depth) limit_error("lists and dicts are nested too deeply");
  return v;
}

Value Interpreter::make_namespace(DictData attrs) {
  Value v = Value::make_namespace(std::move(attrs));
  namespaces_.push_back(v);
  return v;
}

std::string Interpreter::render(const Body& body, const DictData& globals, const DictData& context) {
  auto global_scope = std::make_shared<Scope>(nullptr);
  for (const auto& [k, v] : globals.items) global_scope->set(k.str(), v);
  auto root = std::make_shared<Scope>(global_scope);
  for (const auto& [k, v] : context.items) root->set(k.str(), v);
  captured_scopes_.push_back(global_scope);
  captured_scopes_.push_back(root);
  scope_ = root;
  std::string out;
  exec_body(body, &out);
  scope_.reset();
  return out;
}

Interpreter::Flow Interpreter::exec_body(const Body& body, std::string* out) {
  for (const auto& s : body) {
    Flow f = exec(*s, out);
    if (f != Flow::kNormal) return f;
  }
  return Flow::kNormal;
}

std::string Interpreter::capture(const Body& body, std::shared_ptr<Scope> scope) {
  Restore<std::shared_ptr<Scope>> restore(&scope_, std::move(scope));
  std::string out;
  exec_body(body, &out);
  return out;
}

Interpreter::Flow Interpreter::exec(const Stmt& s, std::string* out) {
  tick();
  try {
    switch (s.kind) {
      case StmtKind::kData: append(out, s.data); break;
      case StmtKind::kPrint: {
        Value v = eval(*s.expr);
        if (v.is_string()) append(out, v.str());
        else append(out, py_str(v));
        break;
      }
      case StmtKind::kIf: return truthy(eval(*s.expr)) ? exec_body(s.body, out) : exec_body(s.else_body, out);
      case StmtKind::kFor: exec_for(s, out); break;
      case StmtKind::kSet: assign(*s.target, eval(*s.expr)); break;
      case StmtKind::kSetBlock: {
        Value v(capture(s.body, std::make_shared<Scope>(scope_)));
        if (s.filter) v = apply_filter(*s.filter, &v);
        assign(*s.target, v);
        break;
      }
      case StmtKind::kMacro: scope_->set(s.name, make_macro(s, s.params, s.body, s.name)); break;
      case StmtKind::kCallBlock: {
        const Expr& call_expr = *s.expr;
        Value fn = eval(*call_expr.children[0]);
        CallArgs args = eval_args(call_expr.call);
        args.keyword.emplace_back("caller", make_macro(s, s.params, s.body, "caller"));
        Value result = call(fn, args);
        append(out, py_str(result));
        break;
      }
      case StmtKind::kFilterBlock: {
        Value v(capture(s.body, std::make_shared<Scope>(scope_)));
        append(out, py_str(apply_filter(*s.filter, &v)));
        break;
      }
      case StmtKind::kWith: {
        auto inner = std::make_shared<Scope>(scope_);
        std::vector<Value> values;
        for (const auto& v : s.values) values.push_back(eval(*v));
        Restore<std::shared_ptr<Scope>> restore(&scope_, inner);
        for (size_t i = 0; i < s.targets.size(); ++i) assign(*s.targets[i], values[i]);
        return exec_body(s.body, out);
      }
      case StmtKind::kBreak: return Flow::kBreak;
      case StmtKind::kContinue: return Flow::kContinue;
      case StmtKind::kScope: {
        Restore<std::shared_ptr<Scope>> restore(&scope_, std::make_shared<Scope>(scope_));
        return exec_body(s.body, out);
      }
    }
  } catch (RenderError& e) {
    e.set_line(s.line);
    throw;
  }
  return Flow::kNormal;
}

std::vector<Value> Interpreter::iterate(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined: return {};
    case Value::Kind::kList: return v.items();
    case Value::Kind::kDict: {
      std::vector<Value> keys;
      keys.reserve(v.dict_data().items.size());
      for (const auto& kv : v.dict_data().items) keys.push_back(kv.first);
      return keys;
    }
    case Value::Kind::kString: {
      std::vector<Value> chars;
      const std::string& s = v.str();
      for (size_t i = 0; i < s.size();) {
        size_t start = i;
        utf8_next(s, &i);
        chars.emplace_back(std::string_view(s).substr(start, i - start));
      }
      return chars;
    }
    default: throw_type_error("'" + type_name(v) + "' object is not iterable");
  }
}

void Interpreter::exec_for(const Stmt& s, std::string* out) {
  Value iterable = eval(*s.expr);
  std::vector<Value> items = iterate(iterable);
  auto loop_scope = std::make_shared<Scope>(scope_);
  if (s.cond) {
    std::vector<Value> kept;
    for (auto& item : items) {
      auto probe = std::make_shared<Scope>(loop_scope);
      Restore<std::shared_ptr<Scope>> restore(&scope_, probe);
      assign(*s.target, item);
      if (truthy(eval(*s.cond))) kept.push_back(std::move(item));
    }
    items = std::move(kept);
  }
  if (items.empty()) {
    Restore<std::shared_ptr<Scope>> restore(&scope_, loop_scope);
    exec_body(s.else_body, out);
    return;
  }
  auto n = static_cast<int64_t>(items.size());
  // The loop object is rebuilt each iteration from keys made once per process; its cycle() and
  // changed() read the loop's shared state.
  static const Value kKeys[] = {Value("index"),  Value("index0"), Value("revindex"), Value("revindex0"),
                                Value("first"),  Value("last"),   Value("length"),   Value("depth"),
                                Value("depth0"), Value("previtem"), Value("nextitem"), Value("cycle"),
                                Value("changed")};
  auto index = std::make_shared<int64_t>(0);
  auto changed_last = std::make_shared<std::pair<bool, Value>>(false, Value());
  Value cycle = Value::function("cycle", [index](Interpreter&, CallArgs& a) -> Value {
    if (a.positional.empty()) throw_type_error("no items for cycling given");
    return a.positional[static_cast<size_t>(*index) % a.positional.size()];
  });
  Value changed = Value::function("changed", [changed_last](Interpreter& in, CallArgs& a) -> Value {
    Value now = in.make_list(a.positional);
    if (changed_last->first && py_equal(changed_last->second, now)) return Value(false);
    changed_last->first = true;
    changed_last->second = now;
    return Value(true);
  });
  for (int64_t i = 0; i < n; ++i) {
    tick();
    *index = i;
    auto iter_scope = std::make_shared<Scope>(loop_scope);
    DictData loop;
    loop.items.reserve(13);
    auto put = [&](int k, Value v) { loop.items.emplace_back(kKeys[k], std::move(v)); };
    put(0, Value(i + 1));
    put(1, Value(i));
    put(2, Value(n - i));
    put(3, Value(n - i - 1));
    put(4, Value(i == 0));
    put(5, Value(i == n - 1));
    put(6, Value(n));
    put(7, Value(1));
    put(8, Value(0));
    if (i > 0) put(9, items[static_cast<size_t>(i - 1)]);
    if (i + 1 < n) put(10, items[static_cast<size_t>(i + 1)]);
    put(11, cycle);
    put(12, changed);
    iter_scope->set("loop", Value::dict(std::move(loop)));
    Restore<std::shared_ptr<Scope>> restore(&scope_, iter_scope);
    assign(*s.target, items[static_cast<size_t>(i)]);
    if (exec_body(s.body, out) == Flow::kBreak) break;
  }
}

void Interpreter::assign(const Expr& target, const Value& v) {
  if (target.kind == ExprKind::kName) {
    scope_->set(target.name, v);
    return;
  }
  if (target.kind == ExprKind::kNsRef) {
    const Value* ns = scope_->lookup(target.name);
    if (!ns || !ns->is_namespace())
      throw RenderError(RenderError::Kind::kType, "cannot assign attribute on non-namespace object");
    ns->namespace_data().attrs.set(Value(target.attr), v);
    return;
  }
  // Tuple unpacking.
  std::vector<Value> values = iterate(v);
  size_t want = target.children.size();
  if (values.size() < want)
    throw_value_error(str_cat("not enough values to unpack (expected ", want, ", got ", values.size(), ")"));
  if (values.size() > want) throw_value_error(str_cat("too many values to unpack (expected ", want, ")"));
  for (size_t i = 0; i < want; ++i) assign(*target.children[i], values[i]);
}

Value Interpreter::make_macro(const Stmt& s, const std::vector<Param>& params, const Body& body, std::string name) {
  auto closure = scope_;
  captured_scopes_.push_back(closure);
  bool uses_varargs = mentions_name(body, "varargs");
  bool uses_kwargs = mentions_name(body, "kwargs");
  bool uses_caller = mentions_name(body, "caller");
  const Stmt* stmt = &s;
  const std::vector<Param>* ps = &params;
  const Body* b = &body;
  return Value::function(
      name,
      [stmt, ps, b, closure, name, uses_varargs, uses_kwargs, uses_caller](Interpreter& in, CallArgs& args) -> Value {
        if (in.call_depth_ >= in.limits_.max_call_depth) in.limit_error("macro calls are nested too deeply");
        auto scope = std::make_shared<Scope>(closure);
        Restore<int> depth(&in.call_depth_, in.call_depth_ + 1);
        Restore<std::shared_ptr<Scope>> restore(&in.scope_, scope);
        const auto& plist = *ps;
        if (args.positional.size() > plist.size() && !uses_varargs)
          throw_type_error(str_cat("macro '", name, "' takes not more than ", plist.size(), " argument(s)"));
        std::vector<bool> given(plist.size(), false);
        for (size_t i = 0; i < plist.size() && i < args.positional.size(); ++i) {
          scope->set(plist[i].name, args.positional[i]);
          given[i] = true;
        }
        DictData extra_kwargs;
        Value caller;
        for (auto& [key, value] : args.keyword) {
          bool matched = false;
          for (size_t i = 0; i < plist.size(); ++i) {
            if (plist[i].name != key) continue;
            if (given[i]) throw_type_error(str_cat("macro '", name, "' got multiple values for argument '", key, "'"));
            scope->set(key, value);
            given[i] = true;
            matched = true;
          }
          if (matched) continue;
          if (key == "caller" && (uses_caller || stmt->kind == StmtKind::kCallBlock)) {
            caller = value;
          } else if (uses_kwargs) {
            extra_kwargs.set(Value(key), value);
          } else {
            throw_type_error(str_cat("macro '", name, "' takes no keyword argument '", key, "'"));
          }
        }
        for (size_t i = 0; i < plist.size(); ++i) {
          if (given[i]) continue;
          if (plist[i].default_value) scope->set(plist[i].name, in.eval(*plist[i].default_value));
          else scope->set(plist[i].name, Value::undefined(plist[i].name));
        }
        std::vector<Value> varargs;
        for (size_t i = plist.size(); i < args.positional.size(); ++i) varargs.push_back(args.positional[i]);
        if (uses_varargs) scope->set("varargs", in.make_list(std::move(varargs), true));
        if (uses_kwargs) scope->set("kwargs", Value::dict(std::move(extra_kwargs)));
        if (uses_caller) scope->set("caller", caller.is_undefined() ? Value::undefined("caller") : caller);
        std::string out;
        in.exec_body(*b, &out);
        return Value(std::move(out));
      },
      true);
}

CallArgs Interpreter::eval_args(const CallSpec& spec) {
  CallArgs args;
  for (const auto& a : spec.args) args.positional.push_back(eval(*a));
  if (spec.dyn_args) {
    Value extra = eval(*spec.dyn_args);
    for (auto& v : iterate(extra)) args.positional.push_back(std::move(v));
  }
  for (const auto& k : spec.kwargs) args.keyword.emplace_back(k.name, eval(*k.value));
  if (spec.dyn_kwargs) {
    Value extra = eval(*spec.dyn_kwargs);
    if (!extra.is_dict()) throw_type_error("argument after ** must be a mapping, not " + type_name(extra));
    for (const auto& [k, v] : extra.dict_data().items) {
      if (!k.is_string()) throw_type_error("keywords must be strings");
      args.keyword.emplace_back(k.str(), v);
    }
  }
  return args;
}

Value Interpreter::call(const Value& fn, CallArgs& args) {
  tick();
  if (fn.is_undefined()) throw_undefined(fn);
  if (!fn.is_function()) throw_type_error("'" + type_name(fn) + "' object is not callable");
  return fn.function_data().fn(*this, args);
}

Value Interpreter::apply_filter(const Expr& e, const Value* block_input) {
  const Expr* child = e.children[0].get();
  Value in;
  if (!child) in = block_input ? *block_input : Value::undefined();
  else if (child->kind == ExprKind::kFilter) in = apply_filter(*child, block_input);
  else in = eval(*child);
  CallArgs args = eval_args(e.call);
  if (!e.filter) throw RenderError(RenderError::Kind::kUnsupported, "No filter named '" + e.name + "' found.");
  return e.filter(*this, in, args);
}

bool Interpreter::run_test(std::string_view name, const Value& v, CallArgs& args) {
  TestFn t = find_test(name);
  if (!t) throw RenderError(RenderError::Kind::kUnsupported, str_cat("no test named '", name, "'"));
  return t(*this, v, args);
}

Value Interpreter::run_filter(std::string_view name, const Value& v, CallArgs& args) {
  FilterFn f = find_filter(name);
  if (!f) throw RenderError(RenderError::Kind::kUnsupported, str_cat("no filter named '", name, "'"));
  return f(*this, v, args);
}

}  // namespace kiln::text::jinja
