// The expression grammar of the parser: jinja2's precedence from the
// loosest (conditional expressions) to the tightest (primaries, postfix
// subscripts and calls, filters and tests).

#include "chat/jinja/builtins.h"
#include "chat/jinja/parser_impl.h"

namespace lumen::chat::jinja::internal {

bool Parser::AtTupleEnd() const {
  const TokenKind k = Current().kind;
  return k == TokenKind::kVariableEnd || k == TokenKind::kBlockEnd || IsOp(")");
}

absl::StatusOr<ExprPtr> Parser::ParseTuple(bool with_condexpr,
                                           bool explicit_parens) {
  const SourcePos pos = Current().pos;
  std::vector<ExprPtr> items;
  bool is_tuple = false;
  while (true) {
    if (!items.empty()) RETURN_IF_ERROR(ExpectOp(","));
    if (AtTupleEnd()) break;
    ASSIGN_OR_RETURN(ExprPtr item, ParseExpression(with_condexpr));
    items.push_back(std::move(item));
    if (IsOp(",")) {
      is_tuple = true;
    } else {
      break;
    }
  }
  if (!is_tuple) {
    if (!items.empty()) return std::move(items[0]);
    if (!explicit_parens) return Expected("an expression");
  }
  return Node(ExprKind::kTuple, pos, std::move(items));
}

absl::StatusOr<ExprPtr> Parser::ParseExpression(bool with_condexpr) {
  return with_condexpr ? ParseCondition() : ParseOr();
}

absl::StatusOr<ExprPtr> Parser::ParseCondition() {
  ASSIGN_OR_RETURN(ExprPtr expr, ParseOr());
  while (IsName("if")) {
    const SourcePos pos = Current().pos;
    Advance();
    ASSIGN_OR_RETURN(ExprPtr condition, ParseOr());
    ExprPtr otherwise;
    if (SkipName("else")) {
      ASSIGN_OR_RETURN(otherwise, ParseCondition());
    }
    std::vector<ExprPtr> args;
    args.push_back(std::move(expr));
    args.push_back(std::move(condition));
    args.push_back(std::move(otherwise));
    ASSIGN_OR_RETURN(expr, Node(ExprKind::kCondition, pos, std::move(args)));
  }
  return expr;
}

absl::StatusOr<ExprPtr> Parser::Binary(ExprKind kind, SourcePos pos,
                                       ExprPtr left, ExprPtr right) {
  std::vector<ExprPtr> args;
  args.push_back(std::move(left));
  args.push_back(std::move(right));
  return Node(kind, pos, std::move(args));
}

absl::StatusOr<ExprPtr> Parser::ParseOr() {
  ASSIGN_OR_RETURN(ExprPtr left, ParseAnd());
  while (IsName("or")) {
    const SourcePos pos = Current().pos;
    Advance();
    ASSIGN_OR_RETURN(ExprPtr right, ParseAnd());
    ASSIGN_OR_RETURN(
        left, Binary(ExprKind::kOr, pos, std::move(left), std::move(right)));
  }
  return left;
}

absl::StatusOr<ExprPtr> Parser::ParseAnd() {
  ASSIGN_OR_RETURN(ExprPtr left, ParseNot());
  while (IsName("and")) {
    const SourcePos pos = Current().pos;
    Advance();
    ASSIGN_OR_RETURN(ExprPtr right, ParseNot());
    ASSIGN_OR_RETURN(
        left, Binary(ExprKind::kAnd, pos, std::move(left), std::move(right)));
  }
  return left;
}

absl::StatusOr<ExprPtr> Parser::ParseNot() {
  if (IsName("not")) {
    const SourcePos pos = Current().pos;
    Advance();
    RETURN_IF_ERROR(EnterRecursion());
    ASSIGN_OR_RETURN(ExprPtr operand, ParseNot());
    --recursion_;
    std::vector<ExprPtr> args;
    args.push_back(std::move(operand));
    return Node(ExprKind::kNot, pos, std::move(args));
  }
  return ParseCompare();
}

absl::StatusOr<ExprPtr> Parser::ParseCompare() {
  const SourcePos pos = Current().pos;
  ASSIGN_OR_RETURN(ExprPtr first, ParseMath1());
  std::vector<ExprPtr> operands;
  std::vector<CompareOp> ops;
  operands.push_back(std::move(first));
  while (true) {
    CompareOp op;
    if (Current().kind == TokenKind::kOperator) {
      const std::string& t = Current().text;
      if (t == "==") {
        op = CompareOp::kEq;
      } else if (t == "!=") {
        op = CompareOp::kNe;
      } else if (t == "<") {
        op = CompareOp::kLt;
      } else if (t == "<=") {
        op = CompareOp::kLe;
      } else if (t == ">") {
        op = CompareOp::kGt;
      } else if (t == ">=") {
        op = CompareOp::kGe;
      } else {
        break;
      }
      Advance();
    } else if (IsName("in")) {
      op = CompareOp::kIn;
      Advance();
    } else if (IsName("not") && Peek().kind == TokenKind::kName &&
               Peek().text == "in") {
      op = CompareOp::kNotIn;
      Advance();
      Advance();
    } else {
      break;
    }
    ASSIGN_OR_RETURN(ExprPtr operand, ParseMath1());
    operands.push_back(std::move(operand));
    ops.push_back(op);
  }
  if (ops.empty()) return std::move(operands[0]);
  auto e = std::make_unique<Expr>();
  e->kind = ExprKind::kCompare;
  e->pos = pos;
  e->args = std::move(operands);
  e->compare_ops = std::move(ops);
  RETURN_IF_ERROR(Seal(e.get()));
  return e;
}

absl::StatusOr<ExprPtr> Parser::ArithmeticNode(BinaryOp op, SourcePos pos,
                                               ExprPtr left, ExprPtr right) {
  ASSIGN_OR_RETURN(ExprPtr e, Binary(ExprKind::kBinary, pos, std::move(left),
                                     std::move(right)));
  e->op = op;
  return e;
}

absl::StatusOr<ExprPtr> Parser::ParseMath1() {
  ASSIGN_OR_RETURN(ExprPtr left, ParseConcat());
  while (IsOp("+") || IsOp("-")) {
    const BinaryOp op = IsOp("+") ? BinaryOp::kAdd : BinaryOp::kSub;
    const SourcePos pos = Current().pos;
    Advance();
    ASSIGN_OR_RETURN(ExprPtr right, ParseConcat());
    ASSIGN_OR_RETURN(
        left, ArithmeticNode(op, pos, std::move(left), std::move(right)));
  }
  return left;
}

absl::StatusOr<ExprPtr> Parser::ParseConcat() {
  const SourcePos pos = Current().pos;
  ASSIGN_OR_RETURN(ExprPtr first, ParseMath2());
  if (!IsOp("~")) return first;
  std::vector<ExprPtr> parts;
  parts.push_back(std::move(first));
  while (SkipOp("~")) {
    ASSIGN_OR_RETURN(ExprPtr next, ParseMath2());
    parts.push_back(std::move(next));
  }
  return Node(ExprKind::kConcat, pos, std::move(parts));
}

absl::StatusOr<ExprPtr> Parser::ParseMath2() {
  ASSIGN_OR_RETURN(ExprPtr left, ParsePow());
  while (true) {
    BinaryOp op;
    if (IsOp("*")) {
      op = BinaryOp::kMul;
    } else if (IsOp("/")) {
      op = BinaryOp::kDiv;
    } else if (IsOp("//")) {
      op = BinaryOp::kFloorDiv;
    } else if (IsOp("%")) {
      op = BinaryOp::kMod;
    } else {
      break;
    }
    const SourcePos pos = Current().pos;
    Advance();
    ASSIGN_OR_RETURN(ExprPtr right, ParsePow());
    ASSIGN_OR_RETURN(
        left, ArithmeticNode(op, pos, std::move(left), std::move(right)));
  }
  return left;
}

absl::StatusOr<ExprPtr> Parser::ParsePow() {
  ASSIGN_OR_RETURN(ExprPtr left, ParseUnary(/*with_filter=*/true));
  while (IsOp("**")) {
    const SourcePos pos = Current().pos;
    Advance();
    ASSIGN_OR_RETURN(ExprPtr right, ParseUnary(true));
    ASSIGN_OR_RETURN(left, ArithmeticNode(BinaryOp::kPow, pos, std::move(left),
                                          std::move(right)));
  }
  return left;
}

absl::Status Parser::EnterRecursion() {
  if (++recursion_ > options_.max_expression_depth) {
    return Fail(absl::StrCat("expression nested deeper than ",
                             options_.max_expression_depth, " levels"));
  }
  return absl::OkStatus();
}

absl::StatusOr<ExprPtr> Parser::ParseUnary(bool with_filter) {
  const SourcePos pos = Current().pos;
  ExprPtr node;
  if (IsOp("-") || IsOp("+")) {
    const ExprKind kind = IsOp("-") ? ExprKind::kNegate : ExprKind::kPlus;
    Advance();
    RETURN_IF_ERROR(EnterRecursion());
    ASSIGN_OR_RETURN(ExprPtr operand, ParseUnary(/*with_filter=*/false));
    --recursion_;
    std::vector<ExprPtr> args;
    args.push_back(std::move(operand));
    ASSIGN_OR_RETURN(node, Node(kind, pos, std::move(args)));
  } else {
    ASSIGN_OR_RETURN(node, ParsePrimary());
  }
  ASSIGN_OR_RETURN(node, ParsePostfix(std::move(node)));
  if (with_filter) {
    ASSIGN_OR_RETURN(node, ParseFilterExpr(std::move(node)));
  }
  return node;
}

absl::StatusOr<ExprPtr> Parser::Literal(Value v, SourcePos pos) {
  ASSIGN_OR_RETURN(ExprPtr e, Node(ExprKind::kLiteral, pos));
  e->literal = std::move(v);
  return e;
}

absl::StatusOr<ExprPtr> Parser::ParsePrimary() {
  const Token& t = Current();
  const SourcePos pos = t.pos;
  switch (t.kind) {
    case TokenKind::kName: {
      const std::string& n = t.text;
      Value literal;
      bool is_literal = true;
      if (n == "true" || n == "True") {
        literal = Value::Bool(true);
      } else if (n == "false" || n == "False") {
        literal = Value::Bool(false);
      } else if (n == "none" || n == "None") {
        literal = Value::None();
      } else {
        is_literal = false;
      }
      if (is_literal) {
        Advance();
        return Literal(std::move(literal), pos);
      }
      ASSIGN_OR_RETURN(ExprPtr e, Node(ExprKind::kName, pos));
      e->name = n;
      e->name_value = Value::String(n);
      Advance();
      return e;
    }
    case TokenKind::kString: {
      std::string s = t.text;
      Advance();
      while (Current().kind == TokenKind::kString) {  // "a" "b" is "ab"
        s += Current().text;
        Advance();
      }
      return Literal(Value::String(std::move(s)), pos);
    }
    case TokenKind::kInteger: {
      const int64_t v = t.int_value;
      Advance();
      return Literal(Value::Int(v), pos);
    }
    case TokenKind::kFloat: {
      const double v = t.float_value;
      Advance();
      return Literal(Value::Float(v), pos);
    }
    case TokenKind::kOperator:
      break;
    default:
      return Fail(absl::StrCat("unexpected ", Describe(t)));
  }
  RETURN_IF_ERROR(EnterRecursion());
  absl::StatusOr<ExprPtr> result;
  if (SkipOp("(")) {
    result = ParseTuple(/*with_condexpr=*/true, /*explicit_parens=*/true);
    if (result.ok()) {
      if (absl::Status s = ExpectOp(")"); !s.ok()) result = s;
    }
  } else if (SkipOp("[")) {
    result = ParseList(pos);
  } else if (SkipOp("{")) {
    result = ParseDict(pos);
  } else {
    result = Fail(absl::StrCat("unexpected ", Describe(t)));
  }
  --recursion_;
  return result;
}

absl::StatusOr<ExprPtr> Parser::ParseList(SourcePos pos) {
  std::vector<ExprPtr> items;
  while (!IsOp("]")) {
    if (!items.empty()) RETURN_IF_ERROR(ExpectOp(","));
    if (IsOp("]")) break;
    ASSIGN_OR_RETURN(ExprPtr item, ParseExpression(true));
    items.push_back(std::move(item));
  }
  RETURN_IF_ERROR(ExpectOp("]"));
  return Node(ExprKind::kList, pos, std::move(items));
}

absl::StatusOr<ExprPtr> Parser::ParseDict(SourcePos pos) {
  std::vector<ExprPtr> items;
  while (!IsOp("}")) {
    if (!items.empty()) RETURN_IF_ERROR(ExpectOp(","));
    if (IsOp("}")) break;
    ASSIGN_OR_RETURN(ExprPtr key, ParseExpression(true));
    RETURN_IF_ERROR(ExpectOp(":"));
    ASSIGN_OR_RETURN(ExprPtr value, ParseExpression(true));
    items.push_back(std::move(key));
    items.push_back(std::move(value));
  }
  RETURN_IF_ERROR(ExpectOp("}"));
  return Node(ExprKind::kDict, pos, std::move(items));
}

absl::StatusOr<ExprPtr> Parser::ParsePostfix(ExprPtr node) {
  while (true) {
    const SourcePos pos = Current().pos;
    if (SkipOp(".")) {
      if (Current().kind == TokenKind::kName) {
        std::vector<ExprPtr> args;
        args.push_back(std::move(node));
        ASSIGN_OR_RETURN(node, Node(ExprKind::kGetAttr, pos, std::move(args)));
        node->name = Current().text;
        node->name_value = Value::String(node->name);
        Advance();
      } else if (Current().kind == TokenKind::kInteger) {
        ASSIGN_OR_RETURN(ExprPtr index, Literal(Value::Int(Current().int_value),
                                                Current().pos));
        Advance();
        ASSIGN_OR_RETURN(node, Binary(ExprKind::kGetItem, pos, std::move(node),
                                      std::move(index)));
      } else {
        return Expected("a name or number after '.'");
      }
    } else if (SkipOp("[")) {
      RETURN_IF_ERROR(EnterRecursion());
      ASSIGN_OR_RETURN(node, ParseSubscript(std::move(node), pos));
      --recursion_;
    } else if (IsOp("(")) {
      ASSIGN_OR_RETURN(node, ParseCall(std::move(node)));
    } else {
      return node;
    }
  }
}

absl::StatusOr<ExprPtr> Parser::ParseSubscript(ExprPtr object, SourcePos pos) {
  ExprPtr parts[3];
  bool is_slice = false;
  if (!IsOp(":")) {
    ASSIGN_OR_RETURN(parts[0], ParseExpression(true));
  }
  if (SkipOp(":")) {
    is_slice = true;
    if (!IsOp(":") && !IsOp("]")) {
      ASSIGN_OR_RETURN(parts[1], ParseExpression(true));
    }
    if (SkipOp(":") && !IsOp("]")) {
      ASSIGN_OR_RETURN(parts[2], ParseExpression(true));
    }
  }
  if (IsOp(",")) return Fail("tuple subscripts are not supported");
  RETURN_IF_ERROR(ExpectOp("]"));
  if (!is_slice) {
    if (parts[0] == nullptr) return Expected("an index");
    return Binary(ExprKind::kGetItem, pos, std::move(object),
                  std::move(parts[0]));
  }
  std::vector<ExprPtr> args;
  args.push_back(std::move(object));
  for (ExprPtr& p : parts) args.push_back(std::move(p));
  return Node(ExprKind::kSlice, pos, std::move(args));
}

absl::Status Parser::ParseCallArgs(Expr* e) {
  RETURN_IF_ERROR(EnterRecursion());
  RETURN_IF_ERROR(ExpectOp("("));
  bool first = true;
  while (!IsOp(")")) {
    if (!first) RETURN_IF_ERROR(ExpectOp(","));
    first = false;
    if (IsOp(")")) break;
    if (IsOp("*") || IsOp("**")) {
      return Fail("*args and **kwargs in calls are not supported");
    }
    if (Current().kind == TokenKind::kName &&
        Peek().kind == TokenKind::kOperator && Peek().text == "=") {
      std::string key = Current().text;
      Advance();
      Advance();
      ASSIGN_OR_RETURN(ExprPtr value, ParseExpression(true));
      e->kwargs.emplace_back(std::move(key), std::move(value));
    } else {
      if (!e->kwargs.empty()) {
        return Fail("positional argument follows keyword argument");
      }
      ASSIGN_OR_RETURN(ExprPtr value, ParseExpression(true));
      e->args.push_back(std::move(value));
    }
  }
  RETURN_IF_ERROR(ExpectOp(")"));
  --recursion_;
  return Seal(e);
}

absl::StatusOr<ExprPtr> Parser::ParseCall(ExprPtr callee) {
  auto e = std::make_unique<Expr>();
  e->kind = ExprKind::kCall;
  e->pos = Current().pos;
  e->args.push_back(std::move(callee));
  RETURN_IF_ERROR(ParseCallArgs(e.get()));
  return e;
}

absl::StatusOr<ExprPtr> Parser::ParseFilterExpr(ExprPtr node) {
  while (true) {
    if (IsOp("|")) {
      ASSIGN_OR_RETURN(node, ParseFilterChain(std::move(node), Current().pos));
    } else if (IsName("is")) {
      ASSIGN_OR_RETURN(node, ParseTest(std::move(node)));
    } else if (IsOp("(")) {
      ASSIGN_OR_RETURN(node, ParseCall(std::move(node)));
    } else {
      return node;
    }
  }
}

absl::StatusOr<ExprPtr> Parser::ParseOneFilter(ExprPtr subject, SourcePos pos) {
  ASSIGN_OR_RETURN(std::string name, ExpectIdentifier());
  while (SkipOp(".")) {
    ASSIGN_OR_RETURN(std::string part, ExpectIdentifier());
    absl::StrAppend(&name, ".", part);
  }
  auto e = std::make_unique<Expr>();
  e->kind = ExprKind::kFilter;
  e->pos = pos;
  e->builtin = FindFilter(name);
  if (e->builtin < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(FormatPos(pos), ": no filter named '", name, "'"));
  }
  e->name = std::move(name);
  e->args.push_back(std::move(subject));
  if (IsOp("(")) {
    RETURN_IF_ERROR(ParseCallArgs(e.get()));
  } else {
    RETURN_IF_ERROR(Seal(e.get()));
  }
  return e;
}

absl::StatusOr<ExprPtr> Parser::ParseFilterChain(ExprPtr subject,
                                                 SourcePos pos) {
  while (IsOp("|")) {
    const SourcePos filter_pos = Current().pos;
    Advance();
    ASSIGN_OR_RETURN(subject, ParseOneFilter(std::move(subject), filter_pos));
  }
  return subject;
}

absl::StatusOr<ExprPtr> Parser::ParseTest(ExprPtr subject) {
  const SourcePos pos = Current().pos;
  Advance();  // is
  const bool negated = SkipName("not");
  ASSIGN_OR_RETURN(std::string name, ExpectIdentifier());
  while (SkipOp(".")) {
    ASSIGN_OR_RETURN(std::string part, ExpectIdentifier());
    absl::StrAppend(&name, ".", part);
  }
  auto e = std::make_unique<Expr>();
  e->kind = ExprKind::kTest;
  e->pos = pos;
  e->negated = negated;
  e->builtin = FindTest(name);
  if (e->builtin < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(FormatPos(pos), ": no test named '", name, "'"));
  }
  e->name = std::move(name);
  e->args.push_back(std::move(subject));
  const Token& t = Current();
  if (IsOp("(")) {
    RETURN_IF_ERROR(ParseCallArgs(e.get()));
    return e;
  }
  // `x is divisibleby 3`, `x is sameas none`: one argument without parens.
  const bool starts_argument =
      t.kind == TokenKind::kName || t.kind == TokenKind::kString ||
      t.kind == TokenKind::kInteger || t.kind == TokenKind::kFloat ||
      IsOp("[") || IsOp("{");
  if (starts_argument && !IsNameIn({"else", "or", "and"})) {
    if (IsName("is")) return Fail("tests cannot be chained with 'is'");
    ASSIGN_OR_RETURN(ExprPtr arg, ParsePrimary());
    ASSIGN_OR_RETURN(arg, ParsePostfix(std::move(arg)));
    e->args.push_back(std::move(arg));
  }
  RETURN_IF_ERROR(Seal(e.get()));
  return e;
}

}  // namespace lumen::chat::jinja::internal
