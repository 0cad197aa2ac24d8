#pragma once
// The parser's state and grammar functions, shared by parser.cc (statements)
// and expression_parser.cc (expressions). Internal to chat/jinja: callers
// use Parse() from parser.h.

#include <algorithm>
#include <initializer_list>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "base/status_macros.h"
#include "chat/jinja/ast.h"
#include "chat/jinja/lexer.h"
#include "chat/jinja/options.h"

namespace lumen::chat::jinja::internal {

using Names = std::initializer_list<absl::string_view>;

// How a token reads in an error message: "'%}'", "a string", ...
std::string Describe(const Token& t);

// One parse of one token stream (ending with kEnd), on one thread.
class Parser {
 public:
  Parser(const std::vector<Token>& tokens, const CompileOptions& options)
      : tokens_(tokens), options_(options) {}

  absl::StatusOr<StmtList> ParseTemplate() {
    StmtList body;
    RETURN_IF_ERROR(ParseBody({}, &body));
    if (Current().kind != TokenKind::kEnd) {
      return Fail(absl::StrCat("unexpected ", Describe(Current())));
    }
    return body;
  }

 private:
  // ---- token stream ----
  const Token& Current() const { return tokens_[index_]; }
  const Token& Peek(size_t ahead = 1) const {
    return tokens_[std::min(index_ + ahead, tokens_.size() - 1)];
  }
  void Advance() {
    if (index_ + 1 < tokens_.size()) ++index_;
  }
  bool IsOp(absl::string_view op) const {
    return Current().kind == TokenKind::kOperator && Current().text == op;
  }
  bool IsName(absl::string_view name) const {
    return Current().kind == TokenKind::kName && Current().text == name;
  }
  bool IsNameIn(Names names) const {
    if (Current().kind != TokenKind::kName) return false;
    for (absl::string_view n : names)
      if (Current().text == n) return true;
    return false;
  }
  bool SkipOp(absl::string_view op) {
    if (!IsOp(op)) return false;
    Advance();
    return true;
  }
  bool SkipName(absl::string_view name) {
    if (!IsName(name)) return false;
    Advance();
    return true;
  }

  absl::Status Fail(absl::string_view message) const {
    return absl::InvalidArgumentError(
        absl::StrCat(FormatPos(Current().pos), ": ", message));
  }
  absl::Status Expected(absl::string_view what) const {
    return Fail(absl::StrCat("expected ", what, ", got ", Describe(Current())));
  }
  absl::Status ExpectOp(absl::string_view op) {
    if (!SkipOp(op)) return Expected(absl::StrCat("'", op, "'"));
    return absl::OkStatus();
  }
  absl::Status ExpectName(absl::string_view name) {
    if (!SkipName(name)) return Expected(absl::StrCat("'", name, "'"));
    return absl::OkStatus();
  }
  absl::Status ExpectKind(TokenKind kind, absl::string_view what) {
    if (Current().kind != kind) return Expected(what);
    Advance();
    return absl::OkStatus();
  }
  absl::StatusOr<std::string> ExpectIdentifier() {
    if (Current().kind != TokenKind::kName) return Expected("a name");
    std::string name = Current().text;
    Advance();
    return name;
  }

  // ---- tree building with bounded depth ----
  absl::StatusOr<ExprPtr> Node(ExprKind kind, SourcePos pos,
                               std::vector<ExprPtr> args = {}) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->pos = pos;
    e->args = std::move(args);
    RETURN_IF_ERROR(Seal(e.get()));
    return e;
  }
  // Computes the height of `e` from its children; fails beyond the limit.
  absl::Status Seal(Expr* e) const {
    int depth = 0;
    for (const ExprPtr& a : e->args)
      if (a) depth = std::max(depth, a->depth);
    for (const auto& kw : e->kwargs) depth = std::max(depth, kw.second->depth);
    e->depth = depth + 1;
    if (e->depth > options_.max_expression_depth) {
      return absl::InvalidArgumentError(
          absl::StrCat(FormatPos(e->pos), ": expression nested deeper than ",
                       options_.max_expression_depth, " levels"));
    }
    return absl::OkStatus();
  }

  // ---- statements (parser.cc) ----

  // Statements until a block tag whose name is in `end_names` (left as the
  // current token) or the end of the template.
  absl::Status ParseBody(Names end_names, StmtList* body);

  // `%}` then a body up to one of `end_names` (left current).
  absl::Status ParseBlockBody(Names end_names, StmtList* body);

  absl::Status ParseStatement(StmtList* body);

  absl::Status ParseIf(StmtList* body);

  // name | name, name, ... | (name, ...) | ns.attr (with_namespace).
  absl::StatusOr<AssignTarget> ParseAssignTarget(bool with_namespace);

  absl::Status ParseFor(StmtList* body);

  absl::Status ParseSet(StmtList* body);

  absl::Status ParseFilterBlock(StmtList* body);

  absl::Status ParseMacro(StmtList* body);

  // ---- expressions, loosest first (expression_parser.cc) ----

  bool AtTupleEnd() const;

  // `a` or `a, b, ...` (a tuple). Without condexpr, `x if y` is not parsed
  // (the `if` of a for loop or of an if tag follows).
  absl::StatusOr<ExprPtr> ParseTuple(bool with_condexpr,
                                     bool explicit_parens = false);

  absl::StatusOr<ExprPtr> ParseExpression(bool with_condexpr);

  absl::StatusOr<ExprPtr> ParseCondition();

  absl::StatusOr<ExprPtr> Binary(ExprKind kind, SourcePos pos, ExprPtr left,
                                 ExprPtr right);

  absl::StatusOr<ExprPtr> ParseOr();

  absl::StatusOr<ExprPtr> ParseAnd();

  absl::StatusOr<ExprPtr> ParseNot();

  absl::StatusOr<ExprPtr> ParseCompare();

  absl::StatusOr<ExprPtr> ArithmeticNode(BinaryOp op, SourcePos pos,
                                         ExprPtr left, ExprPtr right);

  absl::StatusOr<ExprPtr> ParseMath1();

  absl::StatusOr<ExprPtr> ParseConcat();

  absl::StatusOr<ExprPtr> ParseMath2();

  absl::StatusOr<ExprPtr> ParsePow();

  absl::Status EnterRecursion();

  absl::StatusOr<ExprPtr> ParseUnary(bool with_filter);

  absl::StatusOr<ExprPtr> Literal(Value v, SourcePos pos);

  absl::StatusOr<ExprPtr> ParsePrimary();

  absl::StatusOr<ExprPtr> ParseList(SourcePos pos);

  absl::StatusOr<ExprPtr> ParseDict(SourcePos pos);

  absl::StatusOr<ExprPtr> ParsePostfix(ExprPtr node);

  // After '[': an index or a slice, then ']'.
  absl::StatusOr<ExprPtr> ParseSubscript(ExprPtr object, SourcePos pos);

  // '(' arguments ')' into e->args (after any already there) and e->kwargs.
  absl::Status ParseCallArgs(Expr* e);

  absl::StatusOr<ExprPtr> ParseCall(ExprPtr callee);

  absl::StatusOr<ExprPtr> ParseFilterExpr(ExprPtr node);

  // name[.name] [(args)], applied to `subject` (null inside filter blocks).
  absl::StatusOr<ExprPtr> ParseOneFilter(ExprPtr subject, SourcePos pos);

  // | f | g(...) ... applied to `subject`.
  absl::StatusOr<ExprPtr> ParseFilterChain(ExprPtr subject, SourcePos pos);

  absl::StatusOr<ExprPtr> ParseTest(ExprPtr subject);

  const std::vector<Token>& tokens_;
  const CompileOptions options_;
  size_t index_ = 0;
  int block_depth_ = 0;
  int loop_depth_ = 0;  // loops around the current statement (for break)
  int recursion_ = 0;   // parser recursion through nested expressions
};

}  // namespace lumen::chat::jinja::internal
