#include "kiln/text/jinja/interpreter.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "kiln/core/str.h"
#include "kiln/text/jinja/builtins.h"
#include "kiln/text/jinja/py_format.h"
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

void check_overflow(bool overflow) {
  if (overflow) throw RenderError(RenderError::Kind::kLimit, "integer overflow (kiln's integers are 64-bit)");
}

int64_t floor_div(int64_t a, int64_t b) {
  if (b == 0) throw RenderError(RenderError::Kind::kValue, "integer division or modulo by zero");
  check_overflow(a == std::numeric_limits<int64_t>::min() && b == -1);
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

int64_t py_mod(int64_t a, int64_t b) {
  if (b == 0) throw RenderError(RenderError::Kind::kValue, "integer division or modulo by zero");
  if (b == -1) return 0;
  int64_t r = a % b;
  if (r != 0 && ((r < 0) != (b < 0))) r += b;
  return r;
}

double py_fmod(double a, double b) {
  if (b == 0) throw RenderError(RenderError::Kind::kValue, "float modulo");
  double r = std::fmod(a, b);
  if (r != 0 && ((r < 0) != (b < 0))) r += b;
  else if (r == 0) r = std::copysign(0.0, b);
  return r;
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

Value Interpreter::getattr(const Value& obj, std::string_view name) {
  if (obj.is_undefined()) throw_undefined(obj);
  if (obj.is_namespace()) {
    const Value* v = obj.namespace_data().attrs.find(name);
    return v ? *v : Value::undefined(std::string(name));
  }
  Value method;
  if (find_method(obj, name, &method)) return method;
  if (obj.is_dict()) {
    const Value* v = obj.dict_data().find(name);
    if (v) return *v;
  }
  return Value::undefined(std::string(name));
}

Value Interpreter::getitem(const Value& obj, const Value& key) {
  if (obj.is_undefined()) throw_undefined(obj);
  if (obj.is_dict()) {
    const Value* v = obj.dict_data().find(key);
    if (v) return *v;
  } else if ((obj.is_plain_list() || obj.is_string()) && (key.is_int() || key.is_bool())) {
    int64_t i = key.to_int();
    if (obj.is_list()) {
      auto n = static_cast<int64_t>(obj.items().size());
      if (i < 0) i += n;
      if (i >= 0 && i < n) return obj.items()[static_cast<size_t>(i)];
    } else {
      const std::string& s = obj.str();
      if (is_ascii(s)) {
        auto n = static_cast<int64_t>(s.size());
        if (i < 0) i += n;
        if (i >= 0 && i < n) return Value(s.substr(static_cast<size_t>(i), 1));
      } else {
        auto offs = utf8_offsets(s);
        auto n = static_cast<int64_t>(offs.size() - 1);
        if (i < 0) i += n;
        if (i >= 0 && i < n)
          return Value(s.substr(offs[static_cast<size_t>(i)], offs[static_cast<size_t>(i) + 1] - offs[static_cast<size_t>(i)]));
      }
    }
    return Value::undefined();
  }
  if (key.is_string() && !obj.is_namespace()) {
    Value method;
    if (find_method(obj, key.str(), &method)) return method;
  }
  if (key.is_string() && obj.is_namespace()) {
    const Value* v = obj.namespace_data().attrs.find(key.str());
    if (v) return *v;
  }
  return Value::undefined(key.is_string() ? key.str() : py_repr(key));
}

Value Interpreter::slice(const Value& obj, const Value& start_v, const Value& stop_v, const Value& step_v) {
  if (obj.is_undefined()) throw_undefined(obj);
  auto index_of = [](const Value& v, const char* what) -> std::optional<int64_t> {
    if (v.is_none() || v.is_undefined()) return std::nullopt;
    if (v.is_int() || v.is_bool()) return v.to_int();
    throw_type_error(str_cat("slice indices must be integers or None (", what, " is ", type_name(v), ")"));
  };
  auto start = index_of(start_v, "start");
  auto stop = index_of(stop_v, "stop");
  auto step_o = index_of(step_v, "step");
  int64_t step = step_o.value_or(1);
  if (step == 0) throw_value_error("slice step cannot be zero");
  if (!obj.is_plain_list() && !obj.is_string()) return Value::undefined();
  bool is_str = obj.is_string();
  std::vector<size_t> offs;
  int64_t n;
  if (is_str) {
    offs = utf8_offsets(obj.str());
    n = static_cast<int64_t>(offs.size() - 1);
  } else {
    n = static_cast<int64_t>(obj.items().size());
  }
  auto clamp = [&](std::optional<int64_t> v, int64_t def_lo_or_hi, bool is_start) -> int64_t {
    if (!v) return def_lo_or_hi;
    int64_t x = *v;
    if (x < 0) {
      x += n;
      if (x < 0) x = step < 0 ? -1 : 0;
    } else if (x >= n) {
      x = step < 0 ? n - 1 : n;
    }
    (void)is_start;
    return x;
  };
  int64_t lo = clamp(start, step < 0 ? n - 1 : 0, true);
  int64_t hi = clamp(stop, step < 0 ? -1 : n, false);
  std::vector<int64_t> idx;
  if (step > 0) {
    for (int64_t i = lo; i < hi; i += step) idx.push_back(i);
  } else {
    for (int64_t i = lo; i > hi; i += step) idx.push_back(i);
  }
  if (is_str) {
    const std::string& s = obj.str();
    if (step == 1) {
      if (idx.empty()) return Value(std::string());
      return Value(s.substr(offs[static_cast<size_t>(idx.front())], offs[static_cast<size_t>(idx.back()) + 1] - offs[static_cast<size_t>(idx.front())]));
    }
    std::string out;
    for (int64_t i : idx) out.append(s, offs[static_cast<size_t>(i)], offs[static_cast<size_t>(i) + 1] - offs[static_cast<size_t>(i)]);
    return Value(std::move(out));
  }
  std::vector<Value> out;
  out.reserve(idx.size());
  for (int64_t i : idx) out.push_back(obj.items()[static_cast<size_t>(i)]);
  return make_list(std::move(out), obj.is_tuple());
}

Value Interpreter::eval(const Expr& e) {
  tick();
  try {
    switch (e.kind) {
      case ExprKind::kConst: return e.constant;
      case ExprKind::kName: {
        const Value* v = scope_->lookup(e.name);
        return v ? *v : Value::undefined(e.name);
      }
      case ExprKind::kList:
      case ExprKind::kTuple: {
        std::vector<Value> items;
        items.reserve(e.children.size());
        for (const auto& c : e.children) items.push_back(eval(*c));
        return make_list(std::move(items), e.kind == ExprKind::kTuple);
      }
      case ExprKind::kDict: {
        DictData d;
        for (size_t i = 0; i + 1 < e.children.size(); i += 2) {
          Value k = eval(*e.children[i]);
          if (k.is_list() && !k.is_tuple()) throw_type_error("unhashable type: '" + type_name(k) + "'");
          if (k.is_dict()) throw_type_error("unhashable type: 'dict'");
          d.set(std::move(k), eval(*e.children[i + 1]));
        }
        return make_dict(std::move(d));
      }
      case ExprKind::kGetAttr: return getattr(eval(*e.children[0]), e.name);
      case ExprKind::kGetItem: return getitem(eval(*e.children[0]), eval(*e.children[1]));
      case ExprKind::kSlice: {
        Value obj = eval(*e.children[0]);
        auto opt = [&](size_t i) { return e.children[i] ? eval(*e.children[i]) : Value(nullptr); };
        Value a = opt(1), b = opt(2), c = opt(3);
        return slice(obj, a, b, c);
      }
      case ExprKind::kCall: {
        Value fn = eval(*e.children[0]);
        CallArgs args = eval_args(e.call);
        return call(fn, args);
      }
      case ExprKind::kFilter: return apply_filter(e, nullptr);
      case ExprKind::kTest: {
        Value v = eval(*e.children[0]);
        CallArgs args = eval_args(e.call);
        if (!e.test) throw RenderError(RenderError::Kind::kUnsupported, "No test named '" + e.name + "' found.");
        return Value(e.test(*this, v, args));
      }
      case ExprKind::kNeg:
      case ExprKind::kPos: {
        Value v = eval(*e.children[0]);
        if (v.is_undefined()) throw_undefined(v);
        bool neg = e.kind == ExprKind::kNeg;
        if (v.is_float()) return Value(neg ? -v.as_float() : v.as_float());
        if (v.is_int() || v.is_bool()) {
          int64_t i = v.to_int();
          if (!neg) return Value(i);
          check_overflow(i == std::numeric_limits<int64_t>::min());
          return Value(-i);
        }
        throw_type_error(str_cat("bad operand type for unary ", neg ? "-" : "+", ": '", type_name(v), "'"));
      }
      case ExprKind::kNot: return Value(!truthy(eval(*e.children[0])));
      case ExprKind::kBinary: return eval_binary(e);
      case ExprKind::kCompare: return eval_compare(e);
      case ExprKind::kAnd: {
        Value l = eval(*e.children[0]);
        return truthy(l) ? eval(*e.children[1]) : l;
      }
      case ExprKind::kOr: {
        Value l = eval(*e.children[0]);
        return truthy(l) ? l : eval(*e.children[1]);
      }
      case ExprKind::kCond: {
        if (truthy(eval(*e.children[0]))) return eval(*e.children[1]);
        return e.children[2] ? eval(*e.children[2]) : Value::undefined();
      }
      case ExprKind::kConcat: {
        std::string out;
        for (const auto& c : e.children) {
          Value v = eval(*c);
          append(&out, v.is_string() ? v.str() : py_str(v));
        }
        return Value(std::move(out));
      }
      case ExprKind::kNsRef: throw RenderError(RenderError::Kind::kSyntax, "namespace reference outside an assignment");
    }
  } catch (RenderError& err) {
    err.set_line(e.line);
    throw;
  }
  return Value::undefined();
}

Value Interpreter::eval_binary(const Expr& e) {
  Value l = eval(*e.children[0]);
  Value r = eval(*e.children[1]);
  const std::string& op = e.name;
  if (l.is_undefined()) throw_undefined(l);
  if (r.is_undefined()) throw_undefined(r);
  auto unsupported = [&]() -> Value {
    throw_type_error(str_cat("unsupported operand type(s) for ", op, ": '", type_name(l), "' and '", type_name(r), "'"));
  };
  if (l.is_number() && r.is_number()) {
    bool fl = l.is_float() || r.is_float();
    if (op == "/") {
      double d = r.to_double();
      if (d == 0) throw_value_error("division by zero");
      return Value(l.to_double() / d);
    }
    if (op == "**") {
      if (!fl && r.to_int() >= 0) {
        int64_t base = l.to_int(), exp = r.to_int(), result = 1;
        while (exp > 0) {
          if (exp & 1) check_overflow(__builtin_mul_overflow(result, base, &result));
          exp >>= 1;
          if (exp) check_overflow(__builtin_mul_overflow(base, base, &base));
        }
        return Value(result);
      }
      if (l.to_double() == 0 && r.to_double() < 0) throw_value_error("0.0 cannot be raised to a negative power");
      return Value(std::pow(l.to_double(), r.to_double()));
    }
    if (fl) {
      double a = l.to_double(), b = r.to_double();
      if (op == "+") return Value(a + b);
      if (op == "-") return Value(a - b);
      if (op == "*") return Value(a * b);
      if (op == "//") {
        if (b == 0) throw_value_error("float floor division by zero");
        return Value(std::floor(a / b));
      }
      if (op == "%") return Value(py_fmod(a, b));
    } else {
      int64_t a = l.to_int(), b = r.to_int(), out = 0;
      if (op == "+") {
        check_overflow(__builtin_add_overflow(a, b, &out));
        return Value(out);
      }
      if (op == "-") {
        check_overflow(__builtin_sub_overflow(a, b, &out));
        return Value(out);
      }
      if (op == "*") {
        check_overflow(__builtin_mul_overflow(a, b, &out));
        return Value(out);
      }
      if (op == "//") return Value(floor_div(a, b));
      if (op == "%") return Value(py_mod(a, b));
    }
    return unsupported();
  }
  if (op == "+") {
    if (l.is_string() && r.is_string()) {
      check_size(l.str().size() + r.str().size());
      if (l.is_markup() != r.is_markup()) {
        // markupsafe: the plain side is HTML-escaped and the result stays Markup.
        return l.is_markup() ? Value::markup(l.str() + html_escape(r.str())) : Value::markup(html_escape(l.str()) + r.str());
      }
      return l.is_markup() ? Value::markup(l.str() + r.str()) : Value(l.str() + r.str());
    }
    if (l.is_plain_list() && r.is_plain_list() && l.is_tuple() == r.is_tuple()) {
      std::vector<Value> items = l.items();
      items.insert(items.end(), r.items().begin(), r.items().end());
      return make_list(std::move(items), l.is_tuple());
    }
    if (l.is_list() && r.is_list())
      throw_type_error(str_cat("can only concatenate ", type_name(l), " (not \"", type_name(r), "\") to ", type_name(l)));
    return unsupported();
  }
  if (op == "*") {
    const Value* seq = (l.is_string() || l.is_plain_list()) ? &l : (r.is_string() || r.is_plain_list()) ? &r : nullptr;
    const Value* count = seq == &l ? &r : &l;
    if (seq && (count->is_int() || count->is_bool())) {
      int64_t times = std::max<int64_t>(0, count->to_int());
      if (seq->is_string()) {
        check_size(static_cast<size_t>(times) * seq->str().size() > limits_.max_output_bytes
                       ? limits_.max_output_bytes + 1
                       : static_cast<size_t>(times) * seq->str().size());
        std::string out;
        for (int64_t i = 0; i < times; ++i) out += seq->str();
        return Value(std::move(out));
      }
      size_t total = static_cast<size_t>(times) * seq->items().size();
      if (times > 0 && total / static_cast<size_t>(times) != seq->items().size()) limit_error("list too large");
      check_size(total * 16);
      std::vector<Value> items;
      items.reserve(total);
      for (int64_t i = 0; i < times; ++i) items.insert(items.end(), seq->items().begin(), seq->items().end());
      return make_list(std::move(items), seq->is_tuple());
    }
    return unsupported();
  }
  if (op == "%" && l.is_string()) {
    std::string out = percent_format(l.str(), r);
    check_size(out.size());
    return Value(std::move(out));
  }
  return unsupported();
}

namespace {

bool contains(const Value& container, const Value& item) {
  switch (container.kind()) {
    case Value::Kind::kUndefined: return false;
    case Value::Kind::kString:
      if (!item.is_string())
        throw_type_error("'in <string>' requires string as left operand, not " + type_name(item));
      return container.str().find(item.str()) != std::string::npos;
    case Value::Kind::kList:
      for (const auto& v : container.items())
        if (py_equal(v, item)) return true;
      return false;
    case Value::Kind::kDict: return container.dict_data().find(item) != nullptr;
    default: throw_type_error("argument of type '" + type_name(container) + "' is not iterable");
  }
}

}  // namespace

Value Interpreter::eval_compare(const Expr& e) {
  Value left = eval(*e.children[0]);
  for (size_t i = 0; i < e.ops.size(); ++i) {
    Value right = eval(*e.children[i + 1]);
    const std::string& op = e.ops[i];
    bool ok;
    if (op == "==") ok = py_equal(left, right);
    else if (op == "!=") ok = !py_equal(left, right);
    else if (op == "<") ok = py_less(left, right);
    else if (op == ">") ok = py_less(right, left);
    else if (op == "<=") ok = py_less(left, right) || py_equal(left, right);
    else if (op == ">=") ok = py_less(right, left) || py_equal(left, right);
    else if (op == "in") ok = contains(right, left);
    else ok = !contains(right, left);
    if (!ok) return Value(false);
    left = std::move(right);
  }
  return Value(true);
}

}  // namespace kiln::text::jinja
