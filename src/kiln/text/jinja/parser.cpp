// The jinja parser's token helpers and statements, and parse_template(); expressions are in parse_expressions.cpp.
#include "kiln/text/jinja/parser.h"

#include <initializer_list>

#include "kiln/core/str.h"
#include "kiln/text/jinja/lexer.h"
#include "kiln/text/jinja/parser_impl.h"

namespace kiln::text::jinja {
namespace detail {

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

ParsedTemplate Parser::parse_all() {
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

Token Parser::next() {
  Token t = toks_[pos_];
  if (pos_ + 1 < toks_.size()) ++pos_;
  return t;
}

bool Parser::skip_op(const char* op) {
  if (!is_op(op)) return false;
  next();
  return true;
}

bool Parser::skip_name(const char* name) {
  if (!is_name(name)) return false;
  next();
  return true;
}

void Parser::expect_op(const char* op) {
  if (!skip_op(op)) fail(str_cat("expected '", op, "', got '", describe(cur()), "'"));
}

void Parser::expect_name(const char* name) {
  if (!skip_name(name)) fail(str_cat("expected '", name, "', got '", describe(cur()), "'"));
}

std::string Parser::expect_any_name() {
  if (cur().type != TokenType::kName) fail(str_cat("expected name, got '", describe(cur()), "'"));
  return next().text;
}

void Parser::expect_block_end() {
  if (cur().type != TokenType::kBlockEnd) fail(str_cat("expected end of statement block, got '", describe(cur()), "'"));
  next();
}

ExprPtr Parser::make(ExprKind kind, int line) {
  auto e = std::make_unique<Expr>();
  e->kind = kind;
  e->line = line;
  return e;
}

// ---- statements ----

Body Parser::subparse(std::initializer_list<const char*> end_tokens) {
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
Body Parser::parse_statements(std::initializer_list<const char*> end_tokens, bool drop_needle) {
  skip_op(":");
  expect_block_end();
  Body body = subparse(end_tokens);
  if (cur().type == TokenType::kEof) fail("unexpected end of template");
  if (drop_needle) next();
  return body;
}

StmtPtr Parser::parse_statement() {
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

StmtPtr Parser::parse_for() {
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

StmtPtr Parser::parse_if() {
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
StmtPtr Parser::parse_if_tail(int line) {
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

StmtPtr Parser::parse_set() {
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

void Parser::parse_signature(std::vector<Param>* params) {
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

StmtPtr Parser::parse_macro() {
  next();
  SoftScope hard(this, false);
  auto s = std::make_unique<Stmt>();
  s->kind = StmtKind::kMacro;
  s->name = expect_any_name();
  parse_signature(&s->params);
  s->body = parse_statements({"endmacro"}, true);
  return s;
}

StmtPtr Parser::parse_call_block() {
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

StmtPtr Parser::parse_filter_block() {
  next();
  SoftScope hard(this, false);
  auto s = std::make_unique<Stmt>();
  s->kind = StmtKind::kFilterBlock;
  s->filter = parse_filter(nullptr, true);
  s->body = parse_statements({"endfilter"}, true);
  return s;
}

StmtPtr Parser::parse_with() {
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

ExprPtr Parser::parse_assign_target(bool with_namespace, std::initializer_list<const char*> extra_end) {
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

ExprPtr Parser::parse_tuple_simplified(bool with_namespace, std::initializer_list<const char*> extra_end) {
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

}  // namespace detail

using detail::Parser;
using detail::SyntaxError;

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
