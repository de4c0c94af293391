// Internal header, for the jinja parser only: the Parser class that parser.cpp and parse_expressions.cpp share.
#pragma once

#include <cstddef>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "kiln/core/status.h"
#include "kiln/text/jinja/ast.h"
#include "kiln/text/jinja/lexer.h"
#include "kiln/text/jinja/parser.h"

namespace kiln::text::jinja::detail {

struct SyntaxError {
  StatusCode code;
  int line;
  std::string message;
};

std::string describe(const Token& t);

class Parser {
 public:
  Parser(std::vector<Token> tokens, const ParseLimits& limits) : toks_(std::move(tokens)), limits_(limits) {}

  ParsedTemplate parse_all();

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
  Token next();
  bool is_op(const char* op) const { return cur().type == TokenType::kOperator && cur().text == op; }
  bool is_name(const char* name) const { return cur().type == TokenType::kName && cur().text == name; }
  bool skip_op(const char* op);
  bool skip_name(const char* name);
  void expect_op(const char* op);
  void expect_name(const char* name);
  std::string expect_any_name();
  void expect_block_end();
  static ExprPtr make(ExprKind kind, int line);

  // ---- statements (parser.cpp) ----
  Body subparse(std::initializer_list<const char*> end_tokens);
  Body parse_statements(std::initializer_list<const char*> end_tokens, bool drop_needle);
  StmtPtr parse_statement();
  StmtPtr parse_for();
  StmtPtr parse_if();
  StmtPtr parse_if_tail(int line);
  StmtPtr parse_set();
  void parse_signature(std::vector<Param>* params);
  StmtPtr parse_macro();
  StmtPtr parse_call_block();
  StmtPtr parse_filter_block();
  StmtPtr parse_with();
  ExprPtr parse_assign_target(bool with_namespace, std::initializer_list<const char*> extra_end);
  ExprPtr parse_tuple_simplified(bool with_namespace, std::initializer_list<const char*> extra_end);

  // ---- expressions (parse_expressions.cpp) ----
  bool is_tuple_end(std::initializer_list<const char*> extra_end) const;
  ExprPtr parse_tuple(bool with_condexpr, std::initializer_list<const char*> extra_end, bool explicit_parens);
  ExprPtr parse_expression(bool with_condexpr);
  ExprPtr parse_condexpr();
  ExprPtr binary(ExprKind kind, int line, ExprPtr l, ExprPtr r, std::string op = {});
  ExprPtr parse_or();
  ExprPtr parse_and();
  ExprPtr parse_not();
  ExprPtr parse_compare();
  ExprPtr parse_math1();
  ExprPtr parse_concat();
  ExprPtr parse_math2();
  ExprPtr parse_pow();
  ExprPtr parse_unary(bool with_filter);
  ExprPtr parse_primary(bool with_namespace);
  ExprPtr parse_postfix(ExprPtr node);
  ExprPtr parse_filter_expr(ExprPtr node);
  ExprPtr parse_subscript(ExprPtr node);
  ExprPtr parse_subscribed(const ExprPtr&);
  CallSpec parse_call_args();
  ExprPtr parse_call(ExprPtr node);
  std::string dotted_name();
  ExprPtr parse_filter(ExprPtr node, bool start_inline);
  ExprPtr parse_test(ExprPtr node);

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
  void mark_soft(const Expr* root);

  std::vector<Token> toks_;
  ParseLimits limits_;
  bool soft_ = false;
  std::vector<Unknown> unknown_;
  size_t pos_ = 0;
  int depth_ = 0;
};

}  // namespace kiln::text::jinja::detail
