#include "kiln/text/jinja/parser.h"

#include <initializer_list>

#include "kiln/core/str.h"
#include "kiln/text/jinja/builtins.h"
#include "kiln/text/jinja/lexer.h"

namespace kiln::text::jinja {
namespace {

struct SyntaxError {
  StatusCode code;
  int line;
  std::string message;
};

std::string describe(const Token& t) {
  switch (t.type) {
    case TokenType::kData: return "template data";
    case TokenType::kVariableBegin: return "begin of print statement";
    case TokenType::kVariableEnd: return "end of print statement";
    case TokenType::kBlockBegin: return "begin of statement block";
    case TokenType::kBlockEnd: return "end of statement block";
    case TokenType::kName: return t.text;
    case TokenType::kString: return "string";
    case TokenType::kInteger: return "integer";
    case TokenType::kFloat: return "float";
    case TokenType::kOperator: return t.text;
    case TokenType::kEof: return "end of template";
  }
  return "token";
}

class Parser {
 public:
  Parser(std::vector<Token> tokens, const ParseLimits& limits) : toks_(std::move(tokens)), limits_(limits) {}

  ParsedTemplate parse_all() {
    ParsedTemplate out;
    out.body = subparse({});
    if (cur().type != TokenType::kEof) fail(str_cat("unexpected '", describe(cur()), "'"));
    for (const auto& u : unknown_) {
      std::string what = str_cat("no ", u.is_filter ? "filter" : "test", " named '",
                                 u.expr->name, "'");
      if (!u.soft) unsupported(what, u.expr->line);
      out.warnings.push_back(str_cat("line ", u.expr->line, ": ", what));
    }
    return out;
  }

 private:
  // Depth guard for the recursive descent: a hostile template cannot overflow the stack.
  struct DepthGuard {
    explicit DepthGuard(Parser* p) : p_(p) {
      if (++p_->depth_ > p_->limits_.max_depth) p_->fail("template is nested too deeply");
    }
    ~DepthGuard() { --p_->depth_; }
    Parser* p_;
  };

  [[noreturn]] void fail(const std::string& message, int line = 0) const {
    throw SyntaxError{StatusCode::kInvalidArgument, line ? line : cur().line, message};
  }
  [[noreturn]] void unsupported(const std::string& message, int line) const {
    throw SyntaxError{StatusCode::kUnimplemented, line, message};
  }

  const Token& cur() const { return toks_[pos_]; }
  const Token& look() const { return toks_[pos_ + 1 < toks_.size() ? pos_ + 1 : pos_]; }
  Token next() {
    Token t = toks_[pos_];
    if (pos_ + 1 < toks_.size()) ++pos_;
    return t;
  }
  bool is_op(const char* op) const { return cur().type == TokenType::kOperator && cur().text == op; }
  bool is_name(const char* name) const { return cur().type == TokenType::kName && cur().text == name; }
  bool skip_op(const char* op) {
    if (!is_op(op)) return false;
    next();
    return true;
  }
  bool skip_name(const char* name) {
    if (!is_name(name)) return false;
    next();
    return true;
  }
  void expect_op(const char* op) {
    if (!skip_op(op)) fail(str_cat("expected '", op, "', got '", describe(cur()), "'"));
  }
  void expect_name(const char* name) {
    if (!skip_name(name)) fail(str_cat("expected '", name, "', got '", describe(cur()), "'"));
  }
  std::string expect_any_name() {
    if (cur().type != TokenType::kName) fail(str_cat("expected name, got '", describe(cur()), "'"));
    return next().text;
  }
  void expect_block_end() {
    if (cur().type != TokenType::kBlockEnd) fail(str_cat("expected end of statement block, got '", describe(cur()), "'"));
    next();
  }

  static ExprPtr make(ExprKind kind, int line) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->line = line;
    return e;
  }

  // ---- statements ----

  Body subparse(std::initializer_list<const char*> end_tokens) {
    DepthGuard guard(this);
    Body body;
    while (cur().type != TokenType::kEof) {
      const Token& t = cur();
      if (t.type == TokenType::kData) {
        auto s = std::make_unique<Stmt>();
        s->kind = StmtKind::kData;
        s->line = t.line;
        s->data = t.text;
        next();
        body.push_back(std::move(s));
      } else if (t.type == TokenType::kVariableBegin) {
        auto s = std::make_unique<Stmt>();
        s->kind = StmtKind::kPrint;
        s->line = t.line;
        next();
        s->expr = parse_tuple(true, {}, false);
        if (cur().type != TokenType::kVariableEnd) fail(str_cat("expected end of print statement, got '", describe(cur()), "'"));
        next();
        body.push_back(std::move(s));
      } else if (t.type == TokenType::kBlockBegin) {
        next();
        for (const char* e : end_tokens)
          if (is_name(e)) return body;
        body.push_back(parse_statement());
      } else {
        fail(str_cat("unexpected '", describe(t), "'"));
      }
    }
    if (end_tokens.size()) {
      std::string expected;
      for (const char* e : end_tokens) {
        expected.append(expected.empty() ? "'" : " or '");
        expected.append(e);
        expected.push_back('\'');
      }
      fail("unexpected end of template; jinja was looking for " + expected);
    }
    return body;
  }

  // Parses `%}` then the body up to one of end_tokens (left current unless drop_needle).
  Body parse_statements(std::initializer_list<const char*> end_tokens, bool drop_needle) {
    skip_op(":");
    expect_block_end();
    Body body = subparse(end_tokens);
    if (cur().type == TokenType::kEof) fail("unexpected end of template");
    if (drop_needle) next();
    return body;
  }

  StmtPtr parse_statement() {
    const Token& t = cur();
    if (t.type != TokenType::kName) fail("tag name expected");
    int line = t.line;
    std::string tag = t.text;
    StmtPtr s;
    if (tag == "for") s = parse_for();
    else if (tag == "if") s = parse_if();
    else if (tag == "set") s = parse_set();
    else if (tag == "macro") s = parse_macro();
    else if (tag == "call") s = parse_call_block();
    else if (tag == "filter") s = parse_filter_block();
    else if (tag == "with") s = parse_with();
    else if (tag == "print") {
      next();
      s = std::make_unique<Stmt>();
      s->kind = StmtKind::kPrint;
      s->expr = parse_tuple(true, {}, false);
    } else if (tag == "break" || tag == "continue") {
      next();
      s = std::make_unique<Stmt>();
      s->kind = tag == "break" ? StmtKind::kBreak : StmtKind::kContinue;
    } else if (tag == "generation") {
      next();
      s = std::make_unique<Stmt>();
      s->kind = StmtKind::kScope;
      s->body = parse_statements({"endgeneration"}, true);
    } else if (tag == "include" || tag == "extends" || tag == "import" || tag == "from" || tag == "block") {
      unsupported(str_cat("'", tag, "' needs a template loader, which chat templates do not have"), line);
    } else if (tag == "autoescape") {
      unsupported("'autoescape' blocks are not supported in chat templates", line);
    } else {
      fail(str_cat("encountered unknown tag '", tag, "'"), line);
    }
    s->line = line;
    expect_block_end();
    return s;
  }

  StmtPtr parse_for() {
    next();
    SoftScope hard(this, false);
    auto s = std::make_unique<Stmt>();
    s->kind = StmtKind::kFor;
    s->target = parse_assign_target(false, {"in"});
    expect_name("in");
    s->expr = parse_tuple(false, {"recursive"}, false);
    if (skip_name("if")) s->cond = parse_expression(true);
    if (skip_name("recursive")) unsupported("recursive for loops are not supported", s->line ? s->line : cur().line);
    s->body = parse_statements({"endfor", "else"}, false);
    if (next().text == "else") s->else_body = parse_statements({"endfor"}, true);
    return s;
  }

  StmtPtr parse_if() {
    SoftScope soft(this, true);
    next();
    auto s = std::make_unique<Stmt>();
    s->kind = StmtKind::kIf;
    s->line = cur().line;
    s->expr = parse_tuple(false, {}, false);
    s->body = parse_statements({"elif", "else", "endif"}, false);
    Token t = next();
    if (t.text == "elif") {
      auto inner = parse_if_tail(t.line);
      s->else_body.push_back(std::move(inner));
    } else if (t.text == "else") {
      s->else_body = parse_statements({"endif"}, true);
    }
    return s;
  }

  // After `elif`: same as an if whose closing endif is shared with the outer one.
  StmtPtr parse_if_tail(int line) {
    DepthGuard guard(this);
    auto s = std::make_unique<Stmt>();
    s->kind = StmtKind::kIf;
    s->line = line;
    s->expr = parse_tuple(false, {}, false);
    s->body = parse_statements({"elif", "else", "endif"}, false);
    Token t = next();
    if (t.text == "elif") {
      s->else_body.push_back(parse_if_tail(t.line));
    } else if (t.text == "else") {
      s->else_body = parse_statements({"endif"}, true);
    }
    return s;
  }

  StmtPtr parse_set() {
    next();
    auto s = std::make_unique<Stmt>();
    s->target = parse_assign_target(true, {});
    if (skip_op("=")) {
      s->kind = StmtKind::kSet;
      s->expr = parse_tuple(true, {}, false);
      return s;
    }
    s->kind = StmtKind::kSetBlock;
    SoftScope hard(this, false);
    s->filter = parse_filter(nullptr, false);
    s->body = parse_statements({"endset"}, true);
    return s;
  }

  void parse_signature(std::vector<Param>* params) {
    expect_op("(");
    while (!is_op(")")) {
      if (!params->empty()) expect_op(",");
      Param p;
      int line = cur().line;
      p.name = expect_any_name();
      if (skip_op("=")) p.default_value = parse_expression(true);
      else if (!params->empty() && params->back().default_value)
        fail("non-default argument follows default argument", line);
      params->push_back(std::move(p));
    }
    expect_op(")");
  }

  StmtPtr parse_macro() {
    next();
    SoftScope hard(this, false);
    auto s = std::make_unique<Stmt>();
    s->kind = StmtKind::kMacro;
    s->name = expect_any_name();
    parse_signature(&s->params);
    s->body = parse_statements({"endmacro"}, true);
    return s;
  }

  StmtPtr parse_call_block() {
    next();
    SoftScope hard(this, false);
    auto s = std::make_unique<Stmt>();
    s->kind = StmtKind::kCallBlock;
    if (is_op("(")) parse_signature(&s->params);
    int line = cur().line;
    s->expr = parse_expression(true);
    if (s->expr->kind != ExprKind::kCall) fail("expected call", line);
    s->body = parse_statements({"endcall"}, true);
    return s;
  }

  StmtPtr parse_filter_block() {
    next();
    SoftScope hard(this, false);
    auto s = std::make_unique<Stmt>();
    s->kind = StmtKind::kFilterBlock;
    s->filter = parse_filter(nullptr, true);
    s->body = parse_statements({"endfilter"}, true);
    return s;
  }

  StmtPtr parse_with() {
    next();
    SoftScope hard(this, false);
    auto s = std::make_unique<Stmt>();
    s->kind = StmtKind::kWith;
    while (cur().type != TokenType::kBlockEnd) {
      if (!s->targets.empty()) expect_op(",");
      s->targets.push_back(parse_assign_target(false, {}));
      expect_op("=");
      s->values.push_back(parse_expression(true));
    }
    s->body = parse_statements({"endwith"}, true);
    return s;
  }

  ExprPtr parse_assign_target(bool with_namespace, std::initializer_list<const char*> extra_end) {
    int line = cur().line;
    ExprPtr target = parse_tuple_simplified(with_namespace, extra_end);
    auto check = [&](const Expr& e) {
      if (e.kind == ExprKind::kName) {
        if (e.name == "true" || e.name == "false" || e.name == "none" || e.name == "True" || e.name == "False" ||
            e.name == "None")
          fail("can't assign to constant '" + e.name + "'", line);
        return;
      }
      if (e.kind != ExprKind::kNsRef) fail("can't assign to this expression", line);
    };
    if (target->kind == ExprKind::kTuple) {
      for (const auto& c : target->children) check(*c);
    } else {
      check(*target);
    }
    return target;
  }

  ExprPtr parse_tuple_simplified(bool with_namespace, std::initializer_list<const char*> extra_end) {
    int line = cur().line;
    std::vector<ExprPtr> items;
    bool is_tuple = false;
    while (true) {
      if (!items.empty()) expect_op(",");
      if (is_tuple_end(extra_end)) break;
      items.push_back(parse_primary(with_namespace));
      if (is_op(",")) is_tuple = true;
      else break;
    }
    if (!is_tuple) {
      if (items.empty()) fail(str_cat("expected an expression, got '", describe(cur()), "'"));
      return std::move(items[0]);
    }
    auto e = make(ExprKind::kTuple, line);
    e->children = std::move(items);
    return e;
  }

  // ---- expressions ----

  bool is_tuple_end(std::initializer_list<const char*> extra_end) const {
    TokenType t = cur().type;
    if (t == TokenType::kVariableEnd || t == TokenType::kBlockEnd || t == TokenType::kEof) return true;
    if (is_op(")")) return true;
    for (const char* e : extra_end)
      if (is_name(e)) return true;
    return false;
  }

  ExprPtr parse_tuple(bool with_condexpr, std::initializer_list<const char*> extra_end, bool explicit_parens) {
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

  ExprPtr parse_expression(bool with_condexpr) {
    DepthGuard guard(this);
    return with_condexpr ? parse_condexpr() : parse_or();
  }

  ExprPtr parse_condexpr() {
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

  ExprPtr binary(ExprKind kind, int line, ExprPtr l, ExprPtr r, std::string op = {}) {
    auto e = make(kind, line);
    e->name = std::move(op);
    e->children.push_back(std::move(l));
    e->children.push_back(std::move(r));
    return e;
  }

  ExprPtr parse_or() {
    int line = cur().line;
    ExprPtr left = parse_and();
    while (skip_name("or")) {
      DepthGuard guard(this);
      left = binary(ExprKind::kOr, line, std::move(left), parse_and());
      line = cur().line;
    }
    return left;
  }

  ExprPtr parse_and() {
    int line = cur().line;
    ExprPtr left = parse_not();
    while (skip_name("and")) {
      DepthGuard guard(this);
      left = binary(ExprKind::kAnd, line, std::move(left), parse_not());
      line = cur().line;
    }
    return left;
  }

  ExprPtr parse_not() {
    if (is_name("not")) {
      DepthGuard guard(this);
      int line = next().line;
      auto e = make(ExprKind::kNot, line);
      e->children.push_back(parse_not());
      return e;
    }
    return parse_compare();
  }

  ExprPtr parse_compare() {
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

  ExprPtr parse_math1() {
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

  ExprPtr parse_concat() {
    int line = cur().line;
    ExprPtr first = parse_math2();
    if (!is_op("~")) return first;
    auto e = make(ExprKind::kConcat, line);
    e->children.push_back(std::move(first));
    while (skip_op("~")) e->children.push_back(parse_math2());
    return e;
  }

  ExprPtr parse_math2() {
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

  ExprPtr parse_pow() {
    int line = cur().line;
    ExprPtr left = parse_unary(true);
    while (skip_op("**")) {
      DepthGuard guard(this);
      left = binary(ExprKind::kBinary, line, std::move(left), parse_unary(true), "**");
      line = cur().line;
    }
    return left;
  }

  ExprPtr parse_unary(bool with_filter) {
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

  ExprPtr parse_primary(bool with_namespace) {
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

  ExprPtr parse_postfix(ExprPtr node) {
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

  ExprPtr parse_filter_expr(ExprPtr node) {
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

  ExprPtr parse_subscript(ExprPtr node) {
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
  ExprPtr parse_subscribed(const ExprPtr&) {
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

  CallSpec parse_call_args() {
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

  ExprPtr parse_call(ExprPtr node) {
    DepthGuard guard(this);
    auto e = make(ExprKind::kCall, cur().line);
    e->call = parse_call_args();
    e->children.push_back(std::move(node));
    return e;
  }

  std::string dotted_name() {
    std::string name = expect_any_name();
    while (skip_op(".")) {
      name.push_back('.');
      name.append(expect_any_name());
    }
    return name;
  }

  ExprPtr parse_filter(ExprPtr node, bool start_inline) {
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

  ExprPtr parse_test(ExprPtr node) {
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

  // jinja2 checks filter and test names at compile time, except in "soft" frames (the branches
  // of an if statement and conditional expressions), where a missing one fails only when run.
  struct Unknown {
    Expr* expr;
    bool is_filter;
    bool soft;
  };
  class SoftScope {
   public:
    SoftScope(Parser* p, bool soft) : p_(p), old_(p->soft_) { p_->soft_ = soft; }
    ~SoftScope() { p_->soft_ = old_; }
    SoftScope(const SoftScope&) = delete;
    SoftScope& operator=(const SoftScope&) = delete;

   private:
    Parser* p_;
    bool old_;
  };
  void mark_soft(const Expr* root) {
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

  std::vector<Token> toks_;
  ParseLimits limits_;
  bool soft_ = false;
  std::vector<Unknown> unknown_;
  size_t pos_ = 0;
  int depth_ = 0;
};

}  // namespace

Result<ParsedTemplate> parse_template(std::string_view source, const ParseLimits& limits) {
  KILN_ASSIGN_OR_RETURN(auto tokens, tokenize(source));
  Parser parser(std::move(tokens), limits);
  try {
    return parser.parse_all();
  } catch (const SyntaxError& e) {
    return Status(e.code, str_cat("line ", e.line, ": ", e.message));
  }
}

}  // namespace kiln::text::jinja
