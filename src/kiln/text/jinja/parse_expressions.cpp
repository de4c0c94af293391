// The jinja parser's expressions, from tuples down to filters and tests, in jinja2's precedence.
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "kiln/core/str.h"
#include "kiln/text/jinja/builtins.h"
#include "kiln/text/jinja/parser_impl.h"

namespace kiln::text::jinja::detail {

bool Parser::is_tuple_end(std::initializer_list<const char*> extra_end) const {
  TokenType t = cur().type;
  if (t == TokenType::kVariableEnd || t == TokenType::kBlockEnd || t == TokenType::kEof) return true;
  if (is_op(")")) return true;
  for (const char* e : extra_end)
    if (is_name(e)) return true;
  return false;
}

ExprPtr Parser::parse_tuple(bool with_condexpr, std::initializer_list<const char*> extra_end, bool explicit_parens) {
  int line = cur().line;
  std::vector<ExprPtr> items;
  bool is_tuple = false;
  while (true) {
    if (!items.empty()) expect_op(",");
    if (is_tuple_end(extra_end)) break;
    items.push_back(parse_expression(with_condexpr));
    if (is_op(",")) is_tuple = true;
    else break;
  }
  if (!is_tuple) {
    if (!items.empty()) return std::move(items[0]);
    if (!explicit_parens) fail(str_cat("expected an expression, got '", describe(cur()), "'"));
  }
  auto e = make(ExprKind::kTuple, line);
  e->children = std::move(items);
  return e;
}

ExprPtr Parser::parse_expression(bool with_condexpr) {
  DepthGuard guard(this);
  return with_condexpr ? parse_condexpr() : parse_or();
}

ExprPtr Parser::parse_condexpr() {
  int line = cur().line;
  ExprPtr expr1 = parse_or();
  while (skip_name("if")) {
    DepthGuard guard(this);
    ExprPtr expr2 = parse_or();
    ExprPtr expr3;
    if (skip_name("else")) expr3 = parse_condexpr();
    auto e = make(ExprKind::kCond, line);
    e->children.push_back(std::move(expr2));
    e->children.push_back(std::move(expr1));
    e->children.push_back(std::move(expr3));
    mark_soft(e.get());
    expr1 = std::move(e);
    line = cur().line;
  }
  return expr1;
}

ExprPtr Parser::binary(ExprKind kind, int line, ExprPtr l, ExprPtr r, std::string op) {
  auto e = make(kind, line);
  e->name = std::move(op);
  e->children.push_back(std::move(l));
  e->children.push_back(std::move(r));
  return e;
}

ExprPtr Parser::parse_or() {
  int line = cur().line;
  ExprPtr left = parse_and();
  while (skip_name("or")) {
    DepthGuard guard(this);
    left = binary(ExprKind::kOr, line, std::move(left), parse_and());
    line = cur().line;
  }
  return left;
}

ExprPtr Parser::parse_and() {
  int line = cur().line;
  ExprPtr left = parse_not();
  while (skip_name("and")) {
    DepthGuard guard(this);
    left = binary(ExprKind::kAnd, line, std::move(left), parse_not());
    line = cur().line;
  }
  return left;
}

ExprPtr Parser::parse_not() {
  if (is_name("not")) {
    DepthGuard guard(this);
    int line = next().line;
    auto e = make(ExprKind::kNot, line);
    e->children.push_back(parse_not());
    return e;
  }
  return parse_compare();
}

ExprPtr Parser::parse_compare() {
  int line = cur().line;
  ExprPtr expr = parse_math1();
  std::vector<std::string> ops;
  std::vector<ExprPtr> operands;
  while (true) {
    if (cur().type == TokenType::kOperator &&
        (cur().text == "==" || cur().text == "!=" || cur().text == "<" || cur().text == "<=" ||
         cur().text == ">" || cur().text == ">=")) {
      ops.push_back(next().text);
    } else if (skip_name("in")) {
      ops.emplace_back("in");
    } else if (is_name("not") && look().type == TokenType::kName && look().text == "in") {
      next();
      next();
      ops.emplace_back("notin");
    } else {
      break;
    }
    operands.push_back(parse_math1());
  }
  if (ops.empty()) return expr;
  auto e = make(ExprKind::kCompare, line);
  e->children.push_back(std::move(expr));
  for (auto& o : operands) e->children.push_back(std::move(o));
  e->ops = std::move(ops);
  return e;
}

ExprPtr Parser::parse_math1() {
  int line = cur().line;
  ExprPtr left = parse_concat();
  while (is_op("+") || is_op("-")) {
    DepthGuard guard(this);
    std::string op = next().text;
    left = binary(ExprKind::kBinary, line, std::move(left), parse_concat(), op);
    line = cur().line;
  }
  return left;
}

ExprPtr Parser::parse_concat() {
  int line = cur().line;
  ExprPtr first = parse_math2();
  if (!is_op("~")) return first;
  auto e = make(ExprKind::kConcat, line);
  e->children.push_back(std::move(first));
  while (skip_op("~")) e->children.push_back(parse_math2());
  return e;
}

ExprPtr Parser::parse_math2() {
  int line = cur().line;
  ExprPtr left = parse_pow();
  while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
    DepthGuard guard(this);
    std::string op = next().text;
    left = binary(ExprKind::kBinary, line, std::move(left), parse_pow(), op);
    line = cur().line;
  }
  return left;
}

ExprPtr Parser::parse_pow() {
  int line = cur().line;
  ExprPtr left = parse_unary(true);
  while (skip_op("**")) {
    DepthGuard guard(this);
    left = binary(ExprKind::kBinary, line, std::move(left), parse_unary(true), "**");
    line = cur().line;
  }
  return left;
}

ExprPtr Parser::parse_unary(bool with_filter) {
  DepthGuard guard(this);
  int line = cur().line;
  ExprPtr node;
  if (is_op("-") || is_op("+")) {
    bool neg = next().text == "-";
    node = make(neg ? ExprKind::kNeg : ExprKind::kPos, line);
    node->children.push_back(parse_unary(false));
  } else {
    node = parse_primary(false);
  }
  node = parse_postfix(std::move(node));
  if (with_filter) node = parse_filter_expr(std::move(node));
  return node;
}

ExprPtr Parser::parse_primary(bool with_namespace) {
  DepthGuard guard(this);
  const Token& t = cur();
  int line = t.line;
  if (t.type == TokenType::kName) {
    std::string name = next().text;
    if (name == "true" || name == "True" || name == "false" || name == "False") {
      auto e = make(ExprKind::kConst, line);
      e->constant = Value(name == "true" || name == "True");
      return e;
    }
    if (name == "none" || name == "None") {
      auto e = make(ExprKind::kConst, line);
      e->constant = Value(nullptr);
      return e;
    }
    if (with_namespace && is_op(".")) {
      next();
      auto e = make(ExprKind::kNsRef, line);
      e->name = name;
      e->attr = expect_any_name();
      return e;
    }
    auto e = make(ExprKind::kName, line);
    e->name = name;
    return e;
  }
  if (t.type == TokenType::kString) {
    std::string s;
    while (cur().type == TokenType::kString) s += next().text;
    auto e = make(ExprKind::kConst, line);
    e->constant = Value(std::move(s));
    return e;
  }
  if (t.type == TokenType::kInteger || t.type == TokenType::kFloat) {
    auto e = make(ExprKind::kConst, line);
    e->constant = t.type == TokenType::kInteger ? Value(t.int_value) : Value(t.float_value);
    next();
    return e;
  }
  if (is_op("(")) {
    next();
    ExprPtr e = parse_tuple(true, {}, true);
    expect_op(")");
    return e;
  }
  if (is_op("[")) {
    next();
    auto e = make(ExprKind::kList, line);
    while (!is_op("]")) {
      if (!e->children.empty()) expect_op(",");
      if (is_op("]")) break;
      e->children.push_back(parse_expression(true));
    }
    expect_op("]");
    return e;
  }
  if (is_op("{")) {
    next();
    auto e = make(ExprKind::kDict, line);
    while (!is_op("}")) {
      if (!e->children.empty()) expect_op(",");
      if (is_op("}")) break;
      e->children.push_back(parse_expression(true));
      expect_op(":");
      e->children.push_back(parse_expression(true));
    }
    expect_op("}");
    return e;
  }
  fail(str_cat("unexpected '", describe(t), "'"));
}

ExprPtr Parser::parse_postfix(ExprPtr node) {
  while (true) {
    if (is_op(".") || is_op("[")) {
      node = parse_subscript(std::move(node));
    } else if (is_op("(")) {
      node = parse_call(std::move(node));
    } else {
      return node;
    }
  }
}

ExprPtr Parser::parse_filter_expr(ExprPtr node) {
  while (true) {
    if (is_op("|")) {
      node = parse_filter(std::move(node), false);
    } else if (is_name("is")) {
      node = parse_test(std::move(node));
    } else if (is_op("(")) {
      node = parse_call(std::move(node));
    } else {
      return node;
    }
  }
}

ExprPtr Parser::parse_subscript(ExprPtr node) {
  DepthGuard guard(this);
  Token t = next();
  if (t.text == ".") {
    const Token& a = cur();
    if (a.type == TokenType::kName) {
      auto e = make(ExprKind::kGetAttr, t.line);
      e->name = next().text;
      e->children.push_back(std::move(node));
      return e;
    }
    if (a.type != TokenType::kInteger) fail("expected name or number");
    auto key = make(ExprKind::kConst, a.line);
    key->constant = Value(a.int_value);
    next();
    auto e = make(ExprKind::kGetItem, t.line);
    e->children.push_back(std::move(node));
    e->children.push_back(std::move(key));
    return e;
  }
  std::vector<ExprPtr> args;
  while (!is_op("]")) {
    if (!args.empty()) expect_op(",");
    args.push_back(parse_subscribed(node));
  }
  expect_op("]");
  if (args.empty()) fail("expected subscript expression", t.line);
  if (args.size() == 1) {
    ExprPtr arg = std::move(args[0]);
    if (arg->kind == ExprKind::kSlice) {
      arg->children[0] = std::move(node);
      return arg;
    }
    auto e = make(ExprKind::kGetItem, t.line);
    e->children.push_back(std::move(node));
    e->children.push_back(std::move(arg));
    return e;
  }
  for (const auto& a : args)
    if (a->kind == ExprKind::kSlice) unsupported("multi-dimensional slices are not supported", t.line);
  auto tuple = make(ExprKind::kTuple, t.line);
  tuple->children = std::move(args);
  auto e = make(ExprKind::kGetItem, t.line);
  e->children.push_back(std::move(node));
  e->children.push_back(std::move(tuple));
  return e;
}

// One subscript: an expression or a slice [start]:[stop][:[step]]. A slice comes back as a
// kSlice whose object slot the caller fills.
ExprPtr Parser::parse_subscribed(const ExprPtr&) {
  int line = cur().line;
  ExprPtr start;
  if (!is_op(":")) {
    start = parse_expression(true);
    if (!is_op(":")) return start;
  }
  next();  // ':'
  ExprPtr stop;
  ExprPtr step;
  if (!is_op(":") && !is_op("]") && !is_op(",")) stop = parse_expression(true);
  if (skip_op(":")) {
    if (!is_op("]") && !is_op(",")) step = parse_expression(true);
  }
  auto e = make(ExprKind::kSlice, line);
  e->children.push_back(nullptr);
  e->children.push_back(std::move(start));
  e->children.push_back(std::move(stop));
  e->children.push_back(std::move(step));
  return e;
}

CallSpec Parser::parse_call_args() {
  int line = cur().line;
  expect_op("(");
  CallSpec spec;
  bool require_comma = false;
  auto ensure = [&](bool ok) {
    if (!ok) fail("invalid syntax for function call expression", line);
  };
  while (!is_op(")")) {
    if (require_comma) {
      expect_op(",");
      if (is_op(")")) break;
    }
    if (is_op("*")) {
      ensure(!spec.dyn_args && !spec.dyn_kwargs);
      next();
      spec.dyn_args = parse_expression(true);
    } else if (is_op("**")) {
      ensure(!spec.dyn_kwargs);
      next();
      spec.dyn_kwargs = parse_expression(true);
    } else if (cur().type == TokenType::kName && look().type == TokenType::kOperator && look().text == "=") {
      ensure(!spec.dyn_kwargs);
      std::string key = next().text;
      next();
      spec.kwargs.push_back(Keyword{std::move(key), parse_expression(true)});
    } else {
      ensure(!spec.dyn_args && !spec.dyn_kwargs && spec.kwargs.empty());
      spec.args.push_back(parse_expression(true));
    }
    require_comma = true;
  }
  expect_op(")");
  return spec;
}

ExprPtr Parser::parse_call(ExprPtr node) {
  DepthGuard guard(this);
  auto e = make(ExprKind::kCall, cur().line);
  e->call = parse_call_args();
  e->children.push_back(std::move(node));
  return e;
}

std::string Parser::dotted_name() {
  std::string name = expect_any_name();
  while (skip_op(".")) {
    name.push_back('.');
    name.append(expect_any_name());
  }
  return name;
}

ExprPtr Parser::parse_filter(ExprPtr node, bool start_inline) {
  while (is_op("|") || start_inline) {
    DepthGuard guard(this);
    if (!start_inline) next();
    int line = cur().line;
    auto e = make(ExprKind::kFilter, line);
    e->name = dotted_name();
    e->filter = find_filter(e->name);
    if (!e->filter) unknown_.push_back(Unknown{e.get(), true, soft_});
    if (is_op("(")) e->call = parse_call_args();
    e->children.push_back(std::move(node));
    node = std::move(e);
    start_inline = false;
  }
  return node;
}

ExprPtr Parser::parse_test(ExprPtr node) {
  DepthGuard guard(this);
  int line = next().line;  // 'is'
  bool negated = skip_name("not");
  auto e = make(ExprKind::kTest, line);
  e->name = dotted_name();
  e->test = find_test(e->name);
  if (!e->test) unknown_.push_back(Unknown{e.get(), false, soft_});
  TokenType tt = cur().type;
  if (is_op("(")) {
    e->call = parse_call_args();
  } else if ((tt == TokenType::kName || tt == TokenType::kString || tt == TokenType::kInteger ||
              tt == TokenType::kFloat || is_op("[") || is_op("{")) &&
             !is_name("else") && !is_name("or") && !is_name("and")) {
    if (is_name("is")) fail("you cannot chain multiple tests with is");
    e->call.args.push_back(parse_postfix(parse_primary(false)));
  }
  e->children.push_back(std::move(node));
  if (!negated) return e;
  auto n = make(ExprKind::kNot, line);
  n->children.push_back(std::move(e));
  return n;
}

void Parser::mark_soft(const Expr* root) {
  for (auto& u : unknown_) {
    if (u.soft) continue;
    // Is u.expr inside root?
    std::vector<const Expr*> stack{root};
    while (!stack.empty()) {
      const Expr* e = stack.back();
      stack.pop_back();
      if (!e) continue;
      if (e == u.expr) {
        u.soft = true;
        break;
      }
      for (const auto& c : e->children) stack.push_back(c.get());
      for (const auto& a : e->call.args) stack.push_back(a.get());
      for (const auto& k : e->call.kwargs) stack.push_back(k.value.get());
      stack.push_back(e->call.dyn_args.get());
      stack.push_back(e->call.dyn_kwargs.get());
    }
  }
}

}  // namespace kiln::text::jinja::detail
