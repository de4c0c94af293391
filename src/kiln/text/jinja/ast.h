// The parsed template: expression and statement nodes, mirroring jinja2's node types.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "kiln/text/jinja/value.h"

namespace kiln::text::jinja {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

// Filters and tests are looked up while parsing, as jinja2's compiler does, so an unknown name is
// a load-time error.
using FilterFn = Value (*)(Interpreter&, const Value& input, CallArgs& args);
using TestFn = bool (*)(Interpreter&, const Value& input, CallArgs& args);

struct Keyword {
  std::string name;
  ExprPtr value;
};

struct CallSpec {
  std::vector<ExprPtr> args;
  std::vector<Keyword> kwargs;
  ExprPtr dyn_args;    // *args
  ExprPtr dyn_kwargs;  // **kwargs
};

enum class ExprKind {
  kConst,
  kName,
  kList,
  kTuple,
  kDict,     // children alternate key, value
  kGetAttr,  // children[0].name
  kGetItem,  // children[0][children[1]]
  kSlice,    // children: object, start, stop, step (null when absent)
  kCall,     // children[0](call)
  kFilter,   // children[0] | name(call); children[0] is null inside filter/set blocks
  kTest,     // children[0] is name(call)
  kNeg,
  kPos,
  kNot,
  kBinary,   // name is the operator: + - * / // % **
  kCompare,  // children[0] then one operand per ops[i]
  kAnd,
  kOr,
  kCond,     // children: test, then, else (null when absent)
  kConcat,   // ~ over all children
  kNsRef,    // name.attr as an assignment target
};

struct Expr {
  ExprKind kind;
  int line = 0;
  Value constant;
  std::string name;
  std::string attr;  // kNsRef
  std::vector<ExprPtr> children;
  std::vector<std::string> ops;
  CallSpec call;
  FilterFn filter = nullptr;
  TestFn test = nullptr;
};

struct Stmt;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

enum class StmtKind {
  kData,
  kPrint,
  kIf,           // expr, body, else_body (elif nests an If in else_body)
  kFor,          // target, expr, cond, body, else_body
  kSet,          // target = expr
  kSetBlock,     // target, filter (may be null), body
  kMacro,        // name, params, body
  kCallBlock,    // expr (a call), params (caller's), body
  kFilterBlock,  // filter, body
  kWith,         // targets = values, body
  kBreak,
  kContinue,
  kScope,        // body only ({% generation %})
};

struct Param {
  std::string name;
  ExprPtr default_value;  // null when required
};

struct Stmt {
  StmtKind kind;
  int line = 0;
  std::string data;
  ExprPtr expr;
  ExprPtr target;
  ExprPtr cond;
  ExprPtr filter;
  Body body;
  Body else_body;
  std::string name;
  std::vector<Param> params;
  std::vector<ExprPtr> targets;
  std::vector<ExprPtr> values;
  bool is_recursive = false;
};

}  // namespace kiln::text::jinja
