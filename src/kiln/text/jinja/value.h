// Values of kiln's Jinja runtime: plain C++ with Python's semantics (what Python jinja2 sees when
// transformers renders a chat template). Lists, dicts and strings are shared and immutable once
// built, as the immutable sandbox keeps them; only namespaces change after creation.
#pragma once

#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace kiln::text::jinja {

class Value;
class Interpreter;

// Keyword arguments keep their call order, as Python's **kwargs does.
struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;
};

// Native functions, bound methods and macros. They report errors by throwing RenderError.
using NativeFn = std::function<Value(Interpreter&, CallArgs&)>;

struct Function {
  std::string name;
  NativeFn fn;
  bool is_macro = false;
};

// What Python object a sequence stands for. Filters such as map/select return generators in
// Python, and dict.items() a view; they iterate like lists but differ in truthiness, len(),
// indexing, printing and JSON, and templates can observe that.
enum class SeqKind : uint8_t { kList, kTuple, kGenerator, kReverseIterator, kDictItems, kDictKeys, kDictValues };

struct ListData {
  std::vector<Value> items;
  bool is_tuple = false;
  SeqKind seq = SeqKind::kList;
  int depth = 1;  // nesting of lists/dicts inside, set when the Value is built
};

// An insertion-ordered dict; keys compare as Python's do (1 == 1.0 == True).
struct DictData {
  std::vector<std::pair<Value, Value>> items;
  int depth = 1;  // set when the Value is built

  const Value* find(const Value& key) const;
  const Value* find(std::string_view key) const;
  const Value* find(const std::string& key) const { return find(std::string_view(key)); }
  const Value* find(const char* key) const { return find(std::string_view(key)); }
  // Inserts or replaces, keeping the first insertion's position (Python's dict assignment).
  void set(Value key, Value value);
};

struct NamespaceData {
  DictData attrs;
};

// Strings carry jinja2's Markup mark (set by |safe and |escape): adding a plain string to a
// Markup string HTML-escapes the plain one, as Python's markupsafe does.
struct StrData {
  std::string text;
  bool markup = false;
};

struct Undefined {
  std::string name;  // what was looked up, for the error an operation on it raises
};

class Value {
 public:
  enum class Kind { kUndefined, kNone, kBool, kInt, kFloat, kString, kList, kDict, kFunction, kNamespace };

  Value() : v_(Undefined{}) {}
  Value(std::nullptr_t) : v_(nullptr) {}  // NOLINT: None
  Value(bool b) : v_(b) {}                // NOLINT
  Value(int i) : v_(static_cast<int64_t>(i)) {}  // NOLINT
  Value(int64_t i) : v_(i) {}             // NOLINT
  Value(double d) : v_(d) {}              // NOLINT
  Value(const char* s) : v_(std::make_shared<const StrData>(StrData{s, false})) {}  // NOLINT
  Value(std::string s) : v_(std::make_shared<const StrData>(StrData{std::move(s), false})) {}  // NOLINT
  Value(std::string_view s) : v_(std::make_shared<const StrData>(StrData{std::string(s), false})) {}  // NOLINT
  static Value markup(std::string s) {
    Value v;
    v.v_ = std::make_shared<const StrData>(StrData{std::move(s), true});
    return v;
  }

  static Value undefined(std::string name = {}) { return Value(Undefined{std::move(name)}); }
  static Value list(std::vector<Value> items);
  static Value tuple(std::vector<Value> items);
  static Value sequence(std::vector<Value> items, SeqKind kind);
  static Value dict(DictData d);
  static Value dict(std::vector<std::pair<std::string, Value>> items);
  static Value function(std::string name, NativeFn fn, bool is_macro = false);
  static Value make_namespace(DictData attrs);

  Kind kind() const { return static_cast<Kind>(v_.index()); }
  bool is_undefined() const { return kind() == Kind::kUndefined; }
  bool is_none() const { return kind() == Kind::kNone; }
  bool is_bool() const { return kind() == Kind::kBool; }
  bool is_int() const { return kind() == Kind::kInt; }
  bool is_float() const { return kind() == Kind::kFloat; }
  bool is_number() const { return is_int() || is_float() || is_bool(); }
  bool is_string() const { return kind() == Kind::kString; }
  bool is_list() const { return kind() == Kind::kList; }  // lists, tuples, generators and views
  // A real list or tuple (indexable, sliceable, with len()).
  bool is_plain_list() const { return is_list() && (list_data().seq == SeqKind::kList || list_data().seq == SeqKind::kTuple); }
  SeqKind seq_kind() const { return list_data().seq; }
  bool is_tuple() const { return is_list() && list_data().is_tuple; }
  bool is_dict() const { return kind() == Kind::kDict; }
  bool is_function() const { return kind() == Kind::kFunction; }
  bool is_namespace() const { return kind() == Kind::kNamespace; }

  bool as_bool() const { return std::get<bool>(v_); }
  int64_t as_int() const { return std::get<int64_t>(v_); }
  double as_float() const { return std::get<double>(v_); }
  // Numbers as Python does arithmetic on them (bool is an int).
  double to_double() const;
  int64_t to_int() const;
  const std::string& str() const { return std::get<std::shared_ptr<const StrData>>(v_)->text; }
  bool is_markup() const { return is_string() && std::get<std::shared_ptr<const StrData>>(v_)->markup; }
  const std::vector<Value>& items() const { return list_data().items; }
  const ListData& list_data() const { return *std::get<std::shared_ptr<ListData>>(v_); }
  const DictData& dict_data() const { return *std::get<std::shared_ptr<DictData>>(v_); }
  const Function& function_data() const { return *std::get<std::shared_ptr<Function>>(v_); }
  NamespaceData& namespace_data() const { return *std::get<std::shared_ptr<NamespaceData>>(v_); }
  const std::string& undefined_name() const { return std::get<Undefined>(v_).name; }

  // Nesting of lists and dicts: 0 for scalars, 1 for a flat list.
  int depth() const;
  // Identity of shared objects (Python's `is` / sameas).
  const void* identity() const;

 private:
  explicit Value(Undefined u) : v_(std::move(u)) {}
  std::variant<Undefined, std::nullptr_t, bool, int64_t, double, std::shared_ptr<const StrData>,
               std::shared_ptr<ListData>, std::shared_ptr<DictData>, std::shared_ptr<Function>,
               std::shared_ptr<NamespaceData>>
      v_;
};

// How a render failed. kRaised is the template's own raise_exception(message).
class RenderError : public std::exception {
 public:
  enum class Kind { kRaised, kUndefined, kType, kValue, kSecurity, kLimit, kSyntax, kUnsupported };
  RenderError(Kind kind, std::string message, int line = 0)
      : kind_(kind), message_(std::move(message)), line_(line) {}
  const char* what() const noexcept override { return message_.c_str(); }
  Kind kind() const { return kind_; }
  const std::string& message() const { return message_; }
  int line() const { return line_; }
  void set_line(int line) {
    if (line_ == 0) line_ = line;
  }

 private:
  Kind kind_;
  std::string message_;
  int line_;
};

[[noreturn]] void throw_type_error(std::string message);
[[noreturn]] void throw_value_error(std::string message);
[[noreturn]] void throw_undefined(const Value& v);

// Python's type(x).__name__.
std::string type_name(const Value& v);
bool truthy(const Value& v);
// Python's str(x) and repr(x); undefined prints as "".
std::string py_str(const Value& v);
std::string py_repr(const Value& v);
void py_repr_append(std::string* out, const Value& v);
std::string py_repr_string(std::string_view s);
std::string py_float_repr(double d);
// Python's ==.
bool py_equal(const Value& a, const Value& b);
// Python's <, raising TypeError for types Python cannot order.
bool py_less(const Value& a, const Value& b);
// Python's len(); raises TypeError for values without one.
int64_t py_len(const Value& v);

}  // namespace kiln::text::jinja
