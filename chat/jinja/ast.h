#pragma once
// The syntax tree of a template: expressions and statements, each with its
// source position. Built once by the parser, read-only afterwards (renders on
// several threads may share it). Its depth is bounded by the parser, so the
// recursive evaluator and the destructors stay within a small stack.

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "chat/jinja/lexer.h"
#include "chat/jinja/value.h"

namespace lumen::chat::jinja {

struct Expr;
struct Stmt;
using ExprPtr = std::unique_ptr<Expr>;
using StmtPtr = std::unique_ptr<Stmt>;
using StmtList = std::vector<StmtPtr>;

enum class ExprKind : uint8_t {
  kLiteral,   // literal
  kName,      // name
  kList,      // args: elements
  kTuple,     // args: elements (a tuple is a list at run time)
  kDict,      // args: key0, value0, key1, value1, ...
  kGetAttr,   // args[0].name
  kGetItem,   // args[0][args[1]]
  kSlice,     // args[0][args[1]:args[2]:args[3]], absent parts null
  kCall,      // args[0](args[1..], kwargs)
  kFilter,    // args[0] | name(args[1..], kwargs)
  kTest,      // args[0] is [not] name(args[1..], kwargs)
  kNot,       // not args[0]
  kNegate,    // -args[0]
  kPlus,      // +args[0]
  kBinary,    // args[0] op args[1]
  kAnd,       // args[0] and args[1]
  kOr,        // args[0] or args[1]
  kConcat,    // args[0] ~ args[1] ~ ...
  kCompare,   // args[0] ops[0] args[1] ops[1] args[2] ... (chained)
  kCondition  // args[0] if args[1] else args[2] (args[2] may be null)
};

enum class BinaryOp : uint8_t { kAdd, kSub, kMul, kDiv, kFloorDiv, kMod, kPow };

enum class CompareOp : uint8_t { kEq, kNe, kLt, kLe, kGt, kGe, kIn, kNotIn };

struct Expr {
  ExprKind kind;
  SourcePos pos;
  std::string name;  // kName, kGetAttr, kFilter, kTest
  Value name_value;  // kName, kGetAttr: `name` as a string value
  Value literal;     // kLiteral
  BinaryOp op = BinaryOp::kAdd;
  bool negated = false;  // kTest: "is not"
  int builtin = -1;      // kFilter, kTest: index in the builtin table
  int depth = 1;         // height of this subtree (bounded by the parser)
  std::vector<ExprPtr> args;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
  std::vector<CompareOp> compare_ops;  // kCompare
};

enum class StmtKind : uint8_t {
  kText,
  kOutput,
  kIf,
  kFor,
  kSet,
  kSetBlock,
  kMacro,
  kBreak,
  kContinue,
  kFilterBlock,
};

struct Stmt {
  StmtKind kind;
  SourcePos pos;
  explicit Stmt(StmtKind k) : kind(k) {}
  virtual ~Stmt() = default;
};

struct TextStmt final : Stmt {
  TextStmt() : Stmt(StmtKind::kText) {}
  std::string text;
};

struct OutputStmt final : Stmt {
  OutputStmt() : Stmt(StmtKind::kOutput) {}
  ExprPtr expr;
};

struct IfStmt final : Stmt {
  IfStmt() : Stmt(StmtKind::kIf) {}
  std::vector<std::pair<ExprPtr, StmtList>> branches;  // if, elif...
  StmtList else_body;
};

// Where `set` and `for` store: one name, several (unpacking), or ns.attr.
struct AssignTarget {
  std::vector<std::string> names;  // one, or several to unpack
  bool unpack = false;             // "a, b" even with one name ("a,")
  std::string ns_attribute;        // set ns.attr: names[0] is the namespace
};

struct ForStmt final : Stmt {
  ForStmt() : Stmt(StmtKind::kFor) {}
  AssignTarget target;
  ExprPtr iterable;
  ExprPtr filter;  // `for x in xs if cond`, may be null
  StmtList body;
  StmtList else_body;
};

struct SetStmt final : Stmt {
  SetStmt() : Stmt(StmtKind::kSet) {}
  AssignTarget target;
  ExprPtr value;
};

// {% set x %}...{% endset %}, optionally `{% set x | filter %}`.
struct SetBlockStmt final : Stmt {
  SetBlockStmt() : Stmt(StmtKind::kSetBlock) {}
  AssignTarget target;
  ExprPtr filter;  // kFilter whose args[0] is null (the body), may be null
  StmtList body;
};

struct MacroStmt final : Stmt {
  MacroStmt() : Stmt(StmtKind::kMacro) {}
  std::string name;
  std::vector<std::pair<std::string, ExprPtr>> params;  // default may be null
  StmtList body;
};

// {% filter name %}...{% endfilter %}
struct FilterBlockStmt final : Stmt {
  FilterBlockStmt() : Stmt(StmtKind::kFilterBlock) {}
  ExprPtr filter;  // kFilter whose args[0] is null (the body)
  StmtList body;
};

struct LoopControlStmt final : Stmt {
  explicit LoopControlStmt(StmtKind k) : Stmt(k) {}
};

}  // namespace lumen::chat::jinja
